"""Fixtures: a loopback Vertex AI (with Cloud Logging and Secret Manager) whose custom jobs
really run the trainer step, GCS and MariaDB on loopback, and a project folder of the user's
own steps (they reach the job in the code package)."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pytest

pytest_plugins = ["zenml_core.testing.fixtures"]  # the loopback fixtures come with zenml-loopback

PROJECT, REGION = "zenml-test", "europe-west4"

USER_STEPS = """
import os
import time

from zenml_core import step


@step
def numbers(n: int = 4) -> list:
    return list(range(n))


@step(kind="training")
def train_mean(x: list, seconds: float = 0.0) -> dict:
    print("training on", len(x), "values", flush=True)
    time.sleep(seconds)
    return {"mean": sum(x) / len(x), "job": os.environ.get("CLOUD_ML_JOB_ID", "")}


@step(kind="training")
def train_boom(x: list) -> dict:
    raise ValueError("the trainer failed on purpose")
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fresh project folder as the working directory, with the user's steps importable."""
    from zenml_core.repository import init

    (tmp_path / "user_steps.py").write_text(textwrap.dedent(USER_STEPS))
    monkeypatch.chdir(tmp_path)
    init(tmp_path)
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("user_steps", None)


@pytest.fixture
def stores(request):
    """Stores both this process and the job reach: gs:// on the emulator, MySQL on MariaDB."""
    prefix = uuid.uuid4().hex[:8]
    return {
        "artifact_store": f"{request.getfixturevalue('gcs_bucket')}/{prefix}",
        "metadata_store": request.getfixturevalue("mysql_store"),
    }


@pytest.fixture
def vertex_params(loopback_google, gcs_emulator, gcs_bucket):
    """What a user would write, pointed at the loopback cloud."""
    from zenml_loopback.fixtures import WORKLOAD_IMAGE

    return {
        "project": PROJECT,
        "region": REGION,
        "job_dir": f"{gcs_bucket}/vertex",
        "image": WORKLOAD_IMAGE,
        "api_endpoint": loopback_google.url,
        "logging_endpoint": loopback_google.url,
        "secret_manager_endpoint": loopback_google.url,
        "env": gcs_emulator.environment(),
        "poll_seconds": 0.2,
        "error_wait_seconds": 30.0,
    }
