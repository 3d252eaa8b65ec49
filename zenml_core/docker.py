"""Docker images for remote backends: the base image's name, and custom images built FROM it.

Remote backends run ``python -m zenml_core ...`` in a container. The base image (built from
``docker/Dockerfile`` in the repository) holds Python 3.11, zenml-core and the standard steps'
dependencies, and has no ENTRYPOINT: each backend passes its own command. A user who needs more
packages (or their code baked in) builds FROM it with :func:`build_image` or ``zenml docker build``.

The docker SDK is imported only when an image is built.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zenml_core._version import __version__
from zenml_core.exceptions import ConfigError, ZenMLError

IMAGE_REPOSITORY = "zenmlcore/zenml-core"

# The reference grammar of the distribution spec (docker/distribution reference/regexp.go),
# without digests' algorithm registry: [registry[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
_CREDENTIALS_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


#: What this version's base image runs, as docker/Dockerfile installs it from constraints.txt
#: (a test keeps the two equal): what a Beam job built here must match to run in the image.
BASE_IMAGE_PINS = {"python": "3.11", "apache-beam": "2.77.0", "protobuf": "4.25.9"}


def base_image(gpu: bool = False) -> str:
    """The base image of this zenml-core version (``-gpu``: TensorFlow with CUDA)."""
    return f"{IMAGE_REPOSITORY}:{__version__}{'-gpu' if gpu else ''}"


def check_image_reference(reference: str, what: str = "image") -> str:
    """Raise ``ConfigError`` unless ``reference`` is a valid image reference; return it."""
    if not isinstance(reference, str) or len(reference) > 4096 or not _REFERENCE.match(reference):
        raise ConfigError(
            f"{what} {reference!r} is not a valid image reference: write "
            "[REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST] with a lowercase NAME, e.g. "
            f"'europe-docker.pkg.dev/my-project/ml/trainer:1.0' or {base_image()!r}."
        )
    return reference


def split_reference(reference: str) -> tuple[str, str | None]:
    """``(repository, tag)``; the tag is None when the reference has none (``latest``)."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = name.rsplit(":", 1)
        return repository, tag
    return name, None


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    id: str
    #: the registry's digest after a push (``sha256:...``), else None
    digest: str | None = None


def build_image(
    tag: str,
    *,
    base: str | None = None,
    requirements: Sequence[str] = (),
    requirements_file: str | Path | None = None,
    source: str | Path | None = None,
    pip_args: Sequence[str] = (),
    push: bool = False,
    network_mode: str | None = None,
    client: Any = None,
) -> BuiltImage:
    """Build ``tag`` FROM ``base`` (this version's base image unless given) with extra Python
    requirements and, optionally, the project's code at /app (files as a code package selects
    them: .gitignore and .zenmlignore respected); push it when asked.

    Everything is checked before the engine is asked for anything. Nothing is pulled unless
    the base image is missing locally. ``pip_args`` (say ``--index-url``) end up in the image's
    history, so URLs with credentials are refused: use pip's config or netrc in the base image.
    """
    base = check_image_reference(base or base_image(), "base image")
    check_image_reference(tag, "tag")
    lines = list(_requirement_lines(requirements, requirements_file))
    for argument in pip_args:
        if _CREDENTIALS_IN_URL.search(argument):
            raise ConfigError(
                "a pip argument carries credentials in its URL; they would be stored in the "
                "image's history: configure the index in pip.conf or netrc instead."
            )
    root = Path(source).resolve() if source is not None else None
    if root is not None and not root.is_dir():
        raise ConfigError(f"source {str(source)!r} is not a folder: give the project's root.")
    client = client or docker_client()

    with tempfile.TemporaryDirectory(prefix="zenml-image-") as context_dir:
        context = Path(context_dir)
        (context / "requirements.txt").write_text("".join(f"{line}\n" for line in lines))
        if root is not None:
            from zenml_core.pipeline.code import project_files

            for relative in project_files(root):
                target = context / "code" / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / relative, target)
        (context / "Dockerfile").write_text(
            _dockerfile(base, bool(lines), root is not None, pip_args)
        )
        image = _build(client, context, tag, network_mode)
    digest = push_image(tag, client=client) if push else None
    return BuiltImage(tag, str(image.id), digest)


def _requirement_lines(
    requirements: Iterable[str], requirements_file: str | Path | None
) -> Iterable[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    for requirement in requirements:
        try:
            Requirement(requirement)
        except InvalidRequirement as error:
            raise ConfigError(
                f"requirement {requirement!r} is not valid ({error}): write it as pip "
                "would, e.g. 'scikit-learn>=1.5,<2'."
            ) from None
        yield requirement
    if requirements_file is not None:
        path = Path(requirements_file)
        if not path.is_file():
            raise ConfigError(f"requirements file {str(path)!r} does not exist.")
        yield from (line for line in path.read_text().splitlines() if line.strip())


def _dockerfile(base: str, has_requirements: bool, has_code: bool, pip_args: Sequence[str]) -> str:
    import shlex

    lines = [f"FROM {base}"]
    if has_requirements:
        pip = " ".join(shlex.quote(a) for a in pip_args)
        lines += [
            "COPY requirements.txt /tmp/zenml-requirements.txt",
            "RUN python -m pip install --no-cache-dir --disable-pip-version-check "
            f"{pip} -r /tmp/zenml-requirements.txt".replace("  ", " "),
        ]
    if has_code:
        # the code package a remote run ships still wins: this is the fallback on the path
        lines += ["COPY code /app", "WORKDIR /app", "ENV PYTHONPATH=/app"]
    return "\n".join(lines) + "\n"


def _build(client: Any, context: Path, tag: str, network_mode: str | None) -> Any:
    from docker.errors import BuildError

    try:
        image, _ = client.images.build(
            path=str(context), tag=tag, pull=False, rm=True, forcerm=True, network_mode=network_mode
        )
    except BuildError as error:
        log = "".join(chunk.get("stream", "") for chunk in error.build_log)[-3000:]
        raise ZenMLError(f"building {tag} failed: {error.msg}\n{log}") from None
    return image


def push_image(reference: str, client: Any = None) -> str:
    """Push an image; returns the digest the registry gave it. Raises with the registry's
    own words on failure (the docker SDK only reports them inside the stream)."""
    check_image_reference(reference)
    client = client or docker_client()
    repository, tag = split_reference(reference)
    digest = None
    for event in client.images.push(repository, tag=tag or "latest", stream=True, decode=True):
        if "error" in event:
            raise ZenMLError(
                f"pushing {reference} failed: {event['error']}. Log in to the registry "
                "(docker login) or check that the repository exists."
            )
        digest = event.get("aux", {}).get("Digest", digest)
    if digest is None:
        raise ZenMLError(f"pushing {reference} returned no digest: the registry did not say.")
    return str(digest)


def docker_client() -> Any:
    """A docker SDK client from the environment (DOCKER_HOST), or an error saying how to get one."""
    try:
        import docker
    except ImportError:
        raise ConfigError(
            "building images needs the docker SDK: pip install 'zenml-core[docker]'"
        ) from None
    try:
        client = docker.from_env()
        client.ping()
    except Exception as error:
        raise ConfigError(
            f"no Docker engine answers ({error}): start one, or point DOCKER_HOST at it."
        ) from None
    return client
