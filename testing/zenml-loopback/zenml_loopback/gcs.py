"""A GCS emulator on 127.0.0.1 (PyPI's gcp-storage-emulator) for tests of gs:// code.

google-cloud-storage, and Beam's gs:// IO, talk to it when ``STORAGE_EMULATOR_HOST`` is set.
The emulator is stopped by the PID it was started with.
"""

from __future__ import annotations

import os
import subprocess

from zenml_core.testing.processes import console_script, free_port, start_server, stop


class GCSEmulator:
    """``with GCSEmulator() as url:`` — the emulator's base URL; buckets via ``create_bucket``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> GCSEmulator:
        command = console_script("gcp-storage-emulator", "gcp-storage-emulator")
        self.process = start_server(
            [command, "start", "--host", "127.0.0.1", "--port", str(self.port), "--in-memory"],
            self.port,
            "gcp-storage-emulator",
        )
        return self

    def environment(self) -> dict[str, str]:
        """What a process needs to talk to this emulator, and to nothing else of Google's."""
        return {"STORAGE_EMULATOR_HOST": self.url, "NO_GCE_CHECK": "true"}

    def create_bucket(self, name: str) -> None:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        previous = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = self.url
        try:
            storage.Client(project="test", credentials=AnonymousCredentials()).create_bucket(name)
        finally:
            if previous is None:
                os.environ.pop("STORAGE_EMULATOR_HOST")
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = previous

    def __exit__(self, *exc: object) -> None:
        stop(self.process, timeout=10)
