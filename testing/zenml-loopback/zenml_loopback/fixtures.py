"""pytest fixtures of the loopback cloud, for every remote backend's tests.

Installed with zenml-loopback, they are in every pytest run (its ``pytest11`` entry point);
no conftest.py needs to name them.

Workloads (a pod's container, a VM's command) run in Docker containers from our base image when
``ZENML_LOOPBACK_DOCKER=1`` (the ``e2e`` nox session; dockerd is started if needed and must
work), else as subprocesses of this interpreter with the same command and environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

GCS_BUCKET = "zenml-loopback"
WORKLOAD_IMAGE = "zenml-loopback/workload:test"


def docker_mode() -> bool:
    return os.environ.get("ZENML_LOOPBACK_DOCKER", "") not in ("", "0")


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[Any]:
    """A GCS emulator for the session with the bucket ``GCS_BUCKET``, and this process pointed
    at it; ``gcs_emulator.environment()`` is what a workload needs to reach it."""
    from zenml_loopback.gcs import GCSEmulator

    with GCSEmulator() as emulator:
        saved = {k: os.environ.get(k) for k in emulator.environment()}
        os.environ.update(emulator.environment())
        emulator.create_bucket(GCS_BUCKET)
        try:
            yield emulator
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="session")
def gcs_bucket(gcs_emulator: Any) -> str:
    return f"gs://{GCS_BUCKET}"


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """Our dockerd (started, or reused if one from ``docker_engine start`` answers)."""
    from zenml_loopback.docker_engine import DockerEngine

    with DockerEngine() as engine:
        yield engine


@pytest.fixture(scope="session")
def workload_runner(request: pytest.FixtureRequest) -> Any:
    """Runs workloads of the image ``WORKLOAD_IMAGE``: a container FROM our base image with
    the Google plugins added (zenml-gcp for gs://, zenml-gcaip for Vertex AI's secrets; built
    with ``zenml_core.docker.build_image``), or a subprocess."""
    from zenml_loopback.workloads import DockerRunner, SubprocessRunner

    if not docker_mode():
        return SubprocessRunner([WORKLOAD_IMAGE])
    from zenml_core import __version__
    from zenml_core.docker import base_image, build_image
    from zenml_loopback.docker_engine import (
        build_wheels,
        ensure_base_image,
        serve_folder,
        source_tree,
    )

    engine = request.getfixturevalue("docker_engine")
    ensure_base_image(engine)
    plugins = ("zenml-gcp", "zenml-gcaip")
    wheelhouse = build_wheels(*(str(source_tree() / "plugins" / p) for p in plugins))
    with serve_folder(wheelhouse) as url:
        build_image(
            WORKLOAD_IMAGE,
            base=base_image(),
            requirements=[f"{p}=={__version__}" for p in plugins],
            pip_args=["--no-index", "--find-links", url],
            network_mode="host",
            client=engine.client(),
        )
    return DockerRunner(engine.client())


@pytest.fixture
def loopback_kubernetes(workload_runner: Any) -> Iterator[Any]:
    """A Kubernetes API on loopback whose Jobs really run (see ``workload_runner``)."""
    from zenml_loopback.kubernetes import LoopbackKubernetes

    with LoopbackKubernetes(workload_runner, namespaces=("default", "ml")) as cluster:
        yield cluster


@pytest.fixture
def loopback_google(workload_runner: Any) -> Iterator[Any]:
    """Compute Engine and Vertex AI on loopback whose VMs and custom jobs really run; give the
    clients ``loopback_google.client_options()`` and ``AnonymousCredentials``."""
    from zenml_loopback.google import LoopbackGoogleCloud

    with LoopbackGoogleCloud(workload_runner) as cloud:
        yield cloud


@pytest.fixture(scope="session")
def s3_emulator() -> Iterator[Any]:
    """S3 on loopback (moto's server); ``s3_emulator.client()`` is a boto3 client for it."""
    from zenml_loopback.s3 import S3Emulator

    with S3Emulator() as emulator:
        yield emulator
