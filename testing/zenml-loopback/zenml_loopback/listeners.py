"""Keep test workloads' servers on loopback when they have no bind-address setting.

TensorFlow's multi-worker gRPC server binds ``[::]:PORT`` whatever address its ``TF_CONFIG``
names, and has no option to bind one interface. Tests here may only listen on 127.0.0.1, so
workload processes that start such servers get ``bind_loopback.so`` preloaded: a bind meant for
every interface goes to 127.0.0.1 (``::ffff:127.0.0.1`` for a dual-stack socket) instead.
The library is compiled once per source version with the system C compiler.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("bind_loopback.c")


def cache_folder() -> Path:
    root = os.environ.get("ZENML_LOOPBACK_CACHE") or Path.home() / ".cache" / "zenml-core"
    return Path(root) / "loopback"


def preload_library() -> str:
    """The path of ``bind_loopback.so``, built here if needed (``RuntimeError`` without a C
    compiler, naming what to install)."""
    source = SOURCE.read_bytes()
    target = cache_folder() / f"bind_loopback-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if target.exists():
        return str(target)
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError(
            "bind_loopback.so needs a C compiler (cc or gcc, Debian package gcc) to keep "
            "multi-worker test servers on 127.0.0.1"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / target.name
        subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-o", str(built), str(SOURCE), "-ldl"],
            check=True,
            capture_output=True,
        )
        os.replace(built, target)  # atomic: parallel sessions never see half a library
    return str(target)
