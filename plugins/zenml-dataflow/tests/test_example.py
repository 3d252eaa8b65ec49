"""examples/dataflow runs as its docstring says, against the loopback Dataflow and Beam's own
job service."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "dataflow" / "pipeline.py"


def _run(project, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), *args], cwd=project, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert ": completed" in result.stdout
    counts = dict(
        line.strip().split(":", 1) for line in result.stdout.splitlines() if "rows," in line
    )
    assert set(counts) == {"train", "eval"}
    return {split: int(text.split()[0]) for split, text in counts.items()}


def test_the_quickstart_data_steps_run_on_dataflow(project, dataflow_params, loopback_google):
    counts = _run(
        project, "dataflow", "--project", dataflow_params["project"],
        "--region", dataflow_params["region"],
        "--staging-location", dataflow_params["staging_location"],
        "--image", dataflow_params["sdk_container_image"],
        "--dataflow-endpoint", dataflow_params["dataflow_endpoint"],
    )  # fmt: skip
    assert sum(counts.values()) == 2000  # every row of the bundled CSV
    assert {j["currentState"] for j in loopback_google.dataflow_jobs.values()} == {"JOB_STATE_DONE"}


def test_the_quickstart_data_steps_run_on_a_portable_job_service(project, job_service):
    counts = _run(
        project, "portable", "--job-endpoint", job_service["job_endpoint"],
        "--worker-pool", job_service["worker_pool"],
    )  # fmt: skip
    assert sum(counts.values()) == 2000
