"""The engine: executes a run spec, step by step, recording lineage and reusing cached work.

The same code runs a pipeline in-process (local orchestrator) and inside a remote backend's
container (``python -m zenml_core run --spec ...``), so a remote run is this engine, elsewhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from zenml_core.artifacts.base import BaseArtifactStore
from zenml_core.backends.base import BaseProcessingBackend, BaseTrainingBackend
from zenml_core.backends.request import (
    COMPONENT_KINDS,
    Components,
    Progress,
    RunRequest,
    RunResult,
    StepRequest,
    StepResult,
)
from zenml_core.backends.states import State
from zenml_core.component import BaseComponent
from zenml_core.exceptions import ConfigError, PipelineError, StepFailedError
from zenml_core.metadata.base import ArtifactRecord, CachedStep, StepRecord, StepStart
from zenml_core.pipeline import materializers
from zenml_core.pipeline.context import StepContext
from zenml_core.pipeline.spec import PipelineSpec, RunSpec, StepSpec
from zenml_core.pipeline.step import Step

__all__ = [
    "COMPONENT_KINDS",
    "Components",
    "Engine",
    "Progress",
    "RunRequest",
    "RunResult",
    "StepRequest",
    "StepResult",
    "StepScheduler",
    "new_run_id",
]


#: how often a run that began alone looks for other runs of its pipeline (see _cache_hit)
OTHER_RUNS_INTERVAL_S = 2.0


def new_run_id(pipeline: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{pipeline}-{stamp}-{uuid.uuid4().hex[:6]}"


def cache_key(
    step_spec: StepSpec, step_class: type[Step], inputs: dict[str, ArtifactRecord]
) -> str:
    """Step identity + its code + parameters + input fingerprints + the content of the
    outside data it reads (``Step.READS``)."""
    material = {
        "source": step_spec.source,
        "code": step_class.code_hash(),
        "params": step_spec.params,
        "inputs": {name: record.fingerprint for name, record in sorted(inputs.items())},
        "outputs": sorted(step_class.signature().outputs),
    }
    reads = {p: step_spec.params[p] for p in step_class.READS if step_spec.params.get(p)}
    if reads:
        material["reads"] = {p: _read_identity(str(uri)) for p, uri in sorted(reads.items())}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _read_identity(uri: str) -> str:
    """The content identity of outside data; data that cannot be fingerprinted (an unknown
    scheme, no access) is never a cache hit, and the step reports the problem itself."""
    from zenml_core.artifacts import source_fingerprint
    from zenml_core.exceptions import ZenMLError

    try:
        return source_fingerprint(uri)
    except (ZenMLError, OSError) as error:
        return f"unfingerprinted:{uuid.uuid4().hex}:{type(error).__name__}"


class Engine:
    """Executes one run: the DAG's bookkeeping (what is ready, what failed, what is skipped),
    cache hits, and each step's lineage. ``run`` drives it in this process; ``StepScheduler``
    lets an orchestrator drive it step by step."""

    def __init__(self, request: RunRequest, parallelism: int = 1) -> None:
        self.request = request
        self.spec = request.spec
        self.pipeline = request.spec.pipeline
        self.components = request.components
        self.metadata = request.components.metadata_store
        self.artifacts = request.components.artifact_store
        self.parallelism = parallelism
        self.progress = request.progress or (lambda event, step, detail: None)
        self.order = self.pipeline.check_graph()
        self.pipeline_steps = {s.name: s for s in self.order}
        self.classes = request.step_classes or load_step_classes(self.pipeline)
        self.results: dict[str, StepResult] = {}
        self.cached: list[CachedStep] = []
        self.lock = threading.Lock()
        #: cache lookups of this run by key; a miss is asked again only while other runs run
        self.lookups: dict[str, StepRecord | None] = {}
        self.concurrent = False
        self._looked_at = time.monotonic()
        self._alive = threading.Event()  # set when the run ends: the heartbeat stops
        upstreams = {s.name: {a.split(".", 1)[0] for a in s.inputs.values()} for s in self.order}
        self.waiting = {name: len(names) for name, names in upstreams.items()}
        self.dependents: dict[str, list[str]] = {s.name: [] for s in self.order}
        for name, names in upstreams.items():
            for upstream in names:
                self.dependents[upstream].append(name)
        self.ready = deque(name for name, count in self.waiting.items() if count == 0)
        #: executions already recorded as running, together with their upstream's completion
        self.prestarted: dict[str, int] = {}
        self.backends: dict[str, BaseProcessingBackend | BaseTrainingBackend] = {}
        self.backend_names: dict[str, str] = {}

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> RunResult:
        from zenml_core.runlog import quiet_libraries

        with quiet_libraries(self.spec.run_id):  # libraries' notices go to the run's log
            self.begin()
            failure: BaseException | None = None
            try:
                self._schedule()
            except BaseException as error:  # KeyboardInterrupt included: record, re-raise
                failure = error
            result, raised = self.end(failure)
        if raised is not None:
            raise raised
        return result

    def begin(self) -> None:
        """Check every step and store, then record the run as running."""
        for step_spec in self.order:  # parameters and backends, before anything is written
            self.step_backend(step_spec)
        self.artifacts.check_access()
        self.metadata.check_access()
        # only runs recorded as running are read: the cost of a run never grows with history
        runs = self.metadata.running_runs(self.pipeline.name)
        abandoned = self.metadata.reconcile(self.pipeline.name, runs)  # their process was killed
        # other runs of this pipeline under way: a step one of them finishes meanwhile is a
        # cache hit here too, so a miss is looked up again when the step becomes ready
        self.concurrent = any(r.run_id not in abandoned for r in runs)
        self.metadata.begin_run(
            self.pipeline.name,
            self.spec.run_id,
            self.request.orchestrator_name(),
            self.spec.redacted(),
        )
        threading.Thread(target=self._heartbeat, name="zenml-heartbeat", daemon=True).start()

    def _heartbeat(self) -> None:
        """Say the run is alive until it ends, so a run whose process vanished on another
        machine is found out (see ``BaseMetadataStore.reconcile``)."""
        from zenml_core.metadata.base import heartbeat_seconds

        while not self._alive.wait(heartbeat_seconds()):
            try:
                self.metadata.heartbeat(self.spec.run_id)
            except Exception:  # a missed beat is no reason to fail the run
                continue

    def end(self, failure: BaseException | None) -> tuple[RunResult, BaseException | None]:
        """Record how the run ended; returns its result and the error to raise, if any."""
        self._alive.set()
        # recorded as running when unblocked, then the run stopped before they began
        why = (
            "interrupted (Ctrl-C)"
            if isinstance(failure, KeyboardInterrupt)
            else "not run: the run was stopped first"
        )
        for execution_id in self.prestarted.values():
            self.metadata.fail_step(self.spec.run_id, execution_id, why)
        self.metadata.record_cached(self.spec.run_id, self.cached)
        for name in self.pipeline_steps:
            if name not in self.results:  # never reached: the run stopped before
                self.results[name] = StepResult(name, State.SKIPPED)
        failed = [r for r in self.results.values() if r.state == State.FAILED]
        if failure is not None:
            status, message = State.FAILED, f"{type(failure).__name__}: {failure}"
        elif failed:
            status = State.FAILED
            message = f"step {failed[0].name!r} failed: {failed[0].error}"
        else:
            status, message = State.COMPLETED, ""
        self.metadata.end_run(self.spec.run_id, status, message)
        ordered = {name: self.results[name] for name in self.pipeline_steps}
        result = RunResult(
            self.spec.run_id, self.pipeline.name, status, ordered, self.artifacts, self.metadata
        )
        if failure is not None:
            return result, failure
        if failed:
            first = failed[0]
            return result, StepFailedError(
                f"Step {first.name!r} of run {self.spec.run_id} failed: {first.error}\n"
                "The run is recorded as failed; fix the step and run the pipeline again: "
                "completed steps are reused from the cache."
            ).with_result(result)
        return result, None

    def finish(self, name: str, result: StepResult) -> None:
        """Take a step's end into account: its dependents become ready, or, if it failed,
        they are skipped (steps that do not depend on it go on)."""
        self.results[name] = result
        if result.state == State.FAILED:
            self._skip_dependents(name)
            return
        for dependent in self.dependents[name]:
            self.waiting[dependent] -= 1
            if self.waiting[dependent] == 0 and dependent not in self.results:
                self.ready.append(dependent)

    def _skip_dependents(self, name: str) -> None:
        pending = list(self.dependents[name])
        while pending:
            dependent = pending.pop()
            if dependent in self.results:
                continue
            self.results[dependent] = StepResult(dependent, State.SKIPPED)
            self.progress(State.SKIPPED, dependent, f"{name!r} failed")
            pending.extend(self.dependents[dependent])

    def _schedule(self) -> None:
        """Run steps in this process as their inputs become ready."""
        by_name = self.pipeline_steps
        if self.parallelism == 1:  # in this thread: no hand-offs on the hot path
            while self.ready:
                name = self.ready.popleft()
                self.finish(name, self._run_step(by_name[name]))
            return
        running: dict[Future[StepResult], str] = {}
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            while self.ready or running:
                while self.ready and len(running) < self.parallelism:
                    name = self.ready.popleft()
                    running[pool.submit(self._run_step, by_name[name])] = name
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    self.finish(running.pop(future), future.result())

    # -- one step ------------------------------------------------------------------------------

    def step_backend(self, step_spec: StepSpec) -> BaseProcessingBackend | BaseTrainingBackend:
        if step_spec.name in self.backends:
            return self.backends[step_spec.name]
        step_class = self.classes[step_spec.name]
        given = self.request.step_backends.get(step_spec.name)
        if given is not None:  # the object itself: it still holds its secrets
            backend: BaseComponent = given
        elif step_spec.backend is not None:
            backend = BaseComponent.from_config(step_spec.backend)
        elif step_class.STEP_KIND == "training":
            backend = self.components.training
        else:
            backend = self.components.processing
        expected = (
            BaseTrainingBackend if step_class.STEP_KIND == "training" else BaseProcessingBackend
        )
        if not isinstance(backend, expected):
            raise ConfigError(
                f"Step {step_spec.name!r} is a {step_class.STEP_KIND} step; its backend must be a "
                f"{expected.__name__}, got {type(backend).__name__}."
            )
        self.backends[step_spec.name] = backend
        return backend

    def inputs_of(self, step_spec: StepSpec) -> dict[str, ArtifactRecord]:
        inputs = {}
        for argument, address in step_spec.inputs.items():
            upstream, output = address.split(".", 1)
            outputs = self.results[upstream].outputs
            if output not in outputs:
                raise PipelineError(
                    f"Step {step_spec.name!r} input {argument!r} wants {address!r}, but step "
                    f"{upstream!r} has outputs {sorted(outputs)}."
                )
            inputs[argument] = outputs[output]
        return inputs

    def _cache_hit(self, step_spec: StepSpec, key: str) -> StepRecord | None:
        if not (self.pipeline.enable_cache and step_spec.enable_cache):
            return None
        if key in self.lookups:
            hit = self.lookups[key]
            if hit is None and not self.concurrent:
                self._look_for_other_runs()
            if hit is None and self.concurrent:
                hit = self.lookups[key] = self.metadata.completed_execution(self.pipeline.name, key)
        else:  # one indexed lookup by key (see BaseMetadataStore.completed_execution)
            hit = self.lookups[key] = self.metadata.completed_execution(self.pipeline.name, key)
        if hit is not None and all(self.artifacts.exists(r.uri) for r in hit.outputs.values()):
            return hit
        return None

    def _look_for_other_runs(self) -> None:
        """A run that began alone checks now and then (at most every few seconds, so short
        runs pay nothing) whether other runs of its pipeline started since."""
        now = time.monotonic()
        if now - self._looked_at < OTHER_RUNS_INTERVAL_S:
            return
        self._looked_at = now
        self.concurrent = any(
            r.run_id != self.spec.run_id for r in self.metadata.running_runs(self.pipeline.name)
        )

    def backend_name(self, step_spec: StepSpec) -> str:
        name = self.backend_names.get(step_spec.name)
        if name is None:
            backend = self.step_backend(step_spec)
            name = self.backend_names[step_spec.name] = (
                f"{backend.KIND}:{backend.to_config()['name']}"
            )
        return name

    def reuse(
        self, step_spec: StepSpec
    ) -> tuple[dict[str, ArtifactRecord], str, StepResult | None]:
        """The step's inputs and cache key, and its result if the cache already has it (the
        hit is recorded with the run's end)."""
        started = time.perf_counter()
        inputs = self.inputs_of(step_spec)
        key = cache_key(step_spec, self.classes[step_spec.name], inputs)
        if step_spec.name in self.prestarted:  # recorded as running on a cache miss: it runs
            return inputs, key, None
        hit = self._cache_hit(step_spec, key)
        if hit is None:
            return inputs, key, None
        cached = CachedStep(
            step_spec.name,
            key,
            self.backend_name(step_spec),
            step_spec.source,
            inputs,
            hit.outputs,
            hit.execution_id,
            time.time(),
        )
        with self.lock:
            self.cached.append(cached)
        self.progress(State.CACHED, step_spec.name, "")
        return (
            inputs,
            key,
            StepResult(step_spec.name, State.CACHED, hit.outputs, time.perf_counter() - started),
        )

    def start(self, step_spec: StepSpec, inputs: dict[str, ArtifactRecord], key: str) -> int:
        """Record the step as running (unless its upstream's completion already did)."""
        self.progress("start", step_spec.name, self.backend_name(step_spec))
        execution_id = self.prestarted.pop(step_spec.name, None)
        if execution_id is None:
            execution_id = self.metadata.start_step(
                self.spec.run_id,
                step_spec.name,
                cache_key=key,
                backend=self.backend_name(step_spec),
                source=step_spec.source,
                inputs=inputs,
            )
        return execution_id

    def executor(
        self,
        step_spec: StepSpec,
        inputs: dict[str, ArtifactRecord],
        key: str,
        execution_id: int,
        outcome: dict[str, dict[str, ArtifactRecord]],
    ) -> Callable[[], None]:
        """The step's code, run in this process, recording its outputs into ``outcome``."""

        def execute() -> None:
            from zenml_core import progress

            with progress.bound(self.spec.run_id, step_spec.name, self.progress):
                published = execute_step(
                    self.spec,
                    step_spec,
                    self.classes[step_spec.name],
                    inputs,
                    execution_id,
                    self.step_backend(step_spec),
                    self.artifacts,
                )
            outcome["outputs"] = self._complete(step_spec, execution_id, published, key)

        return execute

    def _run_step(self, step_spec: StepSpec) -> StepResult:
        started = time.perf_counter()
        backend = self.step_backend(step_spec)
        inputs, key, cached = self.reuse(step_spec)
        if cached is not None:
            return cached
        execution_id = self.start(step_spec, inputs, key)
        outcome: dict[str, dict[str, ArtifactRecord]] = {}
        execute = self.executor(step_spec, inputs, key, execution_id, outcome)
        try:
            if isinstance(backend, BaseTrainingBackend):
                backend.run_step(
                    StepRequest(self.spec, step_spec.name, execution_id, execute, self.request)
                )
                if "outputs" not in outcome:  # it ran elsewhere: read what that process recorded
                    outcome["outputs"] = self.recorded_outputs(execution_id)
            else:
                execute()
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            recorded = self.recorded_error(execution_id) if "outputs" not in outcome else ""
            if recorded:  # the process that ran the step elsewhere said why: keep its words
                message = recorded.splitlines()[0]
            else:
                self.metadata.fail_step(
                    self.spec.run_id, execution_id, message + "\n" + traceback.format_exc(limit=-8)
                )
            self.progress(State.FAILED, step_spec.name, message)
            return StepResult(
                step_spec.name, State.FAILED, {}, time.perf_counter() - started, message
            )
        except KeyboardInterrupt:  # Ctrl-C: the step did not finish; say so, then stop the run
            if "outputs" not in outcome:
                self.metadata.fail_step(self.spec.run_id, execution_id, "interrupted (Ctrl-C)")
            raise
        seconds = time.perf_counter() - started
        self.progress(State.COMPLETED, step_spec.name, f"{seconds:.2f}s")
        return StepResult(step_spec.name, State.COMPLETED, outcome["outputs"], seconds)

    def _complete(
        self,
        step_spec: StepSpec,
        execution_id: int,
        published: dict[str, tuple[str, str, str]],
        key: str,
    ) -> dict[str, ArtifactRecord]:
        """Record a step's outputs; when steps run one at a time, record the steps this one
        unblocks, and the ready step that runs next, as running in the same write (one
        metadata transaction per step, in a chain and in a wide DAG alike). The step becomes
        the cache's entry for its key: a later step of this run with the same key (the same
        code, parameters and input content) reuses its outputs, as a later run would."""
        starts: list[StepStart] = []
        if self.parallelism == 1:
            unblocked = [n for n in self.dependents.get(step_spec.name, []) if self.waiting[n] == 1]
            if self.ready and self.ready[0] not in self.prestarted:
                unblocked.append(self.ready[0])  # runs next: its inputs are all recorded
            for name in unblocked:
                dependent = self.pipeline_steps[name]
                inputs = {}
                for argument, address in dependent.inputs.items():
                    upstream, output = address.split(".", 1)
                    inputs[argument] = (
                        ArtifactRecord(None, output, *published[output])
                        if upstream == step_spec.name
                        else self.results[upstream].outputs[output]
                    )
                dependent_key = cache_key(dependent, self.classes[name], inputs)
                if dependent_key != key and self._cache_hit(dependent, dependent_key) is None:
                    backend = self.backend_name(dependent)
                    starts.append(StepStart(name, dependent_key, backend, dependent.source, inputs))
        records, ids = self.metadata.complete_and_start(
            self.spec.run_id, execution_id, published, starts
        )
        self.prestarted.update({start.step: i for start, i in zip(starts, ids, strict=True)})
        self.lookups[key] = StepRecord(
            execution_id,
            step_spec.name,
            State.COMPLETED,
            key,
            self.backend_name(step_spec),
            outputs=records,
        )
        return records

    def recorded_step(self, execution_id: int) -> StepRecord | None:
        for step in self.metadata.get_run(self.spec.run_id).steps:
            if step.execution_id == execution_id:
                return step
        return None

    def recorded_error(self, execution_id: int) -> str:
        step = self.recorded_step(execution_id)
        return step.error if step is not None and step.state == State.FAILED else ""

    def recorded_outputs(self, execution_id: int) -> dict[str, ArtifactRecord]:
        step = self.recorded_step(execution_id)
        if step is None:
            raise StepFailedError(f"execution {execution_id} recorded nothing")
        if step.state != State.COMPLETED:
            raise StepFailedError(step.error or f"the step ended in state {step.state}")
        return step.outputs


class StepScheduler:
    """A run driven step by step by an orchestrator that runs each step somewhere of its own
    (a Kubernetes Job, an Airflow task...). The core decides cache hits and records every
    execution; the orchestrator launches ``python -m zenml_core step ...`` (``start(name)``
    gives its ``StepRequest``) wherever it likes and reports back with ``finish``.

    A step that fails skips the steps that depend on it; the others go on. Use it as a context
    manager: entering records the run as running, leaving records how it ended (a step handed
    out and never finished is failed with the reason the block ended).
    """

    def __init__(self, request: RunRequest) -> None:
        self.request = request
        self._engine = Engine(request)
        self._ready: dict[str, tuple[dict[str, ArtifactRecord], str]] = {}  # inputs, cache key
        self._running: dict[str, StepRequest] = {}
        self._ended: tuple[RunResult, BaseException | None] | None = None

    def __enter__(self) -> StepScheduler:
        self._engine.begin()
        return self

    def __exit__(self, kind: Any, error: BaseException | None, trace: Any) -> None:
        reason = (
            "interrupted (Ctrl-C)"
            if isinstance(error, KeyboardInterrupt)
            else (
                f"not finished: the orchestrator stopped ({type(error).__name__}: {error})"
                if error is not None
                else "not finished: the orchestrator stopped"
            )
        )
        for step in list(self._running.values()):
            self.finish(step, failure=reason)
        self._ended = self._engine.end(error)

    @property
    def done(self) -> bool:
        """Nothing is ready, nothing is running: the run has reached its end."""
        return not self.ready() and not self._running

    @property
    def running(self) -> list[StepRequest]:
        return list(self._running.values())

    def ready(self) -> list[str]:
        """Steps whose inputs are all there and that are not started yet, in pipeline order.
        Steps the cache answers are recorded as cached and never appear here."""
        engine = self._engine
        while engine.ready:
            name = engine.ready.popleft()
            inputs, key, cached = engine.reuse(engine.pipeline_steps[name])
            if cached is not None:
                engine.finish(name, cached)
            else:
                self._ready[name] = (inputs, key)
        return list(self._ready)

    def start(self, name: str) -> StepRequest:
        """Record a ready step as running; the request names its execution and its command."""
        if name not in self.ready():
            raise PipelineError(f"Step {name!r} is not ready to start; ready: {list(self._ready)}.")
        engine = self._engine
        step_spec = engine.pipeline_steps[name]
        inputs, key = self._ready.pop(name)
        execution_id = engine.start(step_spec, inputs, key)
        outcome: dict[str, dict[str, ArtifactRecord]] = {}
        request = StepRequest(
            self.request.spec,
            name,
            execution_id,
            engine.executor(step_spec, inputs, key, execution_id, outcome),
            self.request,
        )
        self._running[name] = request
        return request

    def backend_of(self, step: StepRequest) -> BaseProcessingBackend | BaseTrainingBackend:
        """The step's own processing or training backend (a training backend that runs
        elsewhere, e.g. Vertex AI, must be handed the step: ``backend.run_step(step)``)."""
        return self._engine.step_backend(self._engine.pipeline_steps[step.step])

    def finish(self, step: StepRequest, failure: str | None = None) -> StepResult:
        """The step's process has ended: take what it recorded. ``failure`` says why it ended
        where the process could not say so itself (killed, out of memory...)."""
        engine = self._engine
        if step.step not in self._running:
            raise PipelineError(f"Step {step.step!r} is not running.")
        if failure is not None:
            step.record_failure(failure)
        record = engine.recorded_step(step.execution_id)
        if record is not None and record.state == State.COMPLETED:
            seconds = (record.ended_at or 0) - (record.started_at or 0)
            result = StepResult(step.step, State.COMPLETED, record.outputs, max(seconds, 0.0))
            engine.progress(State.COMPLETED, step.step, f"{result.seconds:.2f}s")
        else:
            if record is None or record.state == State.RUNNING:  # ended without a word
                step.record_failure(failure or "the step's process ended without recording")
                record = engine.recorded_step(step.execution_id)
            error = (record.error if record else "") or failure or "no error recorded"
            result = StepResult(step.step, State.FAILED, {}, 0.0, error.splitlines()[0])
            engine.progress(State.FAILED, step.step, result.error)
        del self._running[step.step]
        engine.finish(step.step, result)
        return result

    def result(self) -> RunResult:
        """The run's result once the block has ended; ``StepFailedError`` if a step failed."""
        if self._ended is None:
            raise PipelineError("The run has not ended: call result() after the with block.")
        result, error = self._ended
        if error is not None:
            raise error
        return result


def execute_step(
    spec: RunSpec,
    step_spec: StepSpec,
    step_class: type[Step],
    inputs: dict[str, ArtifactRecord],
    execution_id: int,
    backend: Any,
    artifacts: BaseArtifactStore,
    publish: bool = True,
) -> dict[str, tuple[str, str, str]]:
    """Run one step's code: load inputs, call it, publish its outputs.

    Returns output name -> (uri, fingerprint, data type), for the caller to record. With
    ``publish=False`` (a worker replica of a multi-machine step) nothing is published.
    """
    signature = step_class.signature()
    with contextlib.ExitStack() as stack:
        arguments: dict[str, Any] = {}
        for name, record in inputs.items():
            folder = stack.enter_context(artifacts.reader(record.uri))
            arguments[name] = materializers.by_name(record.data_type).load(folder)
        arguments.update(step_spec.params)
        missing = [
            a for a in signature.arguments if a not in arguments and a not in signature.defaults
        ]
        if missing:
            raise PipelineError(f"Step {step_spec.name!r} has no value for {missing}.")
        if signature.context_argument:
            temp_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zenml-step-")))
            context = StepContext(
                spec.pipeline.name,
                spec.run_id,
                step_spec.name,
                backend,
                temp_dir,
                artifacts.staging_parent(),
            )
            stack.callback(context.cleanup)
            arguments[signature.context_argument] = context
        instance = step_class(**step_spec.params)
        instance.name = step_spec.name
        returned = instance.entrypoint(**arguments)
        values = _outputs_of(step_spec.name, signature.outputs, signature.single, returned)
        published: dict[str, tuple[str, str, str]] = {}
        if not publish:
            return published
        for name, value in values.items():
            materializer = materializers.for_annotation(
                signature.outputs[name], f"step {step_spec.name!r} output {name!r}"
            )
            # unique whatever the metadata store: execution ids repeat after metadata.db is
            # deleted, or between two projects sharing one artifact folder
            unique = f"{execution_id}-{uuid.uuid4().hex[:12]}"
            uri = artifacts.uri(spec.pipeline.name, spec.run_id, step_spec.name, name, unique)
            with artifacts.staging() as folder:
                materializer.save(value, folder)
                digest = artifacts.publish_folder(folder, uri)
            published[name] = (uri, digest, materializer.name)
    return published


def _outputs_of(step: str, declared: dict[str, Any], single: bool, returned: Any) -> dict[str, Any]:
    if single:
        return {next(iter(declared)): returned}
    if not declared:
        return {}
    if isinstance(returned, tuple) and len(returned) == len(declared):
        return dict(zip(declared, returned, strict=True))
    if isinstance(returned, dict) and set(returned) == set(declared):
        return dict(returned)
    raise PipelineError(
        f"Step {step!r} must return its outputs {sorted(declared)} as a dict or a tuple in that "
        f"order, got {type(returned).__name__}."
    )


def load_step_classes(pipeline: PipelineSpec) -> dict[str, type[Step]]:
    from zenml_core.pipeline.sources import load_source

    classes = {}
    for step_spec in pipeline.steps:
        step_class = load_source(step_spec.source)
        if not (isinstance(step_class, type) and issubclass(step_class, Step)):
            raise PipelineError(
                f"Step {step_spec.name!r}: {step_spec.source!r} is not a step (decorate it with "
                "@step or subclass zenml_core.Step)."
            )
        step_class(**step_spec.params)  # parameters are checked before the run starts
        classes[step_spec.name] = step_class
    return classes
