"""The README's example runs as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from doc_blocks import plugins_doc_file

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


def test_the_remote_backend_example_runs_as_printed(project, tmp_path):
    """The 'Writing a remote backend' example, installed as a real distribution, runs the
    printed pipeline: whole run and per step, each trainer in a process of its own."""
    from zenml_core import __version__
    from zenml_core.testing.plugin_factory import build_wheels, install_wheels

    source = tmp_path / "acme-subprocess"
    source.mkdir()
    (source / "acme_subprocess.py").write_text(plugins_doc_file("acme_subprocess.py"))
    (source / "pyproject.toml").write_text(
        f"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "acme-subprocess"
version = "1.0.0"
dependencies = ["zenml-core>={__version__},<1"]

[project.entry-points."zenml_core.plugins"]
acme_subprocess = "acme_subprocess"

[tool.hatch.build.targets.wheel]
include = ["acme_subprocess.py"]
"""
    )
    build_wheels([source], tmp_path / "wheels")
    install_wheels((tmp_path / "wheels").glob("*.whl"), tmp_path / "site")
    (project / "my_steps.py").write_text(plugins_doc_file("my_steps.py"))
    (project / "pipeline.py").write_text(plugins_doc_file("pipeline.py"))
    env = {
        **{k: v for k, v in os.environ.items() if k != "ZENML_PLUGIN_MODULES"},
        "PYTHONPATH": str(tmp_path / "site"),
    }
    result = subprocess.run(
        [sys.executable, "pipeline.py"], cwd=project, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("completed")] == [
        "completed 2.0 True",
        "completed 2.0 True",
    ], result.stdout
