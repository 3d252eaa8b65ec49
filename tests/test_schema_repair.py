"""No metadata store is left unopenable: a process killed while ml-metadata creates its schema
leaves a store the next process opens (the half-made schema is made again), and a damaged one
with data is named, never dropped. The kills land at a chosen point, whatever the load."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from zenml_core.exceptions import MetadataStoreError
from zenml_core.metadata import MySQLMetadataStore, SQLiteMetadataStore
from zenml_core.metadata.mlmd import MLMD_TABLES
from zenml_core.testing import wait_until

OPEN_STORE = """
from zenml_core.metadata import {cls}
store = {cls}(**{params!r})
store.retry_seconds = {retry}
store.check_access()
print("opened", flush=True)
"""


def _open_in_child(
    cls: str, params: dict, env: dict | None = None, retry: float = 600.0
) -> subprocess.Popen:
    code = OPEN_STORE.format(cls=cls, params=params, retry=retry)
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _works(store) -> None:
    run_id = f"after-repair-{uuid.uuid4().hex[:6]}"
    store.begin_run("p", run_id, "local", {})
    assert store.get_run(run_id).status == "running"


# -- SQLite ------------------------------------------------------------------------------------


def _holds_schema_lock(path: Path) -> bool:
    with open(f"{path}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def test_a_process_killed_inside_schema_creation_on_sqlite_leaves_an_openable_store(tmp_path):
    path = tmp_path / "metadata.db"
    SQLiteMetadataStore(str(path))._connection_config()  # the file, in WAL mode, no schema
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the creator blocks on its first write, inside creation
    child = _open_in_child("SQLiteMetadataStore", {"path": str(path)})
    try:
        wait_until(lambda: _holds_schema_lock(path), 120, "the child creating the schema")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert child.returncode == -signal.SIGKILL  # killed, not finished
    store = SQLiteMetadataStore(str(path))
    _works(store)
    assert set(store._schema_tables()) == set(MLMD_TABLES)


def _fresh_schema_without(path: Path, *missing: str) -> None:
    """ml-metadata's own schema (made in a child: one SQLite library per process and file),
    then some of its tables dropped, as an interrupted creation on MySQL leaves it."""
    code = (
        "from ml_metadata import metadata_store\n"
        "from ml_metadata.proto import metadata_store_pb2 as pb\n"
        "config = pb.ConnectionConfig()\n"
        f"config.sqlite.filename_uri = {str(path)!r}\n"
        "config.sqlite.connection_mode = 3\n"
        "metadata_store.MetadataStore(config)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    with contextlib.closing(sqlite3.connect(path)) as db:
        for table in missing:
            db.execute(f'DROP TABLE "{table}"')
        db.commit()


def test_a_half_made_empty_schema_is_made_again(tmp_path):
    path = tmp_path / "metadata.db"
    _fresh_schema_without(path, "Event", "Attribution")
    store = SQLiteMetadataStore(str(path))
    _works(store)
    assert set(store._schema_tables()) == set(MLMD_TABLES)


def test_a_damaged_schema_holding_data_is_named_and_kept(tmp_path):
    path = tmp_path / "metadata.db"
    subprocess.run(
        [
            sys.executable,
            "-c",
            OPEN_STORE.format(cls="SQLiteMetadataStore", params={"path": str(path)}, retry=60),
        ],
        check=True,
    )
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("INSERT INTO Context (type_id, name) VALUES (1, 'data')")
        db.execute('DROP TABLE "Event"')
        db.commit()
    child = _open_in_child("SQLiteMetadataStore", {"path": str(path)}, retry=5.0)
    _, stderr = child.communicate(timeout=120)
    message = stderr.decode()
    assert child.returncode != 0
    assert "damaged ml-metadata schema" in message and "['Event'] are missing" in message
    assert "restore this database from a backup" in message
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT COUNT(*) FROM Context").fetchone()[0] > 0  # nothing dropped


# -- MariaDB -----------------------------------------------------------------------------------


class PausingProxy:
    """A TCP proxy on 127.0.0.1 to the MariaDB server that stops passing the client's bytes on
    once it has passed ``creates`` CREATE TABLE statements: the client is then stuck inside
    ml-metadata's schema creation, with exactly that many tables made."""

    def __init__(self, port: int, creates: int) -> None:
        self.upstream = port
        self.creates = creates
        self.seen = 0
        self.paused = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        tail = b""
        try:
            while data := source.recv(65536):
                if from_client:
                    if self.paused.is_set():
                        continue  # swallowed: the statement never reaches the server
                    window = (tail + data).upper()
                    with self.lock:
                        self.seen += window.count(b"CREATE TABLE") - tail.upper().count(
                            b"CREATE TABLE"
                        )
                        if self.seen > self.creates:
                            self.paused.set()
                            continue
                    tail = data[-16:]
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    def close(self) -> None:
        self.listener.close()


def test_a_process_killed_inside_schema_creation_on_mariadb_leaves_an_openable_store(
    mysql_store,
):
    proxy = PausingProxy(mysql_store.port, creates=5)
    params = {
        "host": "127.0.0.1",
        "port": proxy.port,
        "database": mysql_store.database,
        "username": mysql_store.username,
    }
    child = _open_in_child(
        "MySQLMetadataStore", params, {mysql_store.password_env: mysql_store.password}
    )
    try:
        wait_until(proxy.paused.is_set, 120, "ml-metadata's sixth CREATE TABLE")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        proxy.close()
    assert child.returncode == -signal.SIGKILL
    half_made = mysql_store._schema_tables()
    assert 0 < len(half_made) < len(MLMD_TABLES), half_made  # the kill landed mid-creation
    _works(mysql_store)
    assert set(mysql_store._schema_tables()) == set(MLMD_TABLES)


def test_a_damaged_mariadb_schema_holding_data_is_named_and_kept(mysql_store):
    mysql_store.begin_run("p", "kept", "local", {})
    with mysql_store._sql() as db, db.cursor() as cursor:
        cursor.execute(f"DROP TABLE `{mysql_store.database}`.`Event`")
    fresh = MySQLMetadataStore(
        host=mysql_store.host,
        port=mysql_store.port,
        database=mysql_store.database,
        username=mysql_store.username,
        password=mysql_store.password,
    )
    fresh.retry_seconds = 5.0
    with pytest.raises(MetadataStoreError, match="damaged ml-metadata schema"):
        fresh.check_access()
    assert mysql_store._schema_tables()["Context"] > 0
