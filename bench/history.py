"""Run cost against the store's history: a 10-step chain run on a store that holds N recorded
step executions of its pipeline, paired with the same run on an empty store, on SQLite and on
a real MariaDB server. Ratio = filled / empty, first run (every step executes) and fully cached.

The history is written in bulk, as the store itself records a run (the same properties, the
same cache index, one transaction per run of 10 steps), since recording 200,000 steps one run
at a time would take most of an hour.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zenml_core import Pipeline, step

STEPS = 10
REPEATS = 5
#: (store, recorded step executions): the 200,000-step SQLite history takes ~3 min to write
HISTORIES = (("SQLite", 20_000), ("SQLite", 200_000), ("MariaDB", 20_000))
PIPELINE = "history"


@step
def noop(x: int, index: int) -> int:
    return x


def _chain(seed: int) -> Pipeline:
    """Steps that differ (their index), as a pipeline's do: one key each."""
    pipeline = Pipeline(PIPELINE)
    previous = pipeline.add_step(noop(x=seed, index=0).with_name("s0"))
    for i in range(1, STEPS):
        previous = pipeline.add_step(noop(x=previous, index=i).with_name(f"s{i}"))
    return pipeline


def fill(store: Any, executions: int) -> None:
    """Record ``executions`` completed step executions of PIPELINE, 10 to a run."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from zenml_core.metadata.base import ArtifactRecord, State
    from zenml_core.metadata.mlmd import _cache_index, _dump_outputs, _event, _now

    artifact_type = store._types()["artifact"]
    spec = {"pipeline": {"name": PIPELINE, "steps": [{"name": f"s{i}"} for i in range(STEPS)]}}
    for run in range(executions // STEPS):
        run_id = f"{PIPELINE}-past-{run:06d}"
        store.begin_run(PIPELINE, run_id, "orchestrator:local", spec)
        contexts = store._run_contexts().pop(run_id)
        done, artifacts, edges = [], [], []
        for i in range(STEPS):
            key = hashlib.sha256(f"{run}/{i}".encode()).hexdigest()
            execution = store._execution(
                f"s{i}", run_id, key, "processing:local", "history:noop", "COMPLETE"
            )
            execution.external_id = _cache_index(PIPELINE, key)
            execution.properties["started_at"].double_value = _now()
            execution.properties["ended_at"].double_value = _now()
            uri = f"/nonexistent/{run_id}/s{i}/output"
            record = ArtifactRecord(None, "output", uri, key, "builtins.int")
            execution.properties["outputs"].string_value = _dump_outputs({"output": record})
            artifact = pb.Artifact(
                type_id=artifact_type, uri=uri, external_id=uri, state=pb.Artifact.LIVE
            )
            artifact.properties["name"].string_value = "output"
            artifact.properties["fingerprint"].string_value = key
            artifact.properties["data_type"].string_value = "builtins.int"
            done.append(execution)
            artifacts.append(artifact)
            edges.append((i, i, _event(pb.Event.OUTPUT, "output")))
        store._call(
            lambda s, d=done, a=artifacts, c=contexts, e=edges: s.put_lineage_subgraph(
                d, a, c, e, reuse_context_if_already_exist=True
            )
        )
        store.end_run(run_id, State.COMPLETED)


def _timed_runs(store: Any, seed: int) -> tuple[float, float]:
    """A first run (new cache keys) and a fully cached one: seconds each."""
    start = time.perf_counter()
    first = _chain(seed).run(metadata_store=store)
    middle = time.perf_counter()
    cached = _chain(seed).run(metadata_store=store)
    end = time.perf_counter()
    assert first.status == cached.status == "completed"
    assert {s.state for s in cached.steps.values()} == {"cached"}
    return middle - start, end - middle


@contextlib.contextmanager
def _stores(kind: str, root: Path) -> Iterator[Any]:
    """A factory of fresh stores of one kind (name -> store)."""
    from zenml_core.metadata import MySQLMetadataStore, SQLiteMetadataStore

    if kind == "SQLite":
        yield lambda name: SQLiteMetadataStore(str(root / f"{name}.db"))
        return
    from zenml_core.testing.mariadb import MariaDBServer

    with MariaDBServer() as db:
        yield lambda name: MySQLMetadataStore(
            host=db.host, port=db.port, database=name, username=db.user, password=db.password
        )


def run() -> list[dict[str, object]]:
    rows = []
    seed = int(time.time())
    for kind, executions in HISTORIES:
        with (
            tempfile.TemporaryDirectory(prefix="zenml-bench-history-") as tmp,
            _stores(kind, Path(tmp)) as new_store,
        ):
            root = Path(tmp)
            (root / ".zenml").mkdir()
            here = os.getcwd()
            os.chdir(root)  # the runs' artifacts go to this project's local store
            try:
                filled = new_store(f"filled{executions}")
                started = time.perf_counter()
                fill(filled, executions)
                fill_s = time.perf_counter() - started
                ratios: dict[str, list[float]] = {"first": [], "cached": []}
                seconds: dict[str, list[float]] = {"first": [], "cached": []}
                for repeat in range(REPEATS + 1):
                    empty = new_store(f"empty{repeat}")
                    empty.check_access()  # the schema's creation is not part of a run
                    seed += 1
                    if repeat % 2:  # alternate which goes first: no side gains from its turn
                        on_empty = _timed_runs(empty, seed)
                        on_filled = _timed_runs(filled, seed)
                    else:
                        on_filled = _timed_runs(filled, seed)
                        on_empty = _timed_runs(empty, seed)
                    if repeat == 0:
                        continue  # warm-up: imports, the filled store's first connection
                    for kind_of_run, a, b in zip(
                        ("first", "cached"), on_empty, on_filled, strict=True
                    ):
                        ratios[kind_of_run].append(b / a)
                        seconds[kind_of_run].append(b)
            finally:
                os.chdir(here)
        for kind_of_run in ("first", "cached"):
            ratio = statistics.median(ratios[kind_of_run])
            run_s = statistics.median(seconds[kind_of_run])
            rows.append(
                {
                    "benchmark": (
                        f"{kind} store holding {executions:,} steps / empty, {kind_of_run} "
                        f"run of {STEPS} steps ({run_s * 1000:.0f} ms; history written in "
                        f"{fill_s:.0f} s)"
                    ),
                    "value": f"{ratio:.2f}x",
                    "target": "<= 1.05x",
                    "ok": ratio <= 1.05,
                    "heavy modules": [],
                }
            )
    return rows


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
