"""examples/kubernetes runs as its docstring says, here against the loopback cluster."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zenml_loopback.fixtures import WORKLOAD_IMAGE, docker_mode

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "kubernetes" / "pipeline.py"


@pytest.mark.skipif(
    not docker_mode() and importlib.util.find_spec("tensorflow") is None,
    reason="the quickstart trains with TensorFlow: in a container of the base image (e2e "
    "session), or in a subprocess where this environment has it",
)
def test_the_quickstart_runs_as_a_kubernetes_job(
    project, kubeconfig, gcs_emulator, gcs_bucket, mysql_store, loopback_kubernetes
):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    env["ZENML_MYSQL_PASSWORD"] = mysql_store.password
    command = [
        sys.executable, str(EXAMPLE),
        "--artifact-store", f"{gcs_bucket}/example",
        "--mysql-host", mysql_store.host, "--mysql-port", str(mysql_store.port),
        "--mysql-user", mysql_store.username, "--mysql-database", mysql_store.database,
        "--namespace", "ml", "--kubeconfig", kubeconfig, "--image", WORKLOAD_IMAGE,
        *(f"--env={k}={v}" for k, v in gcs_emulator.environment().items()),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert ": completed" in result.stdout and '"accuracy":' in result.stdout
    assert "Job ml/zenml-quickstart-" in result.stdout
    (run,) = mysql_store.list_runs("quickstart")
    assert run.status == "completed" and run.orchestrator == "kubernetes"
