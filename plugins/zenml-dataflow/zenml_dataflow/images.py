"""Which SDK image a Beam job's workers run, and whether it can run what was built here.

Since Beam 2.50 the SDK is not staged with a job: the workers' image must hold the submitter's
Beam, Python minor version and protobuf line, or every bundle fails with "Pipeline construction
environment and pipeline runtime environment are not compatible" once the workers are up
(apache/beam#28084, Dataflow users' most common complaint). For our own base image the versions
are known (``zenml_core.docker.BASE_IMAGE_PINS``), so a mismatch is refused before submission.
"""

from __future__ import annotations

import sys

from zenml_core.docker import (
    BASE_IMAGE_PINS,
    IMAGE_REPOSITORY,
    check_image_reference,
    split_reference,
)
from zenml_core.exceptions import ConfigError


def submitter_versions() -> dict[str, str]:
    """What this process builds Beam jobs with."""
    from importlib.metadata import version

    return {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "apache-beam": version("apache-beam"),
        "protobuf": version("protobuf"),
    }


def is_ours(image: str) -> bool:
    """Our base image, under its own name or pushed to another registry under ours."""
    repository, _ = split_reference(image)
    return repository == IMAGE_REPOSITORY or repository.endswith("/zenml-core")


def check_sdk_image(what: str, image: str) -> str:
    """A valid reference; for our base image, one this process's Beam job can run in."""
    check_image_reference(image, f"{what}: sdk_container_image")
    if not is_ours(image):
        return image  # the user's own image: its Beam is theirs to match (see docs/dataflow.md)
    from zenml_core import __version__

    _, tag = split_reference(image)
    if tag not in (__version__, f"{__version__}-gpu"):
        raise ConfigError(
            f"{what}: sdk_container_image {image!r} is zenml-core {tag or 'latest'}, but this "
            f"is zenml-core {__version__}; its Beam may not match the one jobs are built with "
            f"here. Use the image of this version ({IMAGE_REPOSITORY}:{__version__}), or "
            "install the zenml-core that matches the image."
        )
    here = submitter_versions()
    wrong = {
        name: (here[name], pinned)
        for name, pinned in BASE_IMAGE_PINS.items()
        if _line(name, here[name]) != _line(name, pinned)
    }
    if wrong:
        listed = "; ".join(
            f"{n} {have} here, {want} in the image" for n, (have, want) in wrong.items()
        )
        raise ConfigError(
            f"{what}: this environment cannot build jobs for {image}: {listed}. Beam refuses "
            "to run a pipeline built by another Beam or Python on its workers. Install the "
            "image's versions here (pip install -c constraints.txt), or build your own image "
            "FROM it with yours and pass it as sdk_container_image."
        )
    return image


def _line(name: str, version: str) -> str:
    """The part of a version that must match: Beam exactly, protobuf's major, Python's minor."""
    if name == "protobuf":
        return version.split(".")[0]
    return version
