"""Docker on our machines, for real: our own dockerd, the base image built offline, images built
FROM it with `zenml docker build`, pushed to and pulled from a registry on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from zenml_core import __version__
from zenml_core.docker import build_image, push_image
from zenml_core.exceptions import ZenMLError
from zenml_loopback.docker_engine import (
    BASE_LABEL,
    OS_IMAGE,
    LocalRegistry,
    build_wheels,
    ensure_base_image,
    ensure_os_image,
    serve_folder,
)


@pytest.fixture(scope="module")
def base(docker_engine):
    return ensure_base_image(docker_engine)


@pytest.fixture(scope="module")
def wheelhouse_url():
    from zenml_loopback.docker_engine import source_tree

    with serve_folder(build_wheels(str(source_tree() / "plugins" / "zenml-gcp"))) as url:
        yield url


def _run(engine, image: str, *command: str) -> str:
    engine.client().images.get(image)  # present, or fail here: containers.run would pull it
    output = engine.client().containers.run(
        image, list(command), network_mode="host", remove=True, stderr=True
    )
    return output.decode()


def test_containers_reach_loopback_services_on_the_host_network(docker_engine, gcs_emulator):
    ensure_os_image(docker_engine.client())  # made offline; never pulled
    script = f"import urllib.request; print(urllib.request.urlopen({gcs_emulator.url!r}).status)"
    assert _run(docker_engine, OS_IMAGE, "python3", "-c", script).strip() == "200"


def test_the_base_image_is_python_311_with_zenml_core_and_no_entrypoint(docker_engine, base):
    assert base == f"zenmlcore/zenml-core:{__version__}"
    image = docker_engine.client().images.get(base)
    assert image.attrs["Config"]["Entrypoint"] is None  # each backend passes its own command
    assert BASE_LABEL in image.labels
    version = _run(docker_engine, base, "python", "-c", "import sys; print(sys.version_info[:2])")
    assert version.strip() == "(3, 11)"
    listing = json.loads(_run(docker_engine, base, "zenml", "plugins", "--json"))
    assert listing["core_version"] == __version__
    assert all(p["status"] == "loaded" for p in listing["plugins"])
    steps = "import tensorflow, apache_beam, ml_metadata, zenml_core.steps; print('ok')"
    assert _run(docker_engine, base, "python", "-c", steps).strip().endswith("ok")


def test_zenml_docker_build_adds_requirements_and_code_and_pushes(
    docker_engine, base, wheelhouse_url, tmp_path
):
    project = tmp_path / "project"
    project.mkdir()
    (project / "user_module.py").write_text("ANSWER = 42\n")
    (project / ".gitignore").write_text("secrets.txt\n")
    (project / "secrets.txt").write_text("never baked in")
    (project / "requirements.txt").write_text(f"zenml-gcp=={__version__}\n")
    with LocalRegistry() as registry:
        tag = f"{registry.address}/team/trainer:1.0"
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "zenml_core",
                "docker",
                "build",
                tag,
                "-r",
                str(project / "requirements.txt"),
                "--source",
                str(project),
                "--pip-arg=--no-index",
                f"--pip-arg=--find-links={wheelhouse_url}",
                "--network",
                "host",
                "--push",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **docker_engine.environment()},
        )
        assert cli.returncode == 0, cli.stderr
        assert f"{tag} sha256:" in cli.stdout and "pushed sha256:" in cli.stdout
        check = textwrap.dedent("""
            import os, user_module, zenml_gcp.artifact_store
            print(user_module.ANSWER, os.path.exists('/app/secrets.txt'), os.getcwd())
        """)
        assert _run(docker_engine, tag, "python", "-c", check).split() == ["42", "False", "/app"]
        client = docker_engine.client()
        image_id = client.images.get(tag).id
        client.images.remove(tag, force=True)
        pulled = client.images.pull(f"{registry.address}/team/trainer", tag="1.0")
        assert pulled.id == image_id


def test_a_failing_build_says_what_pip_said(docker_engine, base, wheelhouse_url):
    with pytest.raises(ZenMLError, match="no-such-package-anywhere"):
        build_image(
            "zenml-loopback/broken:1",
            base=base,
            requirements=["no-such-package-anywhere==1.0"],
            pip_args=["--no-index", "--find-links", wheelhouse_url],
            network_mode="host",
            client=docker_engine.client(),
        )


def test_pushing_where_no_registry_listens_is_a_clear_error(docker_engine, base):
    from zenml_core.testing.processes import free_port

    tag = f"localhost:{free_port()}/nowhere/image:1"
    docker_engine.client().images.get(base).tag(tag)
    with pytest.raises(ZenMLError, match=r"pushing .* failed"):
        push_image(tag, client=docker_engine.client())
