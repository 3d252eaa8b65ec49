"""The e2e session's fixtures: our dockerd, the base image, a registry and GCS on loopback."""

from zenml_core.testing.loopback.fixtures import (  # noqa: F401  (fixtures, used by name)
    docker_engine,
    gcs_emulator,
    loopback_google,
    workload_runner,
)
