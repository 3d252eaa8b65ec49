"""The README's example runs as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_pipeline_example_runs_and_caches(project):
    text = README.read_text().split("## A pipeline", 1)[1]
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    (project / "example.py").write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "example.py"], cwd=project, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "4.5"
