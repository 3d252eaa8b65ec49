"""A Docker engine of our own on this machine, and our base image built with no public registry.

- :class:`DockerEngine` installs Debian's docker.io when missing, starts ``dockerd`` with its
  own data root, exec root, socket and pidfile (overlay2, no iptables, no bridge: containers use
  ``--network host`` to reach loopback services) and stops it by the PID it started.
- :func:`ensure_base_image` builds ``docker/Dockerfile`` FROM a Debian bookworm root file system
  made offline with debootstrap (from the Debian mirror apt already uses), with every Python
  package from a local wheelhouse the host fills from PyPI and serves on 127.0.0.1.
- :class:`LocalRegistry` is Debian's docker-registry on 127.0.0.1 for push and pull tests.

Everything slow is cached under ``ZENML_LOOPBACK_CACHE`` (default ~/.cache/zenml-core/loopback):
the root file system, the wheelhouse, and the engine's data root, so images survive restarts.

Command line (used by CI and by hand)::

    python -m zenml_loopback.docker_engine start|stop|status|base-image
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zenml_core._version import __version__
from zenml_core.testing.processes import free_port, program, start_server

DEBIAN_SUITE = "bookworm"  # python3 is 3.11 there, the line ml-metadata's wheels need
OS_IMAGE = f"zenml-loopback/debian-python:{DEBIAN_SUITE}"
OS_PACKAGES = "python3,python3-venv,libstdc++6,libgomp1,ca-certificates"
BASE_LABEL = "org.zenml-core.inputs"


def source_tree() -> Path:
    """The zenml-core checkout images are built from: ``$ZENML_SOURCE_TREE``, else the nearest
    folder at or above the working directory (or this file) with docker/Dockerfile."""
    given = os.environ.get("ZENML_SOURCE_TREE")
    here = Path(__file__).resolve()
    candidates = [Path(given)] if given else [Path.cwd(), *Path.cwd().parents, *here.parents]
    for folder in candidates:
        if (folder / "docker" / "Dockerfile").is_file() and (folder / "zenml_core").is_dir():
            return folder
    raise RuntimeError(
        "building zenml-core's images needs its source tree: run from a checkout, or set "
        "ZENML_SOURCE_TREE to one"
    )


def cache_root() -> Path:
    root = os.environ.get("ZENML_LOOPBACK_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "zenml-core" / "loopback"


def _sbin(name: str, debian_package: str) -> str:
    return program(name, debian_package, "docker")


class DockerEngine:
    """``with DockerEngine() as engine:`` a running dockerd; ``engine.client()`` talks to it.

    If an engine from an earlier ``start`` (same state folder) still answers, it is reused and
    left running on exit; only an engine this object started is stopped, by its PID.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_root() / "docker"
        self.socket = self.root / "docker.sock"
        self.pidfile = self.root / "dockerd.pid"
        self.log = self.root / "dockerd.log"
        self.host = f"unix://{self.socket}"
        self.process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.host}

    def client(self) -> Any:
        import docker

        return docker.DockerClient(base_url=self.host, timeout=600)

    def answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(self.client().ping())
        except Exception:
            return False

    def start(self) -> DockerEngine:
        if self.answers():
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self.pidfile.unlink(missing_ok=True)
        command = [
            _sbin("dockerd", "docker.io"),
            "--storage-driver=overlay2",
            "--iptables=false",
            "--bridge=none",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--host={self.host}",
            f"--pidfile={self.pidfile}",
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"dockerd did not start:\n{tail}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        """Stop the engine by the PID it recorded (ours: we started it with this pidfile)."""
        pid = self.process.pid if self.process else _read_pid(self.pidfile)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 15)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            if self.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=0.2)
            else:
                time.sleep(0.2)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        self.process = None
        self._unmount_leftovers()

    def _unmount_leftovers(self) -> None:
        """dockerd can leave mounts under its state folder (its default network namespace,
        seen as an nsfs mount of exec/netns/default) that outlive it and make the folder
        impossible to remove: unmount what is still mounted under our root, deepest first."""
        root = str(self.root.resolve())
        try:
            mounts = Path("/proc/self/mounts").read_text().splitlines()
        except OSError:
            return
        points = [line.split()[1] for line in mounts if len(line.split()) > 1]
        for point in sorted((p for p in points if p.startswith(root + "/")), reverse=True):
            subprocess.run(["umount", point], capture_output=True, check=False)

    def __enter__(self) -> DockerEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:  # only an engine this object started
            self.stop()


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie we have not reaped counts as gone
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True


# -- the base image, offline ------------------------------------------------------------------


def _debian_mirror() -> str:
    """The Debian mirror apt already uses for bookworm (the only one we may reach)."""
    sources = [Path("/etc/apt/sources.list")]
    sources += sorted(Path("/etc/apt/sources.list.d").glob("*.list"))
    sources += sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))  # not *.disabled
    for source in sources:
        with contextlib.suppress(OSError):
            text = source.read_text()
            # deb822 stanzas ("URIs: ...", "Suites: ...") and one-line "deb URI SUITE ..."
            for stanza in text.split("\n\n"):
                fields = dict(
                    line.split(":", 1)
                    for line in stanza.splitlines()
                    if ":" in line and not line.startswith("#")
                )
                suites = fields.get("Suites", "").split()
                for uri in fields.get("URIs", "").split():
                    if DEBIAN_SUITE in suites and "debian" in uri and "security" not in uri:
                        return uri
            for line in text.splitlines():
                words = line.split()
                if words[:1] == ["deb"] and DEBIAN_SUITE in words and "security" not in line:
                    uri = next((w for w in words[1:] if "://" in w), "")
                    if "debian" in uri:
                        return uri
    return "http://deb.debian.org/debian"


def root_filesystem() -> Path:
    """A tarball of a minimal Debian with python3, made once with debootstrap (~5 min)."""
    packages = hashlib.sha256(OS_PACKAGES.encode()).hexdigest()[:8]
    tarball = cache_root() / f"rootfs-{DEBIAN_SUITE}-{packages}.tar"
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tarball.parent) as work:
        rootfs = Path(work) / "rootfs"
        subprocess.run(
            [
                _sbin("debootstrap", "debootstrap"),
                "--variant=minbase",
                f"--include={OS_PACKAGES}",
                DEBIAN_SUITE,
                str(rootfs),
                _debian_mirror(),
            ],
            check=True,
            capture_output=True,
        )
        shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        partial.rename(tarball)  # complete or absent
    return tarball


def ensure_os_image(client: Any) -> str:
    import docker.errors

    try:
        client.images.get(OS_IMAGE)
        return OS_IMAGE
    except docker.errors.ImageNotFound:
        pass
    client.api.import_image_from_file(
        str(root_filesystem()), repository=OS_IMAGE.split(":")[0], tag=DEBIAN_SUITE
    )
    client.images.get(OS_IMAGE)
    return OS_IMAGE


def build_wheels(*targets: str, wheelhouse: Path | None = None) -> Path:
    """Fill the wheelhouse with ``targets`` (local project folders or requirements) and every
    dependency at the constraints' versions. pip reuses what is already there."""
    wheelhouse = wheelhouse or cache_root() / "wheelhouse"
    wheelhouse.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(wheelhouse),
            "--find-links",
            str(wheelhouse),
            "-c",
            str(source_tree() / "constraints.txt"),
            *targets,
        ],
        check=True,
    )
    return wheelhouse


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve a folder over HTTP on 127.0.0.1 (pip's --find-links reads the listing)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _base_inputs() -> str:
    """What the base image is made of: it is rebuilt when one of these changes, our own code
    included, so containers always run the code under test."""
    digest = hashlib.sha256()
    root = source_tree()
    files = [root / "docker" / "Dockerfile", root / "constraints.txt", root / "pyproject.toml"]
    files += sorted((root / "zenml_core").rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_base_image(engine: DockerEngine, tag: str | None = None) -> str:
    """Our base image in ``engine``, built offline if missing or out of date; returns its tag."""
    import docker.errors

    from zenml_core.docker import base_image

    tag = tag or base_image()
    client = engine.client()
    inputs = _base_inputs()
    with contextlib.suppress(docker.errors.ImageNotFound):
        if client.images.get(tag).labels.get(BASE_LABEL) == inputs:
            return tag
    os_image = ensure_os_image(client)
    root = source_tree()
    wheelhouse = build_wheels(f"{root}[tensorflow]")  # our own wheel is built afresh too
    (core_wheel,) = wheelhouse.glob(f"zenml_core-{__version__}-*.whl")
    with tempfile.TemporaryDirectory() as context_dir:
        context = Path(context_dir)
        shutil.copy2(core_wheel, context)
        shutil.copy2(root / "constraints.txt", context)
        shutil.copy2(root / "docker" / "Dockerfile", context / "Dockerfile")
        with serve_folder(wheelhouse) as url:
            try:
                client.images.build(
                    path=str(context),
                    tag=tag,
                    pull=False,
                    rm=True,
                    forcerm=True,
                    network_mode="host",
                    labels={BASE_LABEL: inputs},
                    buildargs={
                        "BASE_IMAGE": os_image,
                        "PIP_ARGS": f"--no-index --find-links {url}",
                    },
                )
            except docker.errors.BuildError as error:
                log = "".join(c.get("stream", "") for c in error.build_log)[-4000:]
                raise RuntimeError(f"building {tag} failed: {error.msg}\n{log}") from None
    client.images.prune(filters={"dangling": True})  # the previous build's 2 GB
    return tag


# -- a registry on loopback -------------------------------------------------------------------


class LocalRegistry:
    """Debian's docker-registry on 127.0.0.1 (``localhost:PORT/...`` needs no TLS in Docker)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.address = f"localhost:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._folder = tempfile.TemporaryDirectory(prefix="zenml-registry-")

    def __enter__(self) -> LocalRegistry:
        folder = Path(self._folder.name)
        config = folder / "config.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )
        self.process = start_server(
            [_sbin("docker-registry", "docker-registry"), "serve", str(config)],
            self.port,
            "docker-registry",
        )
        return self

    def __exit__(self, *exc: object) -> None:
        from zenml_core.testing.processes import stop

        stop(self.process, timeout=10)
        self._folder.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zenml_loopback.docker_engine")
    parser.add_argument("command", choices=["start", "stop", "status", "base-image"])
    args = parser.parse_args(argv)
    engine = DockerEngine()
    if args.command == "start":
        engine.start()
        print(f"export DOCKER_HOST={engine.host}")
    elif args.command == "stop":
        engine.stop()
    elif args.command == "status":
        print("running" if engine.answers() else "stopped")
        return 0 if engine.answers() else 1
    else:
        started = not engine.answers()
        engine.start()
        try:
            print(ensure_base_image(engine))
        finally:
            if started:
                engine.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
