"""S3 on 127.0.0.1: moto's server (PyPI moto[server]), for tests of s3:// code with boto3.

Clients reach it with ``endpoint_url=emulator.url`` and any keys (``emulator.environment()``
gives them as the standard AWS variables). It is stopped by the PID it was started with.
"""

from __future__ import annotations

import subprocess
from typing import Any

from zenml_core.testing.processes import console_script, free_port, start_server, stop


class S3Emulator:
    """``with S3Emulator() as s3:`` moto_server; ``s3.client()`` is a boto3 client for it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> S3Emulator:
        command = console_script("moto_server", "'moto[server]'")
        self.process = start_server(
            [command, "-H", "127.0.0.1", "-p", str(self.port)], self.port, "moto_server"
        )
        return self

    def environment(self) -> dict[str, str]:
        """What a process needs to use this emulator (and no real AWS account)."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "loopback",
            "AWS_SECRET_ACCESS_KEY": "loopback",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, service: str = "s3") -> Any:
        import boto3

        env = self.environment()
        return boto3.client(
            service,
            endpoint_url=self.url,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )

    def __exit__(self, *exc: object) -> None:
        stop(self.process, timeout=10)
