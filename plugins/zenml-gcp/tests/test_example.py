"""examples/gcp runs as its docstring says, here against the loopback Compute Engine."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zenml_loopback.fixtures import WORKLOAD_IMAGE, docker_mode

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "gcp" / "pipeline.py"


@pytest.mark.skipif(
    not docker_mode() and importlib.util.find_spec("tensorflow") is None,
    reason="the quickstart trains with TensorFlow: in a container of the base image (e2e "
    "session), or in a subprocess where this environment has it",
)
def test_the_quickstart_runs_on_a_spot_vm(
    project, gcp_params, gcs_emulator, gcs_bucket, mysql_store, loopback_google
):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    env["ZENML_MYSQL_PASSWORD"] = mysql_store.password
    command = [
        sys.executable, str(EXAMPLE),
        "--project", gcp_params["project"], "--zone", gcp_params["zone"],
        "--artifact-store", f"{gcs_bucket}/example-gcp",
        "--mysql-host", mysql_store.host, "--mysql-port", str(mysql_store.port),
        "--mysql-user", mysql_store.username, "--mysql-database", mysql_store.database,
        "--image", WORKLOAD_IMAGE, "--api-endpoint", loopback_google.url,
        *(f"--env={k}={v}" for k, v in gcs_emulator.environment().items()),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert ": completed" in result.stdout and '"accuracy":' in result.stdout
    (run,) = mysql_store.list_runs("quickstart")
    assert run.status == "completed" and run.orchestrator == "gcp"
    assert loopback_google.instances == {}  # the VM deleted itself, or was deleted
