"""A throwaway MariaDB server on 127.0.0.1 for tests of MySQL metadata stores.

Needs Debian's mariadb-server and mariadb-client (``python testing/debian.py mariadb`` in a
checkout; this module installs nothing), keeps its data in a temporary folder, and stops only
the server it started, by its PID.
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from zenml_core.testing.processes import free_port, program, stop


def _which(name: str) -> str:
    package = "mariadb-client" if name == "mariadb" else "mariadb-server"
    return program(name, package, "mariadb")


@dataclass
class MariaDB:
    host: str
    port: int
    user: str
    password: str
    socket: str

    def sql(self, statement: str) -> str:
        """Run SQL as root over the server's socket."""
        result = subprocess.run(
            [
                _which("mariadb"),
                "--no-defaults",
                "-uroot",
                f"--socket={self.socket}",
                "-N",
                "-e",
                statement,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout


class MariaDBServer:
    """``with MariaDBServer() as db:`` gives a running server and a user with all rights."""

    def __init__(self, user: str = "zenml") -> None:
        self.user = user
        self.password = secrets.token_hex(12)
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MariaDB:
        self.tmp = tempfile.TemporaryDirectory(prefix="zenml-mariadb-")
        root = Path(self.tmp.name)
        data, sock = root / "data", str(root / "mysqld.sock")
        port = free_port()
        subprocess.run(
            [
                _which("mariadb-install-db"),
                "--no-defaults",
                "--user=root",
                f"--datadir={data}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )
        self.log = (root / "server.log").open("wb")
        self.process = subprocess.Popen(
            [
                _which("mariadbd"),
                "--no-defaults",
                "--user=root",
                f"--datadir={data}",
                "--bind-address=127.0.0.1",
                f"--port={port}",
                f"--socket={sock}",
                f"--pid-file={root / 'mysqld.pid'}",
                "--max-connections=500",
                "--innodb-flush-log-at-trx-commit=2",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.db = MariaDB("127.0.0.1", port, self.user, self.password, sock)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.db.sql("SELECT 1")
                break
            except subprocess.CalledProcessError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise RuntimeError(
                        f"MariaDB did not start: {(root / 'server.log').read_text()[-2000:]}"
                    ) from None
                time.sleep(0.2)
        # TCP logins from 127.0.0.1 arrive as 'localhost', so the user exists for both
        for host in ("%", "localhost"):
            self.db.sql(
                f"CREATE USER '{self.user}'@'{host}' IDENTIFIED BY '{self.password}'; "
                f"GRANT ALL PRIVILEGES ON *.* TO '{self.user}'@'{host}';"
            )
        return self.db

    def __exit__(self, *exc: object) -> None:
        stop(self.process, timeout=30)
        self.log.close()
        self.tmp.cleanup()
