"""Fixtures: a loopback Kubernetes whose Jobs really run, GCS and MariaDB on loopback, and a
project whose steps live only in its own folder (they reach the pod in the code package)."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pytest

pytest_plugins = ["zenml_core.testing.fixtures", "zenml_core.testing.loopback.fixtures"]

USER_STEPS = """
import os
import time

from zenml_core import step


@step
def numbers(n: int = 4) -> list:
    return list(range(n))


@step
def slow_sum(x: list, seconds: float = 0.0) -> int:
    time.sleep(seconds)
    return sum(x)


@step
def boom(x: list) -> int:
    raise ValueError("the step failed on purpose")


@step
def environment(x: list) -> dict:
    return {k: v for k, v in os.environ.items() if k.startswith(("ZENML", "TEAM"))}
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
def kubeconfig(loopback_kubernetes, tmp_path):
    return str(loopback_kubernetes.write_kubeconfig(tmp_path / "kubeconfig"))


@pytest.fixture
def stores(gcs_bucket, mysql_store):
    """Stores both this process and the pod reach: gs:// on the emulator, MySQL on MariaDB."""
    return {
        "artifact_store": f"{gcs_bucket}/{uuid.uuid4().hex[:8]}",
        "metadata_store": mysql_store,
    }


@pytest.fixture
def k8s_params(kubeconfig, gcs_emulator):
    """What a user would write, pointed at the loopback cluster and its GCS emulator."""
    from zenml_core.testing.loopback.fixtures import WORKLOAD_IMAGE

    return {
        "kubeconfig": kubeconfig,
        "namespace": "ml",
        "image": WORKLOAD_IMAGE,
        "image_pull_policy": "Never",
        "env": gcs_emulator.environment(),
        "poll_seconds": 0.2,
    }
