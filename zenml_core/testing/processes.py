"""Servers the tests start: a free loopback port, and stopping exactly the process started."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

SBIN = ("/usr/sbin", "/usr/bin", "/sbin")


def program(name: str, debian_package: str, group: str) -> str:
    """The path of an installed program a test server needs, or an error saying how to get
    it. Nothing here installs packages: a zenml-core checkout's ``testing/debian.py GROUP``
    does (``./dev test`` runs it for the sessions that need it)."""
    import os

    found = shutil.which(name) or next(
        (f"{d}/{name}" for d in SBIN if os.access(f"{d}/{name}", os.X_OK)), None
    )
    if found:
        return found
    raise RuntimeError(
        f"{name} is not installed; it comes with the Debian package {debian_package}. "
        "Install that with your system's package manager, or in a zenml-core checkout run "
        f"`python testing/debian.py {group}` (as root)."
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop(process: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    """Terminate a process this test run started (by its handle, so by its PID)."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def console_script(name: str, install: str) -> str:
    """A console script of this environment (next to its python), else from PATH."""
    local = Path(sys.executable).with_name(name)
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: pip install {install}")
    return found


def start_server(
    command: list[str],
    port: int,
    what: str,
    env: dict[str, str] | None = None,
    timeout: float = 30,
) -> subprocess.Popen[bytes]:
    """Start a server that listens on 127.0.0.1:``port``; wait (``timeout`` s at most, generous
    on a busy machine) until it does."""
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop(process)
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)
