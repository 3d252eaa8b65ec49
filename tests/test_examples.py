"""The examples run as a newcomer runs them, and say where their results are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_custom_steps_example_runs_then_is_fully_cached(project):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    command = [sys.executable, str(EXAMPLES / "custom_steps" / "pipeline.py")]
    first = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert f"metadata:  {project / '.zenml' / 'metadata.db'}" in first.stdout
    accuracy = float(first.stdout.split("'accuracy': ")[1].split(",")[0])
    assert accuracy > 0.9  # two well-separated classes
    assert first.stderr.count("completed") == 5
    second = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("cached") == 5
    assert second.stdout.split("eval:")[1] == first.stdout.split("eval:")[1]
