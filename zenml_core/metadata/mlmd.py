"""Metadata on ml-metadata (MLMD): SQLite embedded by default, MySQL for shared stores.

Layout in MLMD: a ``zenml.Pipeline`` context per pipeline and a ``zenml.Run`` context per run;
a ``zenml.Step`` execution per step run (state, timings, backend, cache key); a
``zenml.Artifact`` per output (URI, fingerprint); INPUT/OUTPUT events for lineage. Each step
execution also carries its outputs as a JSON property, so the cache is answered from one query
per run instead of one per step.
"""

from __future__ import annotations

import abc
import contextlib
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from zenml_core.backends.states import State
from zenml_core.component import secret_field
from zenml_core.exceptions import ConfigError, MetadataStoreError
from zenml_core.metadata.base import (
    ArtifactRecord,
    BaseMetadataStore,
    CachedStep,
    RunRecord,
    StepRecord,
    StepStart,
    current_owner,
)

if TYPE_CHECKING:
    from ml_metadata.proto import metadata_store_pb2 as pb

PIPELINE_TYPE = "zenml.Pipeline"
RUN_TYPE = "zenml.Run"
STEP_TYPE = "zenml.Step"
ARTIFACT_TYPE = "zenml.Artifact"
#: set on a pipeline's context once its completed executions carry the cache index
CACHE_INDEXED = "zenml.cache_indexed"

T = TypeVar("T")

_STATE_TO_MLMD = {
    State.RUNNING: "RUNNING",
    State.COMPLETED: "COMPLETE",
    State.FAILED: "FAILED",
    State.CACHED: "CACHED",
}
_MLMD_TO_STATE = {v: k for k, v in _STATE_TO_MLMD.items()}
# SQLite answers "database is locked" while another process writes; these are worth a retry.
#: ml-metadata's words for a schema that lacks some of its tables
PARTIAL_SCHEMA = "There are a subset of tables in MLMD instance"
#: the tables of ml-metadata's schema (version 10)
MLMD_TABLES = (
    "Type",
    "TypeProperty",
    "ParentType",
    "Artifact",
    "ArtifactProperty",
    "Execution",
    "ExecutionProperty",
    "Event",
    "EventPath",
    "MLMDEnv",
    "Context",
    "ContextProperty",
    "ParentContext",
    "Association",
    "Attribution",
)
#: tables ml-metadata fills while it creates its schema (its version, its system types)
SCHEMA_ONLY = ("MLMDEnv", "Type", "TypeProperty", "ParentType")
_log = logging.getLogger(__name__)

_TRANSIENT = (
    "locked",
    "busy",
    "deadlock",
    "try restarting transaction",
    "lost connection",
    "please retry",  # MLMD creating its schema while another process does the same
    "concurrent writes aborted",  # MLMD's own retries on a busy database ran out
)


def _now(seconds: float | None = None) -> float:
    return seconds if seconds is not None else time.time()


class MLMDMetadataStore(BaseMetadataStore):
    """Shared MLMD logic; subclasses say how to connect."""

    #: how long to keep retrying transient errors (concurrent writers) before giving up
    retry_seconds: float = 60.0

    @abc.abstractmethod
    def _connection_config(self) -> pb.ConnectionConfig:
        """How ml-metadata connects to this store."""

    def _where(self) -> str:
        """Where this store is, for error messages (never the password)."""
        return type(self).__name__

    def _connect_hint(self) -> str:
        return ""

    @abc.abstractmethod
    def _schema_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held while ml-metadata creates or checks its schema, by every zenml process that
        opens this store, so a schema being created is never taken for a broken one."""

    @abc.abstractmethod
    def _schema_tables(self) -> dict[str, int]:
        """ml-metadata's tables in this store, with their row counts."""

    @abc.abstractmethod
    def _drop_tables(self, tables: list[str]) -> None:
        """Drop these (empty) tables."""

    # -- connection ----------------------------------------------------------------------------

    def _shared_key(self) -> str | None:
        """Stores with the same key share one connection per process (see SQLite's)."""
        return None

    def _mlmd(self) -> Any:
        state = self.__dict__.get("_state")
        if state is None:
            key = self._shared_key()
            with _SHARED_LOCK:
                fresh: dict[str, Any] = {"lock": threading.RLock(), "store": None}
                state = fresh if key is None else _SHARED.setdefault(key, fresh)
            self.__dict__["_state"] = state
        with state["lock"]:
            if state["store"] is None:
                state["store"] = self._retry(self._open)
                state["types"] = self.__dict__["_mlmd_types"]
            self.__dict__["_mlmd_types"] = state["types"]
            return state["store"]

    def _open(self) -> Any:
        from ml_metadata import metadata_store
        from ml_metadata.proto import metadata_store_pb2 as pb

        config = self._connection_config()
        with self._schema_lock():
            try:
                store = metadata_store.MetadataStore(config)
            except Exception as error:
                if PARTIAL_SCHEMA not in str(error):
                    if _transient(error):
                        raise
                    detail = str(error).strip() or "ml-metadata gave no detail"
                    raise MetadataStoreError(
                        f"Cannot open the metadata store at {self._where()}: "
                        f"{type(error).__name__}: {detail}. {self._connect_hint()}".strip()
                    ) from error
                self._repair_partial_schema()
                store = metadata_store.MetadataStore(config)
        types: dict[str, Any] = {}
        run_type = pb.ContextType(name=RUN_TYPE)
        for key in ("pipeline", "status", "orchestrator", "error", "failure", "spec", "owner"):
            run_type.properties[key] = pb.STRING
        # seconds as doubles: MLMD's MySQL int column is 32-bit, too small for milliseconds
        for key in ("started_at", "ended_at", "heartbeat"):
            run_type.properties[key] = pb.DOUBLE
        step_type = pb.ExecutionType(name=STEP_TYPE)
        for key in (
            "step",
            "run_id",
            "cache_key",
            "backend",
            "source",
            "error",
            "inputs",
            "outputs",
        ):
            step_type.properties[key] = pb.STRING
        for key in ("started_at", "ended_at"):
            step_type.properties[key] = pb.DOUBLE
        step_type.properties["cached_from"] = pb.INT
        artifact_type = pb.ArtifactType(name=ARTIFACT_TYPE)
        for key in ("name", "fingerprint", "data_type"):
            artifact_type.properties[key] = pb.STRING
        types["pipeline"] = store.put_context_type(pb.ContextType(name=PIPELINE_TYPE))
        types["run"] = store.put_context_type(run_type, can_add_fields=True)
        types["step"] = store.put_execution_type(step_type, can_add_fields=True)
        types["artifact"] = store.put_artifact_type(artifact_type, can_add_fields=True)
        self.__dict__["_mlmd_types"] = types
        return store

    def _repair_partial_schema(self) -> None:
        """A schema creation that was interrupted (a process killed while ml-metadata made its
        tables on MySQL, where each CREATE commits on its own) leaves some tables and no data:
        drop them so ml-metadata makes the schema again. Tables that hold data are never
        dropped: that store gets an error saying what to do."""
        tables = self._schema_tables()
        holding = sorted(t for t, rows in tables.items() if rows and t not in SCHEMA_ONLY)
        if holding:
            missing = sorted(set(MLMD_TABLES) - set(tables))
            raise MetadataStoreError(
                f"The metadata store at {self._where()} has a damaged ml-metadata schema: "
                f"tables {missing} are missing while {holding} hold data. zenml-core drops "
                "only an empty, half-made schema; restore this database from a backup, or "
                "point the store at a new database."
            )
        _log.warning(
            "metadata store at %s: dropping the %d empty tables of an interrupted schema "
            "creation, to create it again",
            self._where(),
            len(tables),
        )
        self._drop_tables(sorted(tables))

    def _types(self) -> dict[str, int]:
        self._mlmd()
        types: dict[str, int] = self.__dict__["_mlmd_types"]
        return types

    def _run_contexts(self) -> dict[str, list[Any]]:
        """[pipeline, run] context protos of the runs this process writes, by run id."""
        contexts: dict[str, list[Any]] = self.__dict__.setdefault("_run_context_cache", {})
        return contexts

    def _call(self, operation: Callable[[Any], T]) -> T:
        """Run one store operation under the lock, retrying while other writers hold the DB."""
        store = self._mlmd()
        lock = self.__dict__["_state"]["lock"]

        def attempt() -> T:
            with lock:
                return operation(store)

        return self._retry(attempt)

    def _retry(self, attempt: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.005
        while True:
            try:
                return attempt()
            except MetadataStoreError:
                raise
            except Exception as error:
                if not _transient(error) or time.monotonic() > deadline:
                    raise MetadataStoreError(
                        f"Metadata store at {self._where()} failed: {type(error).__name__}: "
                        f"{_first_line(error)}"
                    ) from None  # ml-metadata's errors can hold whole records: never print them
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)

    def check_access(self) -> None:
        self._mlmd()

    # -- writing -------------------------------------------------------------------------------

    def _context(self, store: Any, type_name: str, name: str) -> Any:
        context = store.get_context_by_type_and_name(type_name, name)
        if context is None:
            raise MetadataStoreError(f"No {type_name} named {name!r} in {self._where()}.")
        return context

    def begin_run(
        self, pipeline: str, run_id: str, orchestrator: str, spec: dict[str, Any]
    ) -> None:
        from ml_metadata import errors
        from ml_metadata.proto import metadata_store_pb2 as pb

        types = self._types()

        def write(store: Any) -> None:
            pipeline_context = store.get_context_by_type_and_name(PIPELINE_TYPE, pipeline)
            if pipeline_context is None:
                pipeline_context = pb.Context(type_id=types["pipeline"], name=pipeline)
                pipeline_context.custom_properties[CACHE_INDEXED].int_value = 1
                try:
                    [pipeline_context.id] = store.put_contexts([pipeline_context])
                except errors.AlreadyExistsError:  # a concurrent run of it created it first
                    pipeline_context = store.get_context_by_type_and_name(PIPELINE_TYPE, pipeline)
            if CACHE_INDEXED not in pipeline_context.custom_properties:
                _index_recorded_cache(store, pipeline_context)
            pid = pipeline_context.id
            run = pb.Context(type_id=types["run"], name=run_id)
            run.properties["pipeline"].string_value = pipeline
            run.properties["status"].string_value = State.RUNNING.value
            run.properties["orchestrator"].string_value = orchestrator
            run.properties["spec"].string_value = json.dumps(spec, sort_keys=True)
            run.properties["owner"].string_value = json.dumps(current_owner())
            run.properties["started_at"].double_value = _now()
            if store.get_context_by_type_and_name(RUN_TYPE, run_id) is not None:
                raise MetadataStoreError(
                    f"A run {run_id!r} is already recorded in {self._where()}: a run id names "
                    "one run. Run the pipeline again for a new id (a finished run's steps come "
                    "from the cache)."
                )
            try:
                [run.id] = store.put_contexts([run])
            except errors.AlreadyExistsError:  # recorded by a concurrent process meanwhile
                raise MetadataStoreError(
                    f"A run {run_id!r} is already recorded in {self._where()}: a run id names "
                    "one run."
                ) from None
            # the run belongs to its pipeline: a parent link keeps `runs list PIPELINE` cheap
            store.put_parent_contexts([pb.ParentContext(child_id=run.id, parent_id=pid)])
            self._run_contexts()[run_id] = [pipeline_context, run]

        self._call(write)

    def heartbeat(self, run_id: str) -> None:
        def write(store: Any) -> None:
            # the record as stored now, not this process's copy: another process may have
            # ended the run meanwhile, and a heartbeat must not bring it back to running
            run = self._context(store, RUN_TYPE, run_id)
            if run.properties["status"].string_value != State.RUNNING.value:
                return
            run.properties["heartbeat"].double_value = _now()
            store.put_contexts([run])
            cached = self._run_contexts().get(run_id)
            if cached is not None:
                cached[1] = run

        self._call(write)

    def end_run(self, run_id: str, status: str, error: str = "", failure: str = "") -> None:
        def write(store: Any) -> None:
            run = self._contexts_of_run(store, run_id)[1]
            run.properties["status"].string_value = str(status)
            run.properties["error"].string_value = error
            run.properties["failure"].string_value = str(failure)
            run.properties["ended_at"].double_value = _now()
            store.put_contexts([run])

        self._call(write)

    def _contexts_of_run(self, store: Any, run_id: str) -> list[Any]:
        cached = self._run_contexts().get(run_id)
        if cached is None:
            run = self._context(store, RUN_TYPE, run_id)
            pipeline_name = run.properties["pipeline"].string_value
            cached = [self._context(store, PIPELINE_TYPE, pipeline_name), run]
            self._run_contexts()[run_id] = cached
        return cached

    def _inflight(self) -> dict[int, Any]:
        """Execution protos this process started and has not finished, by id."""
        inflight: dict[int, Any] = self.__dict__.setdefault("_inflight_executions", {})
        return inflight

    def start_step(
        self,
        run_id: str,
        step: str,
        *,
        cache_key: str,
        backend: str,
        source: str,
        inputs: dict[str, ArtifactRecord],
    ) -> int:
        from ml_metadata.proto import metadata_store_pb2 as pb

        execution = self._execution(step, run_id, cache_key, backend, source, "RUNNING")
        execution.properties["started_at"].double_value = _now()

        def write(store: Any) -> int:
            contexts = self._contexts_of_run(store, run_id)
            ids = _artifact_ids(store, inputs.values())
            # input events name existing artifacts by id: nothing about them is rewritten
            edges = [
                (0, None, _event(pb.Event.INPUT, name, artifact_id=ids[record.uri]))
                for name, record in inputs.items()
            ]
            [execution_id], _, _ = store.put_lineage_subgraph(
                [execution], [], contexts, edges, reuse_context_if_already_exist=True
            )
            execution.id = execution_id
            self._inflight()[int(execution_id)] = execution
            return int(execution_id)

        return self._call(write)

    def _execution(
        self, step: str, run_id: str, cache_key: str, backend: str, source: str, state: str
    ) -> Any:
        from ml_metadata.proto import metadata_store_pb2 as pb

        execution = pb.Execution(
            type_id=self._types()["step"],
            name=f"{run_id}/{step}",
            last_known_state=getattr(pb.Execution, state),
        )
        execution.properties["step"].string_value = step
        execution.properties["run_id"].string_value = run_id
        execution.properties["cache_key"].string_value = cache_key
        execution.properties["backend"].string_value = backend
        execution.properties["source"].string_value = source
        return execution

    def complete_step(
        self, run_id: str, execution_id: int, outputs: dict[str, tuple[str, str, str]]
    ) -> dict[str, ArtifactRecord]:
        return self.complete_and_start(run_id, execution_id, outputs, [])[0]

    def complete_and_start(
        self,
        run_id: str,
        execution_id: int,
        outputs: dict[str, tuple[str, str, str]],
        starts: list[StepStart],
    ) -> tuple[dict[str, ArtifactRecord], list[int]]:
        from ml_metadata.proto import metadata_store_pb2 as pb

        artifact_type = self._types()["artifact"]
        started = []
        for start in starts:
            execution = self._execution(
                start.step, run_id, start.cache_key, start.backend, start.source, "RUNNING"
            )
            execution.properties["started_at"].double_value = _now()
            started.append(execution)

        def write(store: Any, take_index: bool) -> tuple[dict[str, ArtifactRecord], list[int]]:
            execution = self._execution_proto(store, execution_id)
            contexts = self._contexts_of_run(store, run_id)
            # the newest completed execution of a key carries the pipeline's cache index. The
            # one that held it (a recomputed key: its outputs were deleted, or --no-cache) lets
            # go in a write of its own: in this one it would join this run's context. A process
            # killed between the two leaves the key unindexed: one recomputation, no wrong hit.
            index = _cache_index(contexts[0].name, execution.properties["cache_key"].string_value)
            holder = _cache_entry(store, index) if take_index else None
            if take_index:
                execution.external_id = index
            else:
                execution.ClearField("external_id")
            if holder is not None and holder.id != execution.id:
                holder.ClearField("external_id")
                store.put_executions([holder])
            artifacts = []
            for name, (uri, fingerprint, data_type) in outputs.items():
                # the URI doubles as external id: cache hits find artifacts by it, so the
                # execution's outputs property can be written in the same transaction
                artifact = pb.Artifact(
                    type_id=artifact_type, uri=uri, external_id=uri, state=pb.Artifact.LIVE
                )
                artifact.properties["name"].string_value = name
                artifact.properties["fingerprint"].string_value = fingerprint
                artifact.properties["data_type"].string_value = data_type
                artifacts.append(artifact)
            execution.last_known_state = pb.Execution.COMPLETE
            execution.properties["ended_at"].double_value = _now()
            execution.properties["outputs"].string_value = _dump_outputs(
                {name: ArtifactRecord(None, name, *value) for name, value in outputs.items()}
            )
            edges: list[tuple[int, int | None, Any]] = [
                (0, i, _event(pb.Event.OUTPUT, name)) for i, name in enumerate(outputs)
            ]
            new_artifacts = {uri: i for i, (uri, _, _) in enumerate(outputs.values())}
            earlier = [r for s in starts for r in s.inputs.values() if r.uri not in new_artifacts]
            ids = _artifact_ids(store, earlier)
            for position, start in enumerate(starts, start=1):
                for name, record in start.inputs.items():
                    if record.uri in new_artifacts:
                        edges.append(
                            (position, new_artifacts[record.uri], _event(pb.Event.INPUT, name))
                        )
                    else:
                        event = _event(pb.Event.INPUT, name, artifact_id=ids[record.uri])
                        edges.append((position, None, event))
            # one transaction: this step's end, its outputs, and the steps it unblocks
            execution_ids, artifact_ids, _ = store.put_lineage_subgraph(
                [execution, *started],
                artifacts,
                contexts,
                edges,
                reuse_context_if_already_exist=True,
            )
            self._inflight().pop(execution_id, None)
            for new, new_id in zip(started, execution_ids[1:], strict=True):
                new.id = new_id
                self._inflight()[int(new_id)] = new
            records = {
                name: ArtifactRecord(int(artifact_id), name, *outputs[name])
                for name, artifact_id in zip(outputs, artifact_ids, strict=True)
            }
            return records, [int(i) for i in execution_ids[1:]]

        def write_with_the_index(store: Any) -> tuple[dict[str, ArtifactRecord], list[int]]:
            from ml_metadata import errors

            try:
                return write(store, take_index=True)
            except (errors.AlreadyExistsError, errors.InternalError) as error:
                if not _index_taken(error):
                    raise
            # another process's step of the same key completed between our read of the index's
            # holder and this write: its execution is as good a cache hit, let it keep the index
            return write(store, take_index=False)

        return self._call(write_with_the_index)

    def fail_step(self, run_id: str, execution_id: int, error: str) -> None:
        from ml_metadata.proto import metadata_store_pb2 as pb

        def write(store: Any) -> None:
            execution = self._execution_proto(store, execution_id)
            execution.last_known_state = pb.Execution.FAILED
            execution.properties["ended_at"].double_value = _now()
            execution.properties["error"].string_value = error
            store.put_executions([execution])
            self._inflight().pop(execution_id, None)

        self._call(write)

    def _execution_proto(self, store: Any, execution_id: int) -> Any:
        """The execution as this process started it, or as another process recorded it."""
        execution = self._inflight().get(execution_id)
        if execution is None:
            [execution] = store.get_executions_by_id([execution_id])
        return execution

    def record_cached(self, run_id: str, steps: list[CachedStep]) -> None:
        if not steps:
            return
        from ml_metadata.proto import metadata_store_pb2 as pb

        def write(store: Any) -> None:
            contexts = self._contexts_of_run(store, run_id)
            executions = []
            for cached in steps:
                execution = self._execution(
                    cached.step, run_id, cached.cache_key, cached.backend, cached.source, "CACHED"
                )
                execution.properties["started_at"].double_value = _now(cached.at)
                execution.properties["ended_at"].double_value = _now(cached.at)
                execution.properties["cached_from"].int_value = cached.cached_from
                execution.properties["outputs"].string_value = _dump_outputs(cached.outputs)
                executions.append(execution)
            referenced = [a for c in steps for a in (*c.inputs.values(), *c.outputs.values())]
            artifact_ids = _artifact_ids(store, referenced)
            edges = []
            for index, cached in enumerate(steps):
                for kind, records in (
                    (pb.Event.INPUT, cached.inputs),
                    (pb.Event.OUTPUT, cached.outputs),
                ):
                    for name, artifact in records.items():
                        event = _event(kind, name, artifact_id=artifact_ids[artifact.uri])
                        edges.append((index, None, event))
            # every cache hit of the run, its events and context links: one transaction
            store.put_lineage_subgraph(
                executions, [], contexts, edges, reuse_context_if_already_exist=True
            )

        self._call(write)

    # -- reading -------------------------------------------------------------------------------

    def completed_execution(self, pipeline: str, cache_key: str) -> StepRecord | None:
        from ml_metadata.proto import metadata_store_pb2 as pb

        def read(store: Any) -> StepRecord | None:
            execution = _cache_entry(store, _cache_index(pipeline, cache_key))
            if execution is None or execution.last_known_state != pb.Execution.COMPLETE:
                return None
            return _step_record(execution)

        return self._call(read)

    def running_runs(self, pipeline: str) -> list[RunRecord]:
        from ml_metadata import metadata_store

        # the status's property index answers this; a condition on the pipeline property as
        # well would join on every run of the pipeline, so runs of others are left out here
        query = f"type = '{RUN_TYPE}' AND properties.status.string_value = '{State.RUNNING.value}'"
        options = metadata_store.ListOptions(filter_query=query)

        def read(store: Any) -> list[RunRecord]:
            runs = [_run_record(c) for c in store.get_contexts(list_options=options)]
            mine = [r for r in runs if r.pipeline == pipeline]
            return sorted(mine, key=lambda r: (r.started_at or 0, r.run_id), reverse=True)

        return self._call(read)

    def list_runs(self, pipeline: str | None = None) -> list[RunRecord]:
        def read(store: Any) -> list[RunRecord]:
            if pipeline is None:
                contexts = store.get_contexts_by_type(RUN_TYPE)
            else:
                parent = store.get_context_by_type_and_name(PIPELINE_TYPE, pipeline)
                contexts = (
                    [] if parent is None else store.get_children_contexts_by_context(parent.id)
                )
            runs = [_run_record(c) for c in contexts]
            return sorted(runs, key=lambda r: (r.started_at or 0, r.run_id), reverse=True)

        return self._call(read)

    def get_run(self, run_id: str) -> RunRecord:
        def read(store: Any) -> RunRecord:
            context = self._context(store, RUN_TYPE, run_id)
            run = _run_record(context)
            executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
            events = store.get_events_by_execution_ids([e.id for e in executions])
            artifacts = {
                a.id: a for a in store.get_artifacts_by_id({e.artifact_id for e in events})
            }
            steps = {e.id: _step_record(e) for e in executions}
            for event in events:
                artifact = artifacts[event.artifact_id]
                name = event.path.steps[0].key if event.path.steps else ""
                record = ArtifactRecord(
                    artifact.id,
                    name,
                    artifact.uri,
                    artifact.properties["fingerprint"].string_value,
                    artifact.properties["data_type"].string_value,
                )
                step = steps[event.execution_id]
                (step.inputs if event.type == event.INPUT else step.outputs)[name] = record
            run.steps = list(steps.values())
            return run

        return self._call(read)


#: connections shared by stores of one key in this process
_SHARED: dict[str, dict[str, Any]] = {}
_SHARED_LOCK = threading.Lock()


def _first_line(error: BaseException) -> str:
    """The gist of an ml-metadata error: its first line, short; the rest can be a dump of the
    records it was writing (a run's spec among them)."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else "no detail"
    return line if len(line) <= 200 else line[:200] + "..."


def _transient(error: BaseException) -> bool:
    text = str(error).lower()
    return any(marker in text for marker in _TRANSIENT)


def _cache_index(pipeline: str, cache_key: str) -> str:
    """The external id of the latest completed execution of a cache key in a pipeline:
    ml-metadata's unique index on external ids makes the cache lookup one indexed read."""
    return f"zenml.cache/{pipeline}/{cache_key}"


def _index_recorded_cache(store: Any, pipeline_context: Any) -> None:
    """Once per pipeline recorded before the cache index existed: index the latest completed
    execution of each key, so an upgrade keeps the cache."""
    from ml_metadata import errors, metadata_store

    options = metadata_store.ListOptions(filter_query="last_known_state = COMPLETE")
    latest: dict[str, Any] = {}
    for execution in sorted(
        store.get_executions_by_context(pipeline_context.id, list_options=options),
        key=lambda e: e.id,
    ):
        latest[execution.properties["cache_key"].string_value] = execution
    unindexed = []
    for key, execution in latest.items():
        index = _cache_index(pipeline_context.name, key)
        if key and not execution.external_id and _cache_entry(store, index) is None:
            execution.external_id = index
            unindexed.append(execution)
    try:
        if unindexed:
            store.put_executions(unindexed)
        pipeline_context.custom_properties[CACHE_INDEXED].int_value = 1
        store.put_contexts([pipeline_context])
    except (errors.AlreadyExistsError, errors.InternalError) as error:
        if not _index_taken(error):
            raise
        # a concurrent run of the pipeline indexed it meanwhile


def _index_taken(error: BaseException) -> bool:
    """A write refused because another execution holds the external id (SQLite and MySQL
    report it as an internal error)."""
    message = str(error)
    return "external_id" in message and ("UNIQUE" in message or "Duplicate" in message)


def _cache_entry(store: Any, index: str) -> Any:
    from ml_metadata import errors

    try:
        [execution] = store.get_executions_by_external_ids([index])
    except errors.NotFoundError:
        return None
    return execution


def _event(kind: int, name: str, execution_id: int = 0, artifact_id: int = 0) -> Any:
    from ml_metadata.proto import metadata_store_pb2 as pb

    event = pb.Event(type=kind)
    if execution_id:
        event.execution_id = execution_id
    if artifact_id:
        event.artifact_id = artifact_id
    event.path.steps.add().key = name
    return event


def _dump_outputs(records: dict[str, ArtifactRecord]) -> str:
    return json.dumps(
        {n: [r.uri, r.fingerprint, r.data_type] for n, r in records.items()}, sort_keys=True
    )


def _artifact_ids(store: Any, records: Any) -> dict[str, int]:
    """Artifact id by URI; ids not known yet (outputs reused from the cache) are looked up
    by external id, which is the URI."""
    records = list(records)
    ids = {r.uri: r.id for r in records if r.id is not None}
    unknown = sorted({r.uri for r in records if r.id is None} - set(ids))
    if unknown:
        ids.update({a.uri: a.id for a in store.get_artifacts_by_external_ids(unknown)})
    return ids


def _seconds(value: float) -> float | None:
    return value or None


def _read(properties: Any, key: str, field: str) -> Any:
    """A property's value without touching the proto: indexing a protobuf map inserts an
    empty entry, which MLMD then rejects when the proto is written back."""
    if key in properties:
        return getattr(properties[key], field)
    return {"string_value": "", "double_value": 0.0, "int_value": 0}[field]


def _step_record(execution: Any) -> StepRecord:
    p = execution.properties
    outputs = {
        name: ArtifactRecord(None, name, uri, fp, dt)
        for name, (uri, fp, dt) in json.loads(_read(p, "outputs", "string_value") or "{}").items()
    }
    state_name = type(execution).State.Name(execution.last_known_state)
    return StepRecord(
        execution_id=execution.id,
        step=_read(p, "step", "string_value"),
        state=_MLMD_TO_STATE.get(state_name, State.FAILED),
        cache_key=_read(p, "cache_key", "string_value"),
        backend=_read(p, "backend", "string_value"),
        started_at=_seconds(_read(p, "started_at", "double_value")),
        ended_at=_seconds(_read(p, "ended_at", "double_value")),
        error=_read(p, "error", "string_value"),
        cached_from=_read(p, "cached_from", "int_value") or None,
        outputs=outputs,
    )


def _state(value: str) -> State:
    try:
        return State(value)
    except ValueError:  # a state this release does not know is not shown as still running
        return State.FAILED


def _run_record(context: Any) -> RunRecord:
    p = context.properties
    return RunRecord(
        run_id=context.name,
        pipeline=_read(p, "pipeline", "string_value"),
        status=_state(_read(p, "status", "string_value")),
        started_at=_seconds(_read(p, "started_at", "double_value")),
        ended_at=_seconds(_read(p, "ended_at", "double_value")),
        orchestrator=_read(p, "orchestrator", "string_value"),
        error=_read(p, "error", "string_value"),
        failure=_read(p, "failure", "string_value"),
        owner=_owner(_read(p, "owner", "string_value")),
        heartbeat=_seconds(_read(p, "heartbeat", "double_value")),
        **_pipeline_shape(_read(p, "spec", "string_value")),
    )


def _pipeline_shape(spec_text: str) -> dict[str, Any]:
    """From a run's stored spec: step -> its parameters (in the pipeline's order), and
    step -> the steps it takes inputs from."""
    try:
        steps = json.loads(spec_text)["pipeline"]["steps"] if spec_text else []
        return {
            "parameters": {str(s["name"]): dict(s.get("params") or {}) for s in steps},
            "upstream": {
                str(s["name"]): sorted(
                    {str(i).split(".")[0] for i in (s.get("inputs") or {}).values()}
                )
                for s in steps
            },
        }
    except (ValueError, KeyError, TypeError, AttributeError):  # an older or foreign spec
        return {}


def _owner(text: str) -> dict[str, Any]:
    try:
        owner = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return owner if isinstance(owner, dict) else {}


@dataclass
class SQLiteMetadataStore(MLMDMetadataStore):
    """The embedded default: one SQLite file, no server."""

    MACHINE_LOCAL = True
    path: str

    def validate(self) -> None:
        if not self.path:
            raise ConfigError("SQLiteMetadataStore needs a file path, e.g. '.zenml/metadata.db'.")
        self.path = str(Path(self.path).expanduser().absolute())

    def _where(self) -> str:
        return f"sqlite:{self.path}"

    def _shared_key(self) -> str:
        # Two ml-metadata connections to one SQLite file in one process break each other's
        # POSIX locks: another process then reads a stale file (seen: a step process did not
        # see its own execution). One connection per file and process.
        return f"sqlite:{self.path}"

    @contextlib.contextmanager
    def _schema_lock(self) -> Iterator[None]:
        import fcntl

        lock_path = Path(f"{self.path}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released by the OS if this process dies
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _sqlite(self) -> Any:
        import sqlite3

        # closed at once after use: see _connection_config
        return contextlib.closing(sqlite3.connect(self.path, timeout=self.retry_seconds))

    def _schema_tables(self) -> dict[str, int]:
        with self._sqlite() as db:
            names = [
                row[0]
                for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if row[0] in MLMD_TABLES
            ]
            return {n: db.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}

    def _drop_tables(self, tables: list[str]) -> None:
        with self._sqlite() as db:
            for table in tables:
                db.execute(f'DROP TABLE IF EXISTS "{table}"')
            db.commit()

    def _connection_config(self) -> pb.ConnectionConfig:
        import sqlite3

        from ml_metadata.proto import metadata_store_pb2 as pb

        path = Path(self.path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not _in_wal_mode(path):
                # WAL lets readers and a writer proceed together and commits with one fsync;
                # the mode is stored in the file, so MLMD's own connection uses it too. The
                # connection must be closed at once: two SQLite libraries (Python's and MLMD's)
                # holding one file in one process release each other's locks.
                with contextlib.closing(sqlite3.connect(path, timeout=self.retry_seconds)) as db:
                    db.execute("PRAGMA journal_mode=WAL")
        except (OSError, sqlite3.Error) as error:
            raise MetadataStoreError(
                f"Cannot open the SQLite metadata store {path}: {error}. Choose a writable "
                "path, e.g. SQLiteMetadataStore('.zenml/metadata.db')."
            ) from error
        config = pb.ConnectionConfig()
        config.sqlite.filename_uri = str(path)
        config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        return config


def _in_wal_mode(path: Path) -> bool:
    """Read the SQLite header: bytes 18 and 19 are 2 in WAL mode."""
    try:
        with path.open("rb") as handle:
            header = handle.read(20)
    except FileNotFoundError:
        return False
    return len(header) == 20 and header[18] == 2 and header[19] == 2


@dataclass
class MySQLMetadataStore(MLMDMetadataStore):
    """A shared store on a MySQL-protocol server (MySQL, MariaDB, Cloud SQL).

    The password is never serialised: where it is not given (a run elsewhere, built from a run
    spec), it is read from the environment variable named by ``password_env``.
    """

    host: str
    port: int = 3306
    database: str = "zenml"
    username: str = "root"
    password: str | None = secret_field()
    password_env: str = "ZENML_MYSQL_PASSWORD"

    def validate(self) -> None:
        if not self.host:
            raise ConfigError("MySQLMetadataStore needs a host, e.g. host='127.0.0.1'.")
        if not 0 < self.port < 65536:
            raise ConfigError(f"MySQLMetadataStore: port must be 1-65535, got {self.port}.")
        if not self.database:
            raise ConfigError("MySQLMetadataStore needs a database name.")
        if not re.fullmatch(r"[A-Za-z0-9_$-]{1,64}", self.database):
            raise ConfigError(
                f"MySQLMetadataStore: database {self.database!r} is not a plain database name "
                "(letters, digits, '_', '$', '-'; at most 64)."
            )

    def _where(self) -> str:
        return f"mysql://{self.username}@{self.host}:{self.port}/{self.database}"

    def _connect_hint(self) -> str:
        return (
            "Likely causes: a wrong username or password, a user without access to that "
            "database from this host, or no server listening there."
        )

    def secret_environment(self) -> dict[str, str]:
        # given, or found in this process's environment: a run elsewhere needs it either way
        password = self._password()
        return {self.password_env: password} if password else {}

    def _password(self) -> str:
        import os

        if self.password is not None:
            return self.password
        return os.environ.get(self.password_env, "")

    def _sql(self) -> Any:
        """A connection of our own (PyMySQL) for what ml-metadata offers no call for."""
        import pymysql

        try:
            return pymysql.connect(
                host=self.host,
                port=self.port,
                user=self.username,
                password=self._password(),
                connect_timeout=30,  # no database: ml-metadata may not have created it yet
                autocommit=True,
            )
        except pymysql.MySQLError as error:
            raise MetadataStoreError(
                f"Cannot open the metadata store at {self._where()}: {error.args[-1]}. "
                f"{self._connect_hint()}"
            ) from None

    @contextlib.contextmanager
    def _schema_lock(self) -> Iterator[None]:
        # a named lock of the server: released by it when this connection ends, however
        name = f"zenml-mlmd-schema-{self.database}"[:64]
        with contextlib.closing(self._sql()) as db, db.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, %s)", (name, int(self.retry_seconds)))
            (granted,) = cursor.fetchone()
            if granted != 1:
                raise MetadataStoreError(
                    f"Timed out after {self.retry_seconds:g} s waiting for another process "
                    f"creating the metadata schema at {self._where()}."
                )
            try:
                yield
            finally:
                cursor.execute("SELECT RELEASE_LOCK(%s)", (name,))

    def _schema_tables(self) -> dict[str, int]:
        with contextlib.closing(self._sql()) as db, db.cursor() as cursor:
            cursor.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (self.database,),
            )
            names = [row[0] for row in cursor.fetchall() if row[0] in MLMD_TABLES]
            counts = {}
            for name in names:
                cursor.execute(f"SELECT COUNT(*) FROM `{self.database}`.`{name}`")
                counts[name] = int(cursor.fetchone()[0])
            return counts

    def _drop_tables(self, tables: list[str]) -> None:
        with contextlib.closing(self._sql()) as db, db.cursor() as cursor:
            for table in tables:
                cursor.execute(f"DROP TABLE IF EXISTS `{self.database}`.`{table}`")

    def _connection_config(self) -> pb.ConnectionConfig:
        from ml_metadata.proto import metadata_store_pb2 as pb

        config = pb.ConnectionConfig()
        config.mysql.host = self.host
        config.mysql.port = self.port
        config.mysql.database = self.database
        config.mysql.user = self.username
        config.mysql.password = self._password()
        return config
