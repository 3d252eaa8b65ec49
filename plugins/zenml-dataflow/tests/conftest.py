"""Fixtures: the loopback Dataflow (its workers run in our image's container under Docker, as
subprocesses otherwise), GCS on loopback, Beam's own job service with a worker pool for the
portable backend, and a project folder.

Live mode (``ZENML_LIVE_DATAFLOW=1``): the same steps on a real project and bucket named by
the ZENML_LIVE_* variables below; tests that need the emulator's internals are skipped there.
"""

from __future__ import annotations

import os
import sys
import uuid

import pytest

pytest_plugins = ["zenml_core.testing.fixtures"]

PROJECT, REGION = "zenml-test", "europe-west1"
LIVE = os.environ.get("ZENML_LIVE_DATAFLOW", "") not in ("", "0")
LIVE_REQUIRED = (
    "ZENML_LIVE_GCP_PROJECT",
    "ZENML_LIVE_DATAFLOW_REGION",
    "ZENML_LIVE_GCS",  # gs://BUCKET/PREFIX the workers may read and write
)


def pytest_collection_modifyitems(config, items):
    from zenml_loopback.fixtures import docker_mode

    missing = [name for name in LIVE_REQUIRED if not os.environ.get(name)]
    for item in items:
        if docker_mode() and "dataflow_params" not in getattr(item, "fixturenames", ()):
            # the e2e session is for jobs in containers; the rest ran in the plugin session
            item.add_marker(pytest.mark.skip(reason="runs no Dataflow workload in a container"))
        if not LIVE:
            continue
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"live mode needs {', '.join(missing)}"))
        elif "loopback_google" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason="needs the loopback cloud's internals"))


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fresh project folder as the working directory (its code is shipped to the workers)."""
    from zenml_core.repository import init

    monkeypatch.chdir(tmp_path)
    init(tmp_path)
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))


@pytest.fixture
def dataflow_params(request):
    """What a user would write, pointed at the loopback Dataflow (live: the real one)."""
    if LIVE:
        root = f"{os.environ['ZENML_LIVE_GCS'].rstrip('/')}/{uuid.uuid4().hex[:8]}"
        return {
            "project": os.environ["ZENML_LIVE_GCP_PROJECT"],
            "region": os.environ["ZENML_LIVE_DATAFLOW_REGION"],
            "staging_location": f"{root}/staging",
        }
    from zenml_loopback.fixtures import WORKLOAD_IMAGE

    cloud = request.getfixturevalue("loopback_google")
    gcs = request.getfixturevalue("gcs_emulator")
    cloud.dataflow_worker_env = gcs.environment()
    bucket = request.getfixturevalue("gcs_bucket")
    return {
        "project": PROJECT,
        "region": REGION,
        "staging_location": f"{bucket}/{uuid.uuid4().hex[:8]}/staging",
        "sdk_container_image": WORKLOAD_IMAGE,  # FROM our base image, as a user's own
        "dataflow_endpoint": cloud.dataflow_endpoint,
        "poll_seconds": 0.5,
    }


@pytest.fixture(scope="session")
def job_service_endpoint():
    """Beam's Python job service on 127.0.0.1 (the protocol Flink's and Spark's job servers
    speak)."""
    from zenml_core.testing.processes import stop
    from zenml_loopback.beam_service import start_job_service

    service, endpoint = start_job_service()
    try:
        yield endpoint
    finally:
        stop(service, timeout=10)


@pytest.fixture
def job_service(job_service_endpoint, project):
    """The job service and an EXTERNAL worker pool started where the project's code is
    importable (as a pool in an image with the code baked in)."""
    from zenml_core.testing.processes import stop
    from zenml_loopback.beam_service import start_worker_pool

    pool, address = start_worker_pool(pythonpath=str(project))
    try:
        yield {"job_endpoint": job_service_endpoint, "worker_pool": address}
    finally:
        stop(pool, timeout=10)
