"""Run a control plane's workload (a pod's container, a VM's or a custom job's command) for real:
in a Docker container from its image, or, where there is no Docker engine, as a subprocess of
this machine's Python with the same command and environment.

Both report what a kubelet would: the exit code, whether the kernel's OOM killer ended it, and
the output; both can be killed (a deleted Job, a preempted VM).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Workload:
    image: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    #: bytes; enforced by Docker (the kernel's OOM killer ends the container beyond it)
    memory_limit: int | None = None


class ImageNotFound(Exception):
    """The image is not on this node and cannot be pulled (no registry is reachable)."""


class Running(Protocol):
    def output(self) -> str: ...

    def wait(self) -> tuple[int, bool]:
        """Block until it ends: (exit code, killed by the OOM killer)."""
        ...

    def kill(self) -> None: ...


class Runner(Protocol):
    def start(self, workload: Workload) -> Running: ...


class _Output:
    """What a workload printed so far, readable while it runs."""

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._lock = threading.Lock()

    def feed(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            with self._lock:
                self._chunks.append(chunk.decode(errors="replace"))

    def text(self) -> str:
        with self._lock:
            return "".join(self._chunks)


class DockerRunner:
    """Containers on a Docker engine, with host networking so loopback services are reachable.
    Images are never pulled: one missing locally is reported as an image that cannot be pulled."""

    def __init__(self, client: Any, extra_env: dict[str, str] | None = None) -> None:
        self.client = client
        self.extra_env = extra_env or {}

    def start(self, workload: Workload) -> Running:
        import docker.errors

        try:
            self.client.images.get(workload.image)
        except docker.errors.ImageNotFound:
            raise ImageNotFound(
                f'Back-off pulling image "{workload.image}": not present on the node and '
                "no registry reachable"
            ) from None
        container = self.client.containers.run(
            workload.image,
            workload.command,
            environment={**self.extra_env, **workload.env},
            working_dir=workload.working_dir,
            network_mode="host",
            mem_limit=workload.memory_limit,
            memswap_limit=workload.memory_limit,
            detach=True,
        )
        return _Container(container)


class _Container:
    def __init__(self, container: Any) -> None:
        self.container = container
        self._output = _Output()
        self._reader = threading.Thread(
            target=self._output.feed, args=(container.logs(stream=True, follow=True),), daemon=True
        )
        self._reader.start()

    def output(self) -> str:
        return self._output.text()

    def wait(self) -> tuple[int, bool]:
        status = self.container.wait()
        self._reader.join(timeout=10)
        self.container.reload()
        oom = bool(self.container.attrs["State"].get("OOMKilled"))
        code = int(status.get("StatusCode", -1))
        self.container.remove(force=True)
        return code, oom

    def kill(self) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.APIError):  # already gone
            self.container.kill()


class SubprocessRunner:
    """The same command as a child process where no Docker engine runs: ``python`` is this
    interpreter, the environment holds only what the pod spec gives (plus PATH and HOME), and
    the working directory is a fresh folder. Only ``images`` count as present."""

    def __init__(self, images: Iterable[str], extra_env: dict[str, str] | None = None) -> None:
        self.images = set(images)
        self.extra_env = extra_env or {}

    def start(self, workload: Workload) -> Running:
        if workload.image not in self.images:
            raise ImageNotFound(f'Back-off pulling image "{workload.image}": no such image')
        command = list(workload.command)
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable
        workdir = tempfile.mkdtemp(prefix="zenml-workload-")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": workdir}
        env.update(self.extra_env)
        env.update(workload.env)
        return _Child(command, env, workload.working_dir or workdir, scratch=workdir)


class _Child:
    def __init__(self, command: list[str], env: dict[str, str], cwd: str, scratch: str) -> None:
        self._output = _Output()
        self._scratch = scratch  # the pod's own folder: removed when it ends, as a pod's is
        try:
            self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
                command,
                env=env,
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except (FileNotFoundError, PermissionError) as error:
            self.process = None
            self._output.feed([f"exec failed: {error}\n".encode()])
            return
        stdout = typing.cast(io.BufferedReader, self.process.stdout)
        self._reader = threading.Thread(
            target=self._output.feed, args=(iter(lambda: stdout.read1(65536), b""),), daemon=True
        )
        self._reader.start()

    def output(self) -> str:
        return self._output.text()

    def wait(self) -> tuple[int, bool]:
        if self.process is None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            return 127, False
        code = self.process.wait()
        self._reader.join(timeout=10)
        shutil.rmtree(self._scratch, ignore_errors=True)
        return (128 - code if code < 0 else code), False  # killed by signal N: 128+N, as a shell

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
