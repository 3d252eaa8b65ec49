"""The remote-run layer: the lifecycle every remote backend shares, written once.

A backend that runs work elsewhere (a Kubernetes Job, a VM, a Vertex AI custom job, or a
subprocess) describes each piece of work as a ``Workload`` and supplies a ``RemotePlatform``:
how to submit one, poll it, read its logs, cancel it and clean up after it. The driver does
the rest, the same way for every backend:

1. before anything exists: the platform's own checks (reachable, credentials) and, unless the
   workload runs on this machine, that the run's stores are shared (``preflight``);
2. the run spec (and code package) published; secrets stored by the platform and referenced;
3. submit; then wait, polling with backoff, following the logs, failing a job that is stuck
   or past its deadline;
4. the ending mapped to a typed ``InfrastructureFailure`` (OOM, preempted, deadline, image
   pull, quota, stockout, permission, exit code, cancelled, vanished...) that is recorded in
   the metadata store and raised with the remote words;
5. clean-up on every path, Ctrl-C and exceptions included.

Write a backend by subclassing ``RemoteOrchestrator`` (a whole run, or each step with
``per_step``) or ``RemoteTrainingBackend`` (one trainer step), implementing ``platform()`` and
``workload()``. Retries of throttled and failed calls use tenacity: a platform raises
``TransientError`` for those (Google clients may instead use ``google.api_core.retry``).
"""

from __future__ import annotations

import abc
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from zenml_core.backends.base import BaseOrchestrator, BaseTrainingBackend
from zenml_core.backends.states import State
from zenml_core.exceptions import ConfigError, StepFailedError, ZenMLError

if TYPE_CHECKING:
    from zenml_core.backends.request import RunRequest, RunResult, StepRequest
    from zenml_core.pipeline.engine import StepScheduler

T = TypeVar("T")

# -- how work ends -------------------------------------------------------------------------


class FailureKind(StrEnum):
    """Why remote work ended badly; recorded with the run (``RunRecord.failure``)."""

    OOM = "oom"
    PREEMPTED = "preempted"
    EVICTED = "evicted"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    IMAGE_PULL = "image_pull"
    QUOTA = "quota"
    STOCKOUT = "stockout"
    PERMISSION = "permission"
    #: the workload's configuration cannot be satisfied (a referenced secret is missing...)
    CONFIG = "config"
    EXIT_CODE = "exit_code"
    CANCELLED = "cancelled"
    #: the job disappeared before its run was recorded as finished
    VANISHED = "vanished"
    #: pending for longer than the backend allows
    STUCK = "stuck"
    INTERRUPTED = "interrupted"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    #: the remote service's own words, with what the user can do about it
    message: str


class InfrastructureFailure(StepFailedError):
    """Remote work ended badly for a reason of the infrastructure (or of the user's code,
    ``EXIT_CODE``); ``kind`` says which, the message holds the remote words."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class TransientError(ZenMLError):
    """A platform call failed in a way worth retrying (throttled, a server hiccup); the
    driver retries it with exponential backoff (tenacity)."""


class JobNotFound(ZenMLError):
    """The job is gone (deleted by someone, or by the platform after it ended)."""


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: it will not get anywhere by itself (an image that cannot be pulled): cancel it
    STUCK = "stuck"


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    #: why, for FAILED and STUCK
    failure: Failure | None = None
    #: what the platform says of a pending job (for stuck detection messages)
    detail: str = ""

    @property
    def ended(self) -> bool:
        return self.state in (JobState.SUCCEEDED, JobState.FAILED, JobState.STUCK)


# -- what to run ----------------------------------------------------------------------------

_CPU = re.compile(r"^(\d+(\.\d+)?|\d+m)$")
_MEMORY = re.compile(r"^\d+(\.\d+)?([KMGTP]i?|[kMGTP])?$")


@dataclass(frozen=True)
class Resources:
    """What a workload needs: CPUs (``2``, ``0.5`` or ``"500m"``), memory (``"8Gi"``,
    ``"512M"``), GPUs and, optionally, their type (``"nvidia-tesla-t4"``)."""

    cpu: str | float | None = None
    memory: str | None = None
    gpus: int = 0
    gpu_type: str | None = None

    def __post_init__(self) -> None:
        if self.cpu is not None and (
            isinstance(self.cpu, bool)
            or not _CPU.match(str(self.cpu))
            or float(str(self.cpu).removesuffix("m")) <= 0
        ):
            raise ConfigError(
                f"Resources: cpu={self.cpu!r} is not a CPU amount; write e.g. 2, 0.5 or '500m'."
            )
        if self.memory is not None and (
            not isinstance(self.memory, str) or not _MEMORY.match(self.memory)
        ):
            raise ConfigError(
                f"Resources: memory={self.memory!r} is not an amount of memory; write e.g. "
                "'512Mi', '8Gi' or '4G'."
            )
        if not isinstance(self.gpus, int) or isinstance(self.gpus, bool) or self.gpus < 0:
            raise ConfigError(f"Resources: gpus must be a whole number >= 0, got {self.gpus!r}.")
        if self.gpu_type is not None and not self.gpus:
            raise ConfigError(
                f"Resources: gpu_type={self.gpu_type!r} without gpus; set gpus=1 (or more)."
            )

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in (None, 0)}

    @classmethod
    def from_dict(cls, data: Any) -> Resources:
        if not isinstance(data, dict):
            raise ConfigError(f"'resources' must be a mapping, got {data!r}.")
        unknown = set(data) - {"cpu", "memory", "gpus", "gpu_type"}
        if unknown:
            raise ConfigError(
                f"Unknown resource(s) {sorted(unknown)}; the resources are cpu, memory, gpus "
                "and gpu_type."
            )
        return cls(**data)


@dataclass(frozen=True)
class SecretRef:
    """Where a secret value lives in the platform's own secret store (a Kubernetes Secret
    and key, a Secret Manager version...): workloads carry these, never the values."""

    name: str
    key: str = ""


@dataclass
class Workload:
    """One piece of remote work: a container image and the command to run in it."""

    #: unique per run (and per step), valid as the platform's resource name
    name: str
    image: str
    command: list[str]
    #: plain environment: visible to whoever can read the job
    env: dict[str, str] = field(default_factory=dict)
    #: environment variable -> where its value is kept (see ``SecretRef``)
    secret_env: dict[str, SecretRef] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    labels: dict[str, str] = field(default_factory=dict)
    #: seconds the work may run before the platform (or else the driver) stops it
    deadline_seconds: int | None = None
    #: what the workload is for: the run, or one step of it
    run_id: str = ""
    step: str | None = None


@runtime_checkable
class RemotePlatform(Protocol):
    """What a remote backend implements: its cloud's verbs, nothing of the lifecycle.

    Raise ``TransientError`` for calls worth retrying, ``JobNotFound`` from ``poll`` when the
    job is gone, and ``InfrastructureFailure`` (e.g. ``PERMISSION``, ``QUOTA``) from
    ``submit`` when the platform refuses the work.
    """

    #: where work runs, for messages ("Kubernetes namespace ml")
    where: str
    #: True when workloads are processes of this machine: they run this interpreter
    #: (``command(..., local=True)``) and reach stores on this machine's disk
    local_processes: bool
    #: optional, default False: the platform's state does not show when the work ended (a VM
    #: stays RUNNING after its container exits), so the driver reads the run's own record
    #: (``ends_by_record = True``); its optional ``logs_complete(job) -> bool`` says when the
    #: logs have caught up with the record (read until then, up to 30 s)

    def check(self) -> None:
        """Reachable, credentials present... before anything is created (``ConfigError``)."""

    def store_secrets(self, name: str, values: dict[str, str]) -> dict[str, SecretRef]:
        """Keep ``values`` in the platform's secret store for the run ``name``."""

    def delete_secrets(self, refs: dict[str, SecretRef]) -> None: ...

    def submit(self, workload: Workload) -> str:
        """Start the work; returns its job id."""

    def poll(self, job: str) -> JobStatus: ...

    def logs(self, job: str, offset: int) -> tuple[str, int]:
        """What the work printed since ``offset``, and the offset to ask from next."""

    def cancel(self, job: str) -> None:
        """Stop work that has not ended (it must not go on running, or billing), and return
        once it has stopped: the driver records the interruption next, and work still
        running could write the run's record after that."""

    def cleanup(self, job: str) -> None:
        """Remove what is left of ended work that would otherwise stay (a VM, say)."""


# -- the driver -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitPolicy:
    """How the driver waits for remote work."""

    wait: bool = True
    stream_logs: bool = True
    #: first interval between polls; it grows while nothing changes, up to ``max_poll_seconds``
    poll_seconds: float = 2.0
    max_poll_seconds: float = 30.0
    #: a job pending longer than this is stuck (None: wait as long as it takes)
    pending_timeout: float | None = None
    #: how long after its own deadline the driver stops a job the platform did not stop
    deadline_grace: float = 60.0
    #: tries of each platform call that raises ``TransientError``
    attempts: int = 6


#: lines of a job's output kept for its failure message
TAIL_LINES = 50


@dataclass
class _Job:
    workload: Workload
    id: str
    submitted: float = field(default_factory=time.monotonic)
    offset: int = 0
    tail: list[str] = field(default_factory=list)
    pending_since: float | None = None
    status: JobStatus | None = None
    #: a step handed to its own training backend (``run_step``) instead of a platform job
    thread: threading.Thread | None = None
    error: BaseException | None = None

    def label(self) -> str:
        return f"{self.workload.step} ({self.id})" if self.workload.step else self.id


class RemoteDriver:
    """Runs remote work through a platform, start to end (see the module docstring)."""

    def __init__(self, platform: RemotePlatform, policy: WaitPolicy | None = None) -> None:
        self.platform = platform
        self.policy = policy or WaitPolicy()
        self._local = bool(getattr(platform, "local_processes", False))

    # -- a whole run ---------------------------------------------------------------------------

    def run(
        self,
        request: RunRequest,
        workload: Callable[[list[str]], Workload],
        preemption_retries: int = 0,
    ) -> RunResult:
        """The whole run as one workload running ``request.command(...)``. Work preempted
        (a Spot VM taken back) is run again up to ``preemption_retries`` times, each attempt a
        run of its own (``RUN-attempt2``...) whose finished steps come from the cache; every
        attempt stays recorded, the preempted ones saying which run took over."""
        attempt = 1
        while True:
            try:
                return self._run_once(request, workload)
            except InfrastructureFailure as error:
                if error.kind != FailureKind.PREEMPTED or attempt > preemption_retries:
                    raise
                attempt += 1
                retried = request.retried(f"{_base_run_id(request.spec.run_id)}-attempt{attempt}")
                store = request.components.metadata_store
                failed = store.get_run(request.spec.run_id)
                store.end_run(
                    request.spec.run_id,
                    State.FAILED,
                    f"{failed.error}; retried as run {retried.spec.run_id}",
                    FailureKind.PREEMPTED,
                )
                print(
                    f"zenml: run {request.spec.run_id} was preempted on {self.platform.where}; "
                    f"attempt {attempt} of {preemption_retries + 1} as run "
                    f"{retried.spec.run_id} (steps that finished come from the cache)"
                )
                request = retried

    def _run_once(
        self, request: RunRequest, workload: Callable[[list[str]], Workload]
    ) -> RunResult:
        try:
            job, secrets = self._launch(request, _owner(request.spec.run_id), workload)
        except InfrastructureFailure as error:  # refused (permission, quota): say so in the run
            request.record_failure(str(error), error.kind)
            raise
        print(f"zenml: {job.id} created for run {request.spec.run_id} on {self.platform.where}")
        if not self.policy.wait:
            return request.submitted()
        ended = _run_ended(request) if getattr(self.platform, "ends_by_record", False) else None
        try:
            failure = self._wait_for(job, ended)
        except KeyboardInterrupt:
            self._stop(job)
            request.record_failure(
                f"interrupted (Ctrl-C): {job.id} on {self.platform.where} was stopped",
                FailureKind.INTERRUPTED,
            )
            raise
        except JobNotFound:  # gone (a VM deletes itself at the end): the record tells
            status = ended() if ended is not None else None
            if status is not None:
                failure = status.failure
            else:
                failure = self._judge_vanished(job, _run_completed(request))
        finally:
            self._cleanup(job)
            self._forget_secrets(secrets)
        if failure is not None:
            request.record_failure(failure.message, failure.kind)
            return _raise_failure(request, failure)
        return request.result()

    # -- one step (a training backend) ---------------------------------------------------------

    def run_step(self, step: StepRequest, workload: Callable[[list[str]], Workload]) -> None:
        """One step as one workload running ``step.command(...)``; returns when it ended well,
        raises ``InfrastructureFailure`` (recorded with the step) when it did not."""
        job, secrets = self._launch(step, _owner(step.spec.run_id, step.step), workload)
        try:
            failure = self._wait_for(job)
        except KeyboardInterrupt:
            self._stop(job)
            step.record_failure("interrupted (Ctrl-C)")
            raise
        except JobNotFound:
            failure = self._judge_vanished(job, _step_completed(step))
        finally:
            self._cleanup(job)
            self._forget_secrets(secrets)
        if failure is not None:
            step.record_failure(failure.message)
            raise InfrastructureFailure(failure.kind, failure.message)

    # -- each step on its own -------------------------------------------------------------------

    def run_steps(
        self,
        request: RunRequest,
        workload: Callable[[StepRequest, list[str]], Workload],
        max_parallel: int = 4,
    ) -> RunResult:
        """Every step as its own workload, as soon as its inputs are there, at most
        ``max_parallel`` at once. A step whose training backend runs elsewhere is handed to
        that backend. A failing step skips only the steps that depend on it."""
        location = request.publish_spec()
        secrets = self._store_secrets(_owner(request.spec.run_id), request.secret_environment())
        jobs: dict[str, _Job] = {}
        scheduler = request.step_by_step()
        try:
            with scheduler as run:
                try:
                    self._schedule(run, location, secrets, workload, jobs, max_parallel)
                except KeyboardInterrupt:
                    for job in jobs.values():
                        self._stop(job)
                    raise
                finally:
                    for job in jobs.values():
                        self._cleanup(job)
        except KeyboardInterrupt:
            request.record_failure("interrupted (Ctrl-C)", FailureKind.INTERRUPTED)
            raise
        finally:
            self._forget_secrets(secrets)
        return scheduler.result()

    def _schedule(
        self,
        run: StepScheduler,
        location: str,
        secrets: dict[str, SecretRef],
        workload: Callable[[StepRequest, list[str]], Workload],
        jobs: dict[str, _Job],
        max_parallel: int,
    ) -> None:
        steps: dict[str, StepRequest] = {}
        interval = self.policy.poll_seconds
        while not run.done:
            for name in run.ready():
                if len(jobs) >= max_parallel:
                    break
                step = steps[name] = run.start(name)
                backend = run.backend_of(step)
                if isinstance(backend, BaseTrainingBackend) and not backend.RUNS_IN_PROCESS:
                    jobs[name] = _delegate(step, backend)
                    continue
                try:
                    command = step.command(location, local=self._local)
                    jobs[name] = self._submit(
                        workload(step, command), secrets, step.plain_environment()
                    )
                except InfrastructureFailure as error:  # refused: this step fails, not the run
                    run.finish(step, failure=str(error))
            changed = False
            for name, job in list(jobs.items()):
                ended, failure = self._check(job, steps[name])
                if not ended:
                    continue
                changed = True
                del jobs[name]
                self._cleanup(job)
                run.finish(steps[name], failure=failure.message if failure else None)
            if jobs and not changed:
                time.sleep(interval)
                interval = min(interval * 1.5, self._max_interval())
            else:
                interval = self.policy.poll_seconds

    def _check(self, job: _Job, step: StepRequest) -> tuple[bool, Failure | None]:
        """One look at a step's job: (ended, why it failed)."""
        if job.thread is not None:
            if job.thread.is_alive():
                return False, None
            if job.error is None:
                return True, None
            kind = getattr(job.error, "kind", FailureKind.UNKNOWN)
            return True, Failure(kind, f"{type(job.error).__name__}: {job.error}")
        try:
            status = self._look(job)
        except JobNotFound:
            return True, self._judge_vanished(job, _step_completed(step))
        if status is None:
            return False, None
        if status.state == JobState.SUCCEEDED:
            return True, None
        return True, self._explain(job, status)

    # -- the lifecycle of one job -------------------------------------------------------------

    def _call(self, function: Callable[..., T], *args: Any) -> T:
        import tenacity

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientError),
            wait=tenacity.wait_exponential(multiplier=0.5, max=8),
            stop=tenacity.stop_after_attempt(self.policy.attempts),
            reraise=True,
        )
        return retrying(function, *args)

    def _launch(
        self, work: RunRequest | StepRequest, owner: str, workload: Callable[[list[str]], Workload]
    ) -> tuple[_Job, dict[str, SecretRef]]:
        """Publish the spec, store the secrets, submit ``work.command``; nothing is left
        behind if the submission fails."""
        location = work.publish_spec()
        secrets = self._store_secrets(owner, work.secret_environment())
        try:
            return self._submit(
                workload(work.command(location, local=self._local)),
                secrets,
                work.plain_environment(),
            ), secrets
        except BaseException:
            if secrets:  # whether or not the run would have been waited for
                self._quietly(self.platform.delete_secrets, secrets)
            raise

    def _store_secrets(self, owner: str, values: dict[str, str]) -> dict[str, SecretRef]:
        if not values:
            return {}
        return self._call(self.platform.store_secrets, owner, values)

    def _forget_secrets(self, secrets: dict[str, SecretRef]) -> None:
        if secrets and self.policy.wait:  # not waiting: the work still needs them
            self._quietly(self.platform.delete_secrets, secrets)

    def _submit(
        self,
        workload: Workload,
        secrets: dict[str, SecretRef],
        plain: dict[str, str] | None = None,
    ) -> _Job:
        workload.env = {**(plain or {}), **workload.env}
        workload.secret_env = {**workload.secret_env, **secrets}
        return _Job(workload, self._call(self.platform.submit, workload))

    def _wait_for(
        self, job: _Job, ended: Callable[[], JobStatus | None] | None = None
    ) -> Failure | None:
        """Poll until the job ends (or, with ``ended``, until its work's record says it
        ended); None if it succeeded, else why not."""
        interval = self.policy.poll_seconds
        while True:
            before = (job.status, job.offset)
            status = self._look(job)
            if ended is not None and (status is None or status.state != JobState.SUCCEEDED):
                # the record wins: a VM going away after its run ended is no failure
                recorded = ended()
                if recorded is not None:
                    status = recorded
                    self._follow_to_the_end(job)
            if status is not None:
                return None if status.state == JobState.SUCCEEDED else self._explain(job, status)
            changed = (job.status, job.offset) != before
            interval = self.policy.poll_seconds if changed else interval * 1.5
            time.sleep(min(interval, self._max_interval()))

    def _max_interval(self) -> float:
        policy = self.policy
        return max(policy.poll_seconds, min(policy.max_poll_seconds, policy.poll_seconds * 10))

    def _look(self, job: _Job) -> JobStatus | None:
        """Poll once, follow the logs, apply the deadlines: the ending status, or None."""
        status = self._call(self.platform.poll, job.id)
        self._follow(job)
        job.status = status
        if status.ended:
            if status.state == JobState.STUCK:
                self._stop(job)
            self._follow(job)  # what it printed last
            return status
        now = time.monotonic()
        if status.state == JobState.PENDING:
            job.pending_since = job.pending_since or now
            timeout = self.policy.pending_timeout
            if timeout is not None and now - job.pending_since > timeout:
                self._stop(job)
                detail = f": {status.detail}" if status.detail else ""
                return JobStatus(
                    JobState.STUCK,
                    Failure(
                        FailureKind.STUCK, f"{job.id} still pending after {timeout:g} s{detail}"
                    ),
                )
        else:
            job.pending_since = None
        deadline = job.workload.deadline_seconds
        if deadline is not None and now - job.submitted > deadline + self.policy.deadline_grace:
            self._stop(job)
            return JobStatus(
                JobState.FAILED,
                Failure(
                    FailureKind.DEADLINE_EXCEEDED,
                    f"{job.id} ran past its deadline of {deadline} s and was stopped",
                ),
            )
        return None

    def _follow_to_the_end(self, job: _Job, limit: float = 30.0) -> None:
        """What the work printed last. A platform whose logs lag its work's record (a VM's
        serial port) says with ``logs_complete(job)`` when it has given everything."""
        complete = getattr(self.platform, "logs_complete", None)
        deadline = time.monotonic() + limit
        self._follow(job)
        while complete is not None and not complete(job.id) and time.monotonic() < deadline:
            time.sleep(min(0.5, self.policy.poll_seconds))
            self._follow(job)

    def _follow(self, job: _Job) -> None:
        try:
            text, job.offset = self._call(self.platform.logs, job.id, job.offset)
        except Exception as error:  # logs are a convenience: never fail the work for them
            text = ""
            job.tail.append(f"(logs unavailable: {error})")
        if not text:
            return
        if self.policy.stream_logs:
            prefix = f"[{job.workload.step}] " if job.workload.step else ""
            lines = text.splitlines(keepends=True)
            sys.stdout.write("".join(prefix + line for line in lines) if prefix else text)
            sys.stdout.flush()
        job.tail = (job.tail + text.splitlines())[-TAIL_LINES:]

    def _explain(self, job: _Job, status: JobStatus) -> Failure:
        failure = status.failure or Failure(
            FailureKind.UNKNOWN, f"{job.id} on {self.platform.where} failed without a reason"
        )
        if failure.kind == FailureKind.EXIT_CODE and "last output" not in failure.message:
            last = _last_lines(job.tail)
            if last:
                return Failure(failure.kind, f"{failure.message}; its last output: {last}")
        return failure

    def _judge_vanished(self, job: _Job, completed: Callable[[], bool]) -> Failure | None:
        """The job is gone between two looks (removed after it ended, or deleted): its
        work's own record says whether it finished."""
        if completed():
            return None
        return Failure(
            FailureKind.VANISHED,
            f"{job.id} on {self.platform.where} was deleted before its work finished",
        )

    def _stop(self, job: _Job) -> None:
        if job.thread is None:
            self._quietly(self.platform.cancel, job.id)

    def _cleanup(self, job: _Job) -> None:
        if job.thread is None and self.policy.wait:
            self._quietly(self.platform.cleanup, job.id)

    def _quietly(self, function: Callable[..., Any], *args: Any) -> None:
        """Clean-up never hides the error that led to it; it says what it could not do."""
        try:
            self._call(function, *args)
        except JobNotFound:
            pass
        except Exception as error:
            print(
                f"zenml: could not {function.__name__} on {self.platform.where}: {error}",
                file=sys.stderr,
            )


def _owner(run_id: str, step: str | None = None) -> str:
    return f"{run_id}/{step}" if step else run_id


def _last_lines(lines: list[str], count: int = 3) -> str:
    """The end of a job's output, for errors the work itself could not record."""
    kept = [ln.strip() for ln in lines if ln.strip() and "Warning" not in ln and "warn(" not in ln]
    return " | ".join(kept[-count:])[-600:]


def _run_completed(request: RunRequest) -> Callable[[], bool]:
    from zenml_core.exceptions import MetadataStoreError

    def completed() -> bool:
        try:
            run = request.components.metadata_store.get_run(request.spec.run_id)
        except MetadataStoreError:  # it never began
            return False
        return run.status == State.COMPLETED

    return completed


def _run_ended(request: RunRequest) -> Callable[[], JobStatus | None]:
    """How the run's own record says it ended (None: not yet, or not begun)."""
    from zenml_core.exceptions import MetadataStoreError

    def ended() -> JobStatus | None:
        try:
            run = request.components.metadata_store.get_run(request.spec.run_id)
        except MetadataStoreError:
            return None
        if run.status == State.COMPLETED:
            return JobStatus(JobState.SUCCEEDED)
        if run.status == State.FAILED:
            return JobStatus(
                JobState.FAILED, Failure(FailureKind.EXIT_CODE, run.error or "the run failed")
            )
        return None

    return ended


def _base_run_id(run_id: str) -> str:
    return re.sub(r"-attempt\d+$", "", run_id)


def _step_completed(step: StepRequest) -> Callable[[], bool]:
    def completed() -> bool:
        run = step.run.components.metadata_store.get_run(step.spec.run_id)
        return any(
            s.execution_id == step.execution_id and s.state == State.COMPLETED for s in run.steps
        )

    return completed


def _raise_failure(request: RunRequest, failure: Failure) -> RunResult:
    from zenml_core.backends.request import RunResult

    store = request.components.metadata_store
    result = RunResult.from_metadata(request.spec.run_id, store, request.components.artifact_store)
    recorded = store.get_run(request.spec.run_id).error or failure.message
    raise InfrastructureFailure(
        failure.kind, f"Run {request.spec.run_id} failed: {recorded}"
    ).with_result(result)


def _delegate(step: StepRequest, backend: BaseTrainingBackend) -> _Job:
    """A step whose own training backend runs it elsewhere: that backend waits for it, in a
    thread, while the driver looks after the other steps."""
    job = _Job(Workload(step.step, "", [], step=step.step), f"{backend.KIND}:{step.step}")

    def run() -> None:
        try:
            backend.run_step(step)
        except BaseException as error:
            job.error = error

    job.thread = threading.Thread(target=run, name=f"step-{step.step}", daemon=True)
    job.thread.start()
    return job


# -- the bases a remote backend subclasses ----------------------------------------------------


class _RemoteBackend(abc.ABC):
    """What remote orchestrators and training backends share: a platform, a wait policy."""

    #: subclasses declare these as dataclass fields where users may set them
    wait: bool = True
    stream_logs: bool = True
    poll_seconds: float = 2.0

    @abc.abstractmethod
    def platform(self) -> RemotePlatform:
        """This backend's platform (made once per run; import the cloud SDK here)."""

    def wait_policy(self) -> WaitPolicy:
        return WaitPolicy(
            wait=self.wait, stream_logs=self.stream_logs, poll_seconds=self.poll_seconds
        )

    def _platform(self) -> RemotePlatform:
        """One platform per backend object: ``preflight`` and ``run`` share its client."""
        cached = self.__dict__.get("_remote_platform")
        if cached is None:
            cached = self.__dict__["_remote_platform"] = self.platform()
        return cached

    def _preflight(self, request: RunRequest) -> None:
        platform = self._platform()
        if not platform.local_processes:
            request.require_shared_stores(platform.where)
        platform.check()
        # connect here first: the store's schema is made by this process, never by remote
        # work that may be killed half way through making it
        request.components.metadata_store.check_access()


class RemoteOrchestrator(_RemoteBackend, BaseOrchestrator):
    """An orchestrator on the remote-run layer: the whole run as one workload, or, when
    ``per_step`` is true, each step as its own workload (steps' ``with_resources`` honoured).
    Subclasses are dataclasses implementing ``platform()`` and ``workload()``."""

    per_step: bool = False
    #: steps running at once in per-step mode
    max_parallel: int = 4
    #: whole runs preempted (Spot capacity taken back) are run again this many times
    preemption_retries: int = 0

    @abc.abstractmethod
    def workload(
        self, request: RunRequest, command: list[str], step: StepRequest | None
    ) -> Workload:
        """The workload that runs ``command``: the whole run (``step`` None) or one step."""

    def preflight(self, request: RunRequest) -> None:
        self._preflight(request)

    def run(self, request: RunRequest) -> RunResult:
        try:
            driver = RemoteDriver(self._platform(), self.wait_policy())
            if self.per_step:
                return driver.run_steps(
                    request,
                    lambda step, command: self.workload(request, command, step),
                    self.max_parallel,
                )
            return driver.run(
                request,
                lambda command: self.workload(request, command, None),
                self.preemption_retries,
            )
        finally:
            self.__dict__.pop("_remote_platform", None)


class RemoteTrainingBackend(_RemoteBackend, BaseTrainingBackend):
    """A training backend on the remote-run layer: the trainer step as one workload.
    Subclasses are dataclasses implementing ``platform()`` and ``workload()``."""

    RUNS_IN_PROCESS: ClassVar[bool] = False

    @abc.abstractmethod
    def workload(self, step: StepRequest, command: list[str]) -> Workload:
        """The workload that runs the step's ``command``."""

    def preflight(self, request: RunRequest) -> None:
        self._preflight(request)

    def run_step(self, request: StepRequest) -> None:
        try:
            driver = RemoteDriver(self._platform(), self.wait_policy())
            driver.run_step(request, lambda command: self.workload(request, command))
        finally:
            self.__dict__.pop("_remote_platform", None)
