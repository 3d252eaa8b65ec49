"""Fixtures: a loopback Compute Engine (with Secret Manager) whose VMs run their startup
script, GCS and MariaDB on loopback, and a project folder of the user's own steps (they reach
the VM in the code package).

Live mode (``ZENML_LIVE_GCP=1``, see the README): the same tests against a real project,
bucket and MySQL server named by the ZENML_LIVE_* variables below; tests that need the
emulator's internals (its request log, injected faults, preemption) are skipped there.
"""

from __future__ import annotations

import os
import sys
import textwrap
import uuid

import pytest

pytest_plugins = ["zenml_core.testing.fixtures"]  # the loopback fixtures come with zenml-loopback

PROJECT, ZONE, FALLBACK_ZONE = "zenml-test", "europe-west1-b", "europe-west1-c"

USER_STEPS = """
import time

from zenml_core import step


@step
def numbers(n: int = 4) -> list:
    return list(range(n))


@step
def slow_sum(x: list, seconds: float = 0.0) -> int:
    print("summing", len(x), "numbers", flush=True)
    time.sleep(seconds)
    return sum(x)


@step
def boom(x: list) -> int:
    raise ValueError("the step failed on purpose")
"""

LIVE = os.environ.get("ZENML_LIVE_GCP", "") not in ("", "0")
LIVE_REQUIRED = (
    "ZENML_LIVE_GCP_PROJECT",  # a project where you may create VMs and secrets
    "ZENML_LIVE_GCP_ZONE",
    "ZENML_LIVE_GCP_IMAGE",  # an image FROM our base with zenml-gcp (zenml docker build)
    "ZENML_LIVE_GCS",  # gs://BUCKET/PREFIX, reachable with application-default credentials
    "ZENML_LIVE_MYSQL_HOST",  # a MySQL server both this machine and the VM reach
    "ZENML_LIVE_MYSQL_USER",
    "ZENML_LIVE_MYSQL_PASSWORD",
    "ZENML_LIVE_MYSQL_DATABASE",
)


def pytest_collection_modifyitems(config, items):
    if not LIVE:
        return
    missing = [name for name in LIVE_REQUIRED if not os.environ.get(name)]
    for item in items:
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"live mode needs {', '.join(missing)}"))
        elif "loopback_google" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason="needs the loopback cloud's internals"))


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
    """Stores both this process and the VM reach: gs:// on the emulator, MySQL on MariaDB
    (live: the real bucket and server)."""
    prefix = uuid.uuid4().hex[:8]
    if LIVE:
        from zenml_core.metadata import MySQLMetadataStore

        return {
            "artifact_store": f"{os.environ['ZENML_LIVE_GCS'].rstrip('/')}/{prefix}",
            "metadata_store": MySQLMetadataStore(
                host=os.environ["ZENML_LIVE_MYSQL_HOST"],
                port=int(os.environ.get("ZENML_LIVE_MYSQL_PORT", "3306")),
                database=os.environ["ZENML_LIVE_MYSQL_DATABASE"],
                username=os.environ["ZENML_LIVE_MYSQL_USER"],
                password=os.environ["ZENML_LIVE_MYSQL_PASSWORD"],
            ),
        }
    return {
        "artifact_store": f"{request.getfixturevalue('gcs_bucket')}/{prefix}",
        "metadata_store": request.getfixturevalue("mysql_store"),
    }


@pytest.fixture
def gcp_params(request):
    """What a user would write, pointed at the loopback cloud (live: at the real project)."""
    if LIVE:
        return {
            "project": os.environ["ZENML_LIVE_GCP_PROJECT"],
            "zone": os.environ["ZENML_LIVE_GCP_ZONE"],
            "image": os.environ["ZENML_LIVE_GCP_IMAGE"],
            "spot": True,
        }
    from zenml_loopback.fixtures import WORKLOAD_IMAGE

    cloud = request.getfixturevalue("loopback_google")
    return {
        "project": PROJECT,
        "zone": ZONE,
        "image": WORKLOAD_IMAGE,
        "api_endpoint": cloud.url,
        "secret_manager_endpoint": cloud.url,
        "env": request.getfixturevalue("gcs_emulator").environment(),
        "poll_seconds": 0.2,
    }
