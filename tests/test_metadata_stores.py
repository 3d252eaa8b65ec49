"""ml-metadata on SQLite and on a real MariaDB server: lineage, listing, errors, secrets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import demo_steps
import pytest

from zenml_core.exceptions import MetadataStoreError
from zenml_core.metadata import MySQLMetadataStore, SQLiteMetadataStore


@pytest.fixture(params=["sqlite", "mysql"])
def store(request, project):
    if request.param == "sqlite":
        return SQLiteMetadataStore(str(project / "elsewhere" / "lineage.db"))
    return request.getfixturevalue("mysql_store")


def test_runs_and_lineage_are_recorded(store):
    first = demo_steps.chain().run(metadata_store=store)
    second = demo_steps.chain().run(metadata_store=store)
    runs = store.list_runs("chain")
    assert [r.run_id for r in runs] == [second.run_id, first.run_id]
    assert store.list_runs("nothing-like-it") == []
    assert {r.run_id for r in store.list_runs()} >= {first.run_id, second.run_id}
    run = store.get_run(second.run_id)
    assert run.status == "completed"
    assert [(s.step, s.state) for s in run.steps] == [
        ("produce", "cached"),
        ("double", "cached"),
        ("describe", "cached"),
    ]
    original = {s.step: s for s in store.get_run(first.run_id).steps}
    assert run.steps[2].inputs["total"].id == original["double"].outputs["total"].id
    with pytest.raises(MetadataStoreError, match=r"No zenml\.Run named 'missing'"):
        store.get_run("missing")


def test_a_run_reads_its_cache_by_key_and_never_the_pipeline_s_history(store, monkeypatch):
    name = f"history-{uuid.uuid4().hex[:6]}"
    first = demo_steps.chain(name).run(metadata_store=store)
    # the same steps in another pipeline have the same cache keys; the cache is per pipeline
    other = demo_steps.chain(f"{name}-other").run(metadata_store=store)
    assert {s.state for s in other.steps.values()} == {"completed"}

    def listing(*args, **kwargs):
        raise AssertionError("a run listed the pipeline's runs: its cost grows with history")

    asked = []
    lookup = store.completed_execution
    monkeypatch.setattr(store, "list_runs", listing)
    monkeypatch.setattr(
        store,
        "completed_execution",
        lambda pipeline, key: asked.append(key) or lookup(pipeline, key),
    )
    second = demo_steps.chain(name).run(metadata_store=store)
    assert {s.state for s in second.steps.values()} == {"cached"}
    assert len(asked) == len(set(asked)) == 3  # one lookup per step, by its key

    # a recomputed step (its output was deleted) is the newest completed execution of its key
    produce = {s.step: s for s in store.get_run(first.run_id).steps}["produce"]
    shutil.rmtree(produce.outputs["output"].uri)
    third = demo_steps.chain(name).run(metadata_store=store)
    assert third.steps["produce"].state == "completed"
    again = {s.step: s for s in store.get_run(third.run_id).steps}["produce"]
    assert store.completed_execution(name, produce.cache_key).execution_id == again.execution_id
    theirs = {s.step: s for s in store.get_run(other.run_id).steps}["produce"]
    assert store.completed_execution(f"{name}-other", produce.cache_key).execution_id == (
        theirs.execution_id
    )
    assert store.completed_execution("never-ran", produce.cache_key) is None
    assert store.completed_execution(name, "not a key' OR 1=1") is None


def test_a_store_recorded_before_the_cache_index_keeps_its_cache(store):
    name = f"upgraded-{uuid.uuid4().hex[:6]}"
    demo_steps.chain(name).run(metadata_store=store)
    # as a store written by an earlier zenml-core: no execution carries the index, nor is the
    # pipeline marked as indexed
    mlmd = store._mlmd()
    pipeline = mlmd.get_context_by_type_and_name("zenml.Pipeline", name)
    executions = mlmd.get_executions_by_context(pipeline.id)
    assert all(e.external_id.startswith("zenml.cache/") for e in executions)
    for execution in executions:
        execution.ClearField("external_id")
    mlmd.put_executions(executions)
    del pipeline.custom_properties["zenml.cache_indexed"]
    mlmd.put_contexts([pipeline])

    again = demo_steps.chain(name).run(metadata_store=store)
    assert {s.state for s in again.steps.values()} == {"cached"}
    pipeline = mlmd.get_context_by_type_and_name("zenml.Pipeline", name)
    assert "zenml.cache_indexed" in pipeline.custom_properties


def test_running_runs_are_read_without_the_finished_ones(store):
    name = f"running-{uuid.uuid4().hex[:6]}"
    demo_steps.chain(name).run(metadata_store=store)
    assert store.running_runs(name) == []
    store.begin_run(name, f"{name}-live", "local", {})
    store.begin_run(f"{name}-x", f"{name}-x-live", "local", {})
    assert [r.run_id for r in store.running_runs(name)] == [f"{name}-live"]
    store.end_run(f"{name}-live", "completed")
    assert store.running_runs(name) == []


def test_wrong_mysql_password_is_explained_without_the_password(mariadb):
    store = MySQLMetadataStore(
        host=mariadb.host,
        port=mariadb.port,
        database="zenml",
        username=mariadb.user,
        password="Wrong-Canary-7731",
    )
    with pytest.raises(MetadataStoreError) as caught:
        store.check_access()
    message = str(caught.value)
    assert f"mysql://{mariadb.user}@127.0.0.1:{mariadb.port}/zenml" in message
    assert "wrong username or password" in message
    assert "Wrong-Canary-7731" not in message


def test_unreachable_mysql_is_explained(mariadb):
    from zenml_core.testing.processes import free_port

    port = free_port()  # nobody listens there
    store = MySQLMetadataStore(host="127.0.0.1", port=port, password="x")
    with pytest.raises(MetadataStoreError, match=f"127.0.0.1:{port}/zenml.*no server listening"):
        store.check_access()


def _dump(mariadb, database: str) -> str:
    """Everything the server holds for ``database``, as SQL."""
    return subprocess.run(
        ["mariadb-dump", "--no-defaults", "-uroot", f"--socket={mariadb.socket}", database],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_the_password_never_reaches_specs_metadata_or_output(mariadb, project, capfd):
    canary = "Canary-Pw-48151623"
    mariadb.sql(
        f"ALTER USER '{mariadb.user}'@'%' IDENTIFIED BY '{canary}'; "
        f"ALTER USER '{mariadb.user}'@'localhost' IDENTIFIED BY '{canary}';"
    )
    try:
        store = MySQLMetadataStore(
            host=mariadb.host,
            port=mariadb.port,
            database="secrets",
            username=mariadb.user,
            password=canary,
        )
        assert canary not in repr(store)
        assert store.to_config()["params"]["password"] is None
        result = demo_steps.chain("secretive").run(metadata_store=store)
        assert result.status == "completed"
        dump = _dump(mariadb, "secrets")
        assert "secretive" in dump  # the dump does hold the run...
        assert canary not in dump  # ...and not the password
        for path in project.rglob("*"):
            if path.is_file():
                assert canary.encode() not in path.read_bytes(), path
        out, err = capfd.readouterr()
        assert canary not in out + err
        # a process elsewhere gets it from the environment, as the spec leaves it out
        assert store.secret_environment() == {"ZENML_MYSQL_PASSWORD": canary}
    finally:
        mariadb.sql(
            f"ALTER USER '{mariadb.user}'@'%' IDENTIFIED BY '{mariadb.password}'; "
            f"ALTER USER '{mariadb.user}'@'localhost' IDENTIFIED BY '{mariadb.password}';"
        )


def test_mysql_password_comes_from_the_environment_when_not_given(mariadb, monkeypatch):
    monkeypatch.setenv("ZENML_MYSQL_PASSWORD", mariadb.password)
    store = MySQLMetadataStore.from_config(
        {
            "kind": "metadata_store",
            "name": "mysql",
            "params": {
                "host": mariadb.host,
                "port": mariadb.port,
                "database": "fromenv",
                "username": mariadb.user,
            },
        }
    )
    store.check_access()
    assert store.list_runs() == []


def test_sqlite_store_in_an_unwritable_place_is_explained(project):
    (project / "file").write_text("not a folder")
    store = SQLiteMetadataStore(str(project / "file" / "metadata.db"))
    with pytest.raises(MetadataStoreError, match="Choose a writable path"):
        store.check_access()


def test_a_password_handed_in_a_run_spec_is_never_stored_or_printed(
    mariadb, project, tmp_path_factory
):
    """A spec whose metadata_store.params carry the password runs, but neither ml-metadata,
    the published spec nor any output holds it; re-submitting it is a plain error."""
    from zenml_core.pipeline.spec import RunSpec

    canary = "Canary-Spec-Pw-2718"
    mariadb.sql(
        f"CREATE USER 'handed'@'%' IDENTIFIED BY '{canary}'; "
        f"CREATE USER 'handed'@'localhost' IDENTIFIED BY '{canary}'; "
        "GRANT ALL PRIVILEGES ON *.* TO 'handed'@'%'; "
        "GRANT ALL PRIVILEGES ON *.* TO 'handed'@'localhost';"
    )
    pipeline = demo_steps.chain("handed")
    store = MySQLMetadataStore(
        host=mariadb.host, port=mariadb.port, database="handed", username="handed"
    )
    spec = RunSpec("handed-run-1", pipeline.to_spec({"metadata_store": store})).to_dict()
    spec["pipeline"]["components"]["metadata_store"]["params"]["password"] = canary
    path = tmp_path_factory.mktemp("handed") / "spec.json"  # the user's file, outside the project
    path.write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if k != "ZENML_MYSQL_PASSWORD"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)

    def submit():
        return subprocess.run(
            [sys.executable, "-m", "zenml_core", "run", "--spec", str(path)],
            capture_output=True,
            text=True,
            env=env,
            cwd=project,
        )

    first = submit()
    assert first.returncode == 0, first.stderr
    again = submit()
    assert again.returncode != 0
    assert "'handed-run-1' is already recorded" in again.stderr
    assert "UNIQUE" not in again.stderr and "Traceback" not in again.stderr
    for output in (first.stdout, first.stderr, again.stdout, again.stderr):
        assert canary not in output
    dump = _dump(mariadb, "handed")
    assert "handed-run-1" in dump and canary not in dump
    for file in project.rglob("*"):  # the published spec and everything else in the project
        if file.is_file():
            assert canary.encode() not in file.read_bytes(), file
