"""pytest fixtures for zenml-core and plugin tests.

Enable them with ``pytest_plugins = ["zenml_core.testing.fixtures"]`` in your conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from zenml_core.plugins import PluginManager, set_plugin_manager


@pytest.fixture
def zenml_plugins() -> Iterator[PluginManager]:
    """A fresh plugin manager with only the built-in backends, installed as the process default.

    Register an in-process plugin with ``zenml_plugins.register(module_or_object, name=...)``;
    whatever happens to be installed in the environment is not loaded. The previous manager is
    restored afterwards.
    """
    manager = PluginManager(entry_points=None)
    previous = set_plugin_manager(manager)
    try:
        yield manager
    finally:
        set_plugin_manager(previous)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Name every zenml plugin found, with its version and state, at the top of a test run."""
    from zenml_core.plugins import PluginManager

    plugins = PluginManager().plugins()
    return [
        "zenml plugins: "
        + ", ".join(f"{p.distribution or p.name} {p.version or '?'} ({p.status})" for p in plugins)
    ]


@pytest.fixture(scope="session")
def mariadb() -> Iterator[object]:
    """A MariaDB server on 127.0.0.1 for the session (installed from Debian if missing)."""
    from zenml_core.testing.mariadb import MariaDBServer

    with MariaDBServer() as server:
        yield server


@pytest.fixture
def mysql_store(mariadb: object, request: pytest.FixtureRequest) -> object:
    """A MySQLMetadataStore on a fresh database of the session's MariaDB server."""
    import hashlib
    import re

    from zenml_core.metadata import MySQLMetadataStore

    # the test's name, and its node id's hash: equal test names in two classes differ
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    database = re.sub(r"\W", "_", request.node.name)[-50:] + "_" + digest
    return MySQLMetadataStore(
        host=mariadb.host,  # type: ignore[attr-defined]
        port=mariadb.port,  # type: ignore[attr-defined]
        database=database,
        username=mariadb.user,  # type: ignore[attr-defined]
        password=mariadb.password,  # type: ignore[attr-defined]
    )
