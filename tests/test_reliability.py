"""Runs killed at random moments, and many runs at once on one store."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from zenml_core.artifacts.base import MANIFEST, fingerprint
from zenml_core.artifacts.local import STAGING
from zenml_core.metadata import SQLiteMetadataStore
from zenml_core.testing import terminal_sigint

SUPPORT = Path(__file__).parent / "support"

SLOW_PIPELINE = {
    "name": "slow",
    "steps": [
        {"name": "make", "source": "slow_steps:make", "params": {"n": 300}},
        {
            "name": "first",
            "source": "slow_steps:write_shards",
            "inputs": {"x": "make.output"},
            "params": {"shards": 30, "delay": 0.02},
        },
        {
            "name": "second",
            "source": "slow_steps:write_shards",
            "inputs": {"x": "make.output"},
            "params": {"shards": 31, "delay": 0.02},
        },
        {"name": "count", "source": "slow_steps:count", "inputs": {"shards": "second.output"}},
    ],
}


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    env.update(PYTHONPATH=str(SUPPORT), **extra)
    return env


def _start(project: Path, pipeline_file: Path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "zenml_core", "run", str(pipeline_file), *args],
        cwd=project,
        env=_environment(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=terminal_sigint,
    )


def _published_artifacts(root: Path) -> list[Path]:
    """Every folder a reader could take for an artifact: final paths, not staging."""
    found = []
    for manifest_or_dir in (root / "slow").glob("*/*/*/*"):  # run / step / output / unique
        found.append(manifest_or_dir)
    return found


def test_sigkill_at_random_moments_never_leaves_a_half_written_artifact(project):
    pipeline_file = project / "slow.yaml"
    pipeline_file.write_text(yaml.safe_dump(SLOW_PIPELINE))
    artifacts = project / ".zenml" / "artifacts"
    seed = int(os.environ.get("ZENML_TEST_SEED", "20261124"))
    rng = random.Random(seed)
    started = time.monotonic()
    _start(project, pipeline_file, "--no-cache").communicate()
    duration = time.monotonic() - started  # kill moments spread over a whole run
    kills = 0
    for _ in range(8):
        process = _start(project, pipeline_file, "--no-cache")
        time.sleep(rng.uniform(0.15, 0.95) * duration)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate()
        for folder in _published_artifacts(artifacts):
            # an artifact is either complete (sealed, and its files match the seal) or absent
            assert (folder / MANIFEST).is_file(), f"unsealed artifact {folder} (seed {seed})"
            assert fingerprint(folder) == (folder / MANIFEST).read_text().strip(), folder
    assert kills >= 4, f"too few runs were killed mid-way to mean anything (seed {seed})"
    finished = _start(project, pipeline_file)
    out, err = finished.communicate(timeout=120)
    assert finished.returncode == 0, err
    assert ": completed" in out
    # the finished run removed what the killed writers left in staging
    leftovers = [p for p in (artifacts / STAGING).iterdir() if not p.name.startswith("probe")]
    assert leftovers == []
    store = SQLiteMetadataStore(str(project / ".zenml" / "metadata.db"))
    runs = store.list_runs("slow")
    assert runs[0].status == "completed"
    # the killed runs were reconciled when the finished one began: none says "running"
    for run in runs[1:]:
        assert run.status == "completed" or run.error.startswith("abandoned: process"), run
    for step in store.get_run(runs[0].run_id).steps:
        for artifact in step.outputs.values():
            assert fingerprint(Path(artifact.uri)) == artifact.fingerprint


def _concurrent_runs(project: Path, count: int, components: dict, **env: str) -> None:
    pipeline = {
        "name": "together",
        "components": components,
        "steps": [
            {"name": "make", "source": "slow_steps:make", "params": {"n": 5}},
            {
                "name": "first",
                "source": "slow_steps:write_shards",
                "inputs": {"x": "make.output"},
                "params": {"shards": 3, "delay": 0.0},
            },
            {"name": "count", "source": "slow_steps:count", "inputs": {"shards": "first.output"}},
        ],
    }
    pipeline_file = project / "together.yaml"
    pipeline_file.write_text(yaml.safe_dump(pipeline))
    processes = [_start(project, pipeline_file, "--no-cache", **env) for _ in range(count)]
    failures = []
    for process in processes:
        _, err = process.communicate(timeout=300)
        if process.returncode != 0:
            failures.append(err[-2000:])
    assert failures == []


def _check_every_execution_recorded(store, count: int) -> None:
    runs = store.list_runs("together")
    assert len(runs) == count
    assert {r.status for r in runs} == {"completed"}
    for run in runs:
        steps = store.get_run(run.run_id).steps
        assert [(s.step, s.state) for s in steps] == [
            ("make", "completed"),
            ("first", "completed"),
            ("count", "completed"),
        ]
        assert steps[2].inputs["shards"].id == steps[1].outputs["output"].id


def test_eight_concurrent_runs_on_one_sqlite_store(project):
    path = str(project / "shared" / "metadata.db")
    components = {
        "metadata_store": {"kind": "metadata_store", "name": "sqlite", "params": {"path": path}}
    }
    _concurrent_runs(project, 8, components)
    _check_every_execution_recorded(SQLiteMetadataStore(path), 8)


@pytest.mark.usefixtures("project")
def test_sixteen_concurrent_runs_on_mariadb(project, mysql_store):
    components = {"metadata_store": mysql_store.to_config()}  # no password in the YAML
    _concurrent_runs(project, 16, components, ZENML_MYSQL_PASSWORD=mysql_store.password)
    _check_every_execution_recorded(mysql_store, 16)


def test_ctrl_c_marks_the_step_and_the_run_as_interrupted(project):
    pipeline_file = project / "slow.yaml"
    pipeline_file.write_text(yaml.safe_dump(SLOW_PIPELINE))
    process = _start(project, pipeline_file, "--no-cache")
    store = SQLiteMetadataStore(str(project / ".zenml" / "metadata.db"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until a writer step is under way
        runs = store.list_runs("slow") if (project / ".zenml" / "metadata.db").exists() else []
        if runs and any(
            s.state == "running" and s.step in ("first", "second")
            for s in store.get_run(runs[0].run_id).steps
        ):
            break
        time.sleep(0.05)
    else:
        pytest.fail("no writer step was seen running within 60 s")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted; a run under way is recorded as failed" in err
    run = store.get_run(store.list_runs("slow")[0].run_id)
    assert run.status == "failed" and "KeyboardInterrupt" in run.error
    states = {s.step: (s.state, s.error) for s in run.steps}
    assert "running" not in {state for state, _ in states.values()}
    assert any(error == "interrupted (Ctrl-C)" for _, error in states.values())


def test_a_killed_run_is_reconciled_as_abandoned(project):
    """A run whose process was SIGKILLed does not stay 'running' forever: listing runs marks
    it failed, with the steps it left running, and says which process is gone."""
    import json

    pipeline_file = project / "slow.yaml"
    slow = dict(SLOW_PIPELINE, steps=[dict(s) for s in SLOW_PIPELINE["steps"]])
    slow["steps"][1]["params"] = {"shards": 600, "delay": 0.1}  # a minute: killed long before
    pipeline_file.write_text(yaml.safe_dump(slow))
    process = _start(project, pipeline_file, "--no-cache")
    store = SQLiteMetadataStore(str(project / ".zenml" / "metadata.db"))

    def first_running():
        runs = store.list_runs("slow") if (project / ".zenml" / "metadata.db").exists() else []
        return runs and any(
            s.step == "first" and s.state == "running" for s in store.get_run(runs[0].run_id).steps
        )

    try:
        from zenml_core.testing import wait_until

        wait_until(first_running, 120, "the step 'first' running")
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    listed = subprocess.run(
        [sys.executable, "-m", "zenml_core", "runs", "list", "--json"],
        cwd=project,
        env=_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    (run,) = json.loads(listed.stdout)
    assert run["status"] == "failed"
    record = store.get_run(run["run_id"])
    assert record.error.startswith(f"abandoned: process {process.pid} on ")
    assert record.failure == "abandoned"
    states = {s.step: (s.state, s.error) for s in record.steps}
    assert states["first"] == ("failed", record.error)
    assert states["make"][0] == "completed"


def test_a_step_another_run_finished_meanwhile_is_a_cache_hit(project, tmp_path):
    """Run B starts while run A executes 'counted'; by the time B's 'counted' is ready, A has
    finished it: B takes it from the cache instead of running it again."""
    from zenml_core.testing import wait_until

    gates = tmp_path / "gates"
    gates.mkdir()
    store = SQLiteMetadataStore(str(project / ".zenml" / "metadata.db"))

    def pipeline_file(tag):
        path = project / f"shared-{tag}.yaml"
        steps = [
            {
                "name": "gate",
                "source": "slow_steps:gate",
                "params": {"tag": tag, "folder": str(gates)},
            },
            {"name": "counted", "source": "slow_steps:counted", "inputs": {"x": "gate.output"}},
        ]
        path.write_text(yaml.safe_dump({"name": "shared", "steps": steps}))
        return path

    def state(run_index, step):
        runs = sorted(store.list_runs("shared"), key=lambda r: r.started_at or 0)
        if len(runs) <= run_index:
            return None
        record = store.get_run(runs[run_index].run_id)
        return next((s.state for s in record.steps if s.step == step), None)

    (gates / "go-a").touch()
    first = _start(project, pipeline_file("a"), ZENML_TEST_GATES=str(gates))
    wait_until(lambda: state(0, "counted") == "running", 120, "run A's 'counted' running")
    second = _start(project, pipeline_file("b"), ZENML_TEST_GATES=str(gates))
    wait_until(lambda: state(1, "gate") == "running", 120, "run B's 'gate' running")
    (gates / "work-go").touch()  # A's 'counted' finishes...
    wait_until(lambda: state(0, "counted") == "completed", 120, "run A's 'counted' done")
    (gates / "go-b").touch()  # ...before B's becomes ready
    for process in (first, second):
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert (gates / "executions").read_text().count("ran") == 1
    assert state(1, "counted") == "cached"


def test_a_run_elsewhere_that_stopped_beating_is_reconciled(project, monkeypatch):
    """A run owned by a process on another machine (a pod, a VM) cannot be looked up from
    here: it is abandoned once its heartbeat is ten beats old, and kept while it beats."""
    import json as json_module

    from zenml_core.metadata.base import owner_gone

    monkeypatch.setenv("ZENML_HEARTBEAT_SECONDS", "0.1")
    store = SQLiteMetadataStore(str(project / ".zenml" / "metadata.db"))
    store.begin_run("elsewhere", "pod-run", "kubernetes", {})
    store.begin_run("elsewhere", "beating-run", "kubernetes", {})

    def move_to_a_pod(run_id):
        def write(mlmd):
            run = mlmd.get_context_by_type_and_name("zenml.Run", run_id)
            owner = {"host": "zenml-run-pod-7f9c", "pid": 1, "since": "42"}
            run.properties["owner"].string_value = json_module.dumps(owner)
            mlmd.put_contexts([run])

        store._call(write)
        store._run_contexts().pop(run_id, None)

    move_to_a_pod("pod-run")
    move_to_a_pod("beating-run")
    time.sleep(1.5)  # fifteen beats without a word from either
    store.heartbeat("beating-run")
    assert store.reconcile("elsewhere") == ["pod-run"]
    record = store.get_run("pod-run")
    assert record.status == "failed"
    assert record.error.startswith("abandoned: no heartbeat from process 1 on zenml-run-pod-7f9c")
    assert store.get_run("beating-run").status == "running"
    assert owner_gone(store.get_run("beating-run")) == ""


def test_a_running_run_beats(project):
    """While its step runs, the run's heartbeat moves."""
    from zenml_core.testing import wait_until

    pipeline_file = project / "slow.yaml"
    slow = dict(SLOW_PIPELINE, steps=[dict(s) for s in SLOW_PIPELINE["steps"][:2]])
    slow["steps"][1]["params"] = {"shards": 600, "delay": 0.1}
    pipeline_file.write_text(yaml.safe_dump(slow))
    process = _start(project, pipeline_file, "--no-cache", ZENML_HEARTBEAT_SECONDS="0.2")
    store = SQLiteMetadataStore(str(project / ".zenml" / "metadata.db"))

    def beat():
        if not (project / ".zenml" / "metadata.db").exists():
            return None
        runs = store.list_runs("slow")
        return runs[0].heartbeat if runs else None

    try:
        first = wait_until(beat, 120, "a first heartbeat")
        wait_until(lambda: (beat() or 0) > first, 120, "a later heartbeat")
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
