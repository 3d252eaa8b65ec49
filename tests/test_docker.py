"""zenml_core.docker without a Docker engine: names, references, and every mistake refused
before an engine is even asked (the builds themselves run in the e2e session)."""

from __future__ import annotations

import pytest

from zenml_core import __version__
from zenml_core.cli import main
from zenml_core.docker import base_image, build_image, check_image_reference, split_reference
from zenml_core.exceptions import ConfigError


@pytest.mark.parametrize(
    "reference",
    [
        "zenmlcore/zenml-core:0.1.0",
        "python",
        "localhost:5000/team/trainer:1.0",
        "europe-docker.pkg.dev/my-project/ml/trainer:2024-11-01_a",
        "ghcr.io/org/image@sha256:" + "a" * 64,
        "registry.example.com:443/a/b/c:latest",
    ],
)
def test_valid_image_references(reference):
    assert check_image_reference(reference) == reference


@pytest.mark.parametrize(
    "reference",
    ["", "Trainer:1.0", "team/trainer:", "team//trainer", "trainer:bad tag", "a:b:c", "-x/y"],
)
def test_invalid_image_references_are_named(reference):
    with pytest.raises(ConfigError, match="not a valid image reference"):
        check_image_reference(reference)


def test_split_reference_keeps_registry_ports():
    assert split_reference("localhost:5000/team/trainer:1.0") == (
        "localhost:5000/team/trainer",
        "1.0",
    )
    assert split_reference("localhost:5000/team/trainer") == ("localhost:5000/team/trainer", None)


def test_base_image_names_follow_the_version(capsys):
    assert base_image() == f"zenmlcore/zenml-core:{__version__}"
    assert main(["docker", "base", "--gpu"]) == 0
    assert capsys.readouterr().out.strip() == f"zenmlcore/zenml-core:{__version__}-gpu"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tag": "Bad:tag"}, "tag 'Bad:tag' is not a valid image reference"),
        ({"base": "not valid!"}, "base image"),
        ({"requirements": ["scikit-learn>=>1"]}, "is not valid"),
        ({"requirements_file": "no/such/requirements.txt"}, "does not exist"),
        ({"source": "no/such/folder"}, "is not a folder"),
        (
            {"pip_args": ["--index-url", "https://user:hunter2@pypi.example.com/simple"]},
            "credentials",
        ),
    ],
)
def test_mistakes_are_refused_before_the_engine_is_asked(kwargs, message, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    arguments = {"tag": "team/trainer:1.0", **kwargs}
    with pytest.raises(ConfigError, match=message) as caught:
        build_image(arguments.pop("tag"), **arguments)
    assert "hunter2" not in str(caught.value)


def test_no_engine_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["docker", "build", "team/trainer:1.0"]) == 1
    err = capsys.readouterr().err
    # without the docker SDK installed, or with it and no engine: either way, the fix is named
    assert "pip install 'zenml-core[docker]'" in err or "no Docker engine answers" in err


def test_the_base_image_pins_are_what_the_dockerfile_installs():
    """The image installs zenml-core with constraints.txt on docker/Dockerfile's Python: what
    a Beam job built here is checked against (zenml-dataflow) must be exactly that."""
    import re
    from pathlib import Path

    from zenml_core.docker import BASE_IMAGE_PINS

    root = Path(__file__).resolve().parents[1]
    pinned = dict(re.findall(r"^([a-z0-9-]+)==(\S+)", (root / "constraints.txt").read_text(), re.M))
    assert BASE_IMAGE_PINS["apache-beam"] == pinned["apache-beam"]
    assert BASE_IMAGE_PINS["protobuf"] == pinned["protobuf"]
    dockerfile = (root / "docker" / "Dockerfile").read_text()
    assert f"python:{BASE_IMAGE_PINS['python']}-" in dockerfile
