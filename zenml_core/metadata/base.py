"""The metadata-store contract: what the engine records and what ``zenml runs`` reads."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

from zenml_core.backends.states import State
from zenml_core.component import BaseComponent


@dataclass(frozen=True)
class ArtifactRecord:
    #: None where only the URI is known (e.g. outputs reused from the cache)
    id: int | None
    name: str
    uri: str
    fingerprint: str
    data_type: str


@dataclass
class StepRecord:
    execution_id: int
    step: str
    state: State
    cache_key: str
    backend: str
    started_at: float | None = None
    ended_at: float | None = None
    error: str = ""
    #: execution whose outputs a cached step reused
    cached_from: int | None = None
    inputs: dict[str, ArtifactRecord] = field(default_factory=dict)
    outputs: dict[str, ArtifactRecord] = field(default_factory=dict)


@dataclass
class RunRecord:
    run_id: str
    pipeline: str
    status: State
    started_at: float | None
    ended_at: float | None
    orchestrator: str
    error: str = ""
    #: the kind of infrastructure failure that ended the run (OOM, preempted...), if any
    failure: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    #: the process that runs it: {"host", "pid", "since"} (see ``current_owner``)
    owner: dict[str, Any] = field(default_factory=dict)
    #: when that process last said it is alive (seconds since the epoch)
    heartbeat: float | None = None
    #: the pipeline's steps in its order, with the parameters each was given (from the spec)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: step -> the steps whose outputs it takes (from the spec: known for steps never run)
    upstream: dict[str, list[str]] = field(default_factory=dict)

    def steps_in_order(self) -> list[StepRecord]:
        """The steps in the pipeline's order (the spec's), then any the spec does not name;
        a step that never ran (its run ended first) is listed as skipped."""
        by_name: dict[str, StepRecord] = {}
        for record in self.steps:  # the last try of a step wins
            by_name[record.step] = record
        ordered = [
            by_name.pop(name) if name in by_name else StepRecord(-1, name, State.SKIPPED, "", "")
            for name in self.parameters
        ]
        return ordered + list(by_name.values())


def _process_start(pid: int) -> str:
    """When a process started, in clock ticks since boot (Linux); '' where unknown. With the
    PID it tells a process from a later one that got the same PID."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            # the command name (field 2) may hold spaces: count from its closing parenthesis
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def current_owner() -> dict[str, Any]:
    """Who runs a run recorded now: this host and process."""
    import os
    import socket

    return {"host": socket.gethostname(), "pid": os.getpid(), "since": _process_start(os.getpid())}


#: how often a running run says it is alive, and after how many missed beats it is abandoned
HEARTBEAT_ENV = "ZENML_HEARTBEAT_SECONDS"
DEFAULT_HEARTBEAT_S = 30.0
MISSED_BEATS = 10


def heartbeat_seconds() -> float:
    import os

    try:
        return max(float(os.environ.get(HEARTBEAT_ENV, DEFAULT_HEARTBEAT_S)), 0.1)
    except ValueError:
        return DEFAULT_HEARTBEAT_S


def owner_gone(run: RunRecord, now: float | None = None) -> str:
    """Why the recorded owner of a running run can no longer be running it, or '' if it may
    be. On this host its process is looked up; elsewhere (a pod, a VM) its heartbeat must be
    recent."""
    import os
    import socket
    import time

    owner = run.owner
    host, pid = owner.get("host"), owner.get("pid")
    if not host or not isinstance(pid, int):
        return ""  # recorded before runs had owners
    if host != socket.gethostname():
        last = run.heartbeat or run.started_at
        silent = (time.time() if now is None else now) - (last or 0)
        if last and silent > MISSED_BEATS * heartbeat_seconds():
            return f"abandoned: no heartbeat from process {pid} on {host} for {silent:.0f} s"
        return ""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"abandoned: process {pid} on {host} is gone"
    except PermissionError:
        pass  # alive, someone else's
    since = owner.get("since")
    if since and _process_start(pid) not in ("", since):
        return f"abandoned: process {pid} on {host} is gone (its PID now belongs to another)"
    return ""


@dataclass(frozen=True)
class CachedStep:
    """A cache hit to record: which execution's outputs a step of this run reused."""

    step: str
    cache_key: str
    backend: str
    source: str
    inputs: dict[str, ArtifactRecord]
    outputs: dict[str, ArtifactRecord]
    cached_from: int
    at: float


@dataclass(frozen=True)
class StepStart:
    """A step to record as running; inputs without an id are found by URI."""

    step: str
    cache_key: str
    backend: str
    source: str
    inputs: dict[str, ArtifactRecord]


class BaseMetadataStore(BaseComponent, abc.ABC):
    """Records pipelines, runs, step executions and artifact lineage.

    Timestamps are seconds since the epoch. Implementations must be safe to use from several
    threads of one process and from several processes at once.
    """

    KIND = "metadata_store"
    #: True for stores on this machine's disk, which a run elsewhere (a pod, a VM) cannot reach
    MACHINE_LOCAL: ClassVar[bool] = False

    @abc.abstractmethod
    def check_access(self) -> None:
        """Connect (creating the schema if needed) or raise an error naming where and why."""

    @abc.abstractmethod
    def begin_run(
        self, pipeline: str, run_id: str, orchestrator: str, spec: dict[str, Any]
    ) -> None:
        """Record a run as running, in the pipeline's context."""

    def reconcile(
        self, pipeline: str | None = None, runs: list[RunRecord] | None = None
    ) -> list[str]:
        """Mark runs whose owning process is gone as failed, with the steps they left
        running; returns their ids. Called before runs are listed or a run begins (``runs``:
        runs of the pipeline that the caller has just listed, finished ones may be left out)."""
        abandoned = []
        for run in self.list_runs(pipeline) if runs is None else runs:
            if run.status != State.RUNNING:
                continue
            reason = owner_gone(run)
            if not reason:
                continue
            for step in self.get_run(run.run_id).steps:
                if step.state == State.RUNNING:
                    self.fail_step(run.run_id, step.execution_id, reason)
            self.end_run(run.run_id, State.FAILED, reason, "abandoned")
            abandoned.append(run.run_id)
        return abandoned

    def heartbeat(self, run_id: str) -> None:
        """Say that the run's process is alive (the engine does, every few seconds)."""

    @abc.abstractmethod
    def end_run(self, run_id: str, status: str, error: str = "", failure: str = "") -> None:
        """Record how a run ended; ``failure`` is the kind of infrastructure failure that
        ended it, when one did (``zenml_core.backends.remote.FailureKind``)."""

    @abc.abstractmethod
    def completed_execution(self, pipeline: str, cache_key: str) -> StepRecord | None:
        """The latest completed execution of one cache key in a pipeline, with its outputs,
        or None. The engine asks it for every step it may reuse, so its cost must not grow
        with the pipeline's history: an indexed lookup by key, never a scan of past runs."""

    @abc.abstractmethod
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
        """Record a step execution as running; returns its id."""

    @abc.abstractmethod
    def complete_step(
        self, run_id: str, execution_id: int, outputs: dict[str, tuple[str, str, str]]
    ) -> dict[str, ArtifactRecord]:
        """Record the outputs (name -> (uri, fingerprint, data type)) and mark it completed."""

    def complete_and_start(
        self,
        run_id: str,
        execution_id: int,
        outputs: dict[str, tuple[str, str, str]],
        starts: list[StepStart],
    ) -> tuple[dict[str, ArtifactRecord], list[int]]:
        """Complete one step and record the steps it unblocks as running.

        The engine calls this on its hot path; a store that can write both at once should
        (MLMD does, in one transaction). This default does one after the other.
        """
        records = self.complete_step(run_id, execution_id, outputs)
        by_uri = {r.uri: r for r in records.values()}
        ids = [
            self.start_step(
                run_id,
                start.step,
                cache_key=start.cache_key,
                backend=start.backend,
                source=start.source,
                inputs={n: by_uri.get(r.uri, r) for n, r in start.inputs.items()},
            )
            for start in starts
        ]
        return records, ids

    @abc.abstractmethod
    def fail_step(self, run_id: str, execution_id: int, error: str) -> None: ...

    @abc.abstractmethod
    def record_cached(self, run_id: str, steps: list[CachedStep]) -> None:
        """Record cache hits, in as few writes as the store allows."""

    @abc.abstractmethod
    def list_runs(self, pipeline: str | None = None) -> list[RunRecord]:
        """Runs, newest first, without their steps."""

    def running_runs(self, pipeline: str) -> list[RunRecord]:
        """The pipeline's runs recorded as running, without their steps; asked as every run
        begins, so a store answers it without reading finished runs where it can."""
        return [r for r in self.list_runs(pipeline) if r.status == State.RUNNING]

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunRecord:
        """One run with its steps, inputs and outputs; ``MetadataStoreError`` if unknown."""
