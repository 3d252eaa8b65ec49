"""Beam's own portable job service and an EXTERNAL worker pool on 127.0.0.1: the protocol
Flink's and Spark's job servers speak, for tests and benchmarks of portable backends.

Both start as this interpreter with its venv's ``bin`` first on PATH (the pool starts its SDK
workers as plain ``python``); the pool binds every interface (``worker_pool_main`` has no host
option), so it gets ``bind_loopback.so`` preloaded. Stop them with
``zenml_core.testing.processes.stop``.
"""

from __future__ import annotations

import os
import subprocess
import sys

from zenml_core.testing.processes import free_port, start_server
from zenml_loopback.listeners import preload_library


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, **(extra or {})}


def start_job_service() -> tuple[subprocess.Popen[bytes], str]:
    """``(process, "localhost:PORT")`` of ``local_job_service_main`` (it binds localhost)."""
    port = free_port()
    command = [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main"]
    service = start_server(
        [*command, "--port", str(port)], port, "Beam job service", _environment(), timeout=120
    )
    return service, f"localhost:{port}"


def start_worker_pool(pythonpath: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """``(process, "localhost:PORT")`` of ``worker_pool_main``; ``pythonpath``: where its
    workers import user code from (as a pool in an image with the code baked in)."""
    port = free_port()
    extra = {"LD_PRELOAD": preload_library(), **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    command = [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main"]
    pool = start_server(
        [*command, "--service_port", str(port)], port, "Beam worker pool", _environment(extra),
        timeout=120,
    )  # fmt: skip
    return pool, f"localhost:{port}"
