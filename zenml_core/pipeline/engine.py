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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from zenml_core.artifacts.base import BaseArtifactStore
from zenml_core.backends.base import BaseOrchestrator, BaseProcessingBackend, BaseTrainingBackend
from zenml_core.component import BaseComponent
from zenml_core.exceptions import ConfigError, PipelineError, StepFailedError
from zenml_core.metadata.base import (
    CACHED,
    COMPLETED,
    FAILED,
    RUNNING,
    ArtifactRecord,
    BaseMetadataStore,
    CachedStep,
    StepRecord,
    StepStart,
)
from zenml_core.pipeline import materializers
from zenml_core.pipeline.context import StepContext
from zenml_core.pipeline.spec import PipelineSpec, RunSpec, StepSpec
from zenml_core.pipeline.step import Step

SKIPPED = "skipped"
#: the components every run has, one of each
COMPONENT_KINDS = ("orchestrator", "processing", "training", "metadata_store", "artifact_store")
RUN_RUNNING, RUN_COMPLETED, RUN_FAILED = "running", "completed", "failed"
#: a run handed to a remote backend that was asked not to wait for it
RUN_SUBMITTED = "submitted"

#: progress callback: (event, step name, detail); events: start, completed, cached, failed,
#: skipped
Progress = Callable[[str, str, str], None]


def new_run_id(pipeline: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{pipeline}-{stamp}-{uuid.uuid4().hex[:6]}"


@dataclass
class StepResult:
    name: str
    state: str
    outputs: dict[str, ArtifactRecord] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""


@dataclass
class RunResult:
    run_id: str
    pipeline: str
    status: str
    steps: dict[str, StepResult]
    artifact_store: BaseArtifactStore
    metadata_store: BaseMetadataStore

    @classmethod
    def from_metadata(
        cls, run_id: str, metadata: BaseMetadataStore, artifacts: BaseArtifactStore
    ) -> RunResult:
        """The result of a run that executed elsewhere, as its metadata recorded it."""
        run = metadata.get_run(run_id)
        steps = {
            s.step: StepResult(
                s.step,
                s.state,
                s.outputs,
                (s.ended_at - s.started_at) if s.started_at and s.ended_at else 0.0,
                s.error,
            )
            for s in run.steps
        }
        return cls(run_id, run.pipeline, run.status, steps, artifacts, metadata)

    def load(self, step: str, output: str = "output") -> Any:
        """The value of one output, read back from the artifact store."""
        record = self.steps[step].outputs[output]
        with self.artifact_store.reader(record.uri) as folder:
            value = materializers.by_name(record.data_type).load(folder)
        return value


@dataclass
class Components:
    """The run's components, built from the spec's configs (defaults filled in)."""

    orchestrator: BaseOrchestrator
    processing: BaseProcessingBackend
    training: BaseTrainingBackend
    metadata_store: BaseMetadataStore
    artifact_store: BaseArtifactStore

    @classmethod
    def of(
        cls, pipeline: PipelineSpec, given: dict[str, BaseComponent] | None = None
    ) -> Components:
        """Objects given in-process win (they still hold secrets); then the spec's configs;
        then the project's defaults."""
        from zenml_core.kinds import KINDS
        from zenml_core.repository import default_components

        configs = default_components() | pipeline.components
        built: dict[str, Any] = {}
        for kind in COMPONENT_KINDS:
            if given and kind in given:
                built[kind] = given[kind]
                continue
            config = configs[kind]
            if config.get("kind", kind) != kind:
                raise ConfigError(f"Component {kind!r} is configured as a {config['kind']!r}.")
            built[kind] = KINDS[kind][1].from_config({**config, "kind": kind})
        return cls(**built)

    def configs(self) -> dict[str, dict[str, Any]]:
        return {
            kind: getattr(self, kind).to_config()
            for kind in (
                "orchestrator",
                "processing",
                "training",
                "metadata_store",
                "artifact_store",
            )
        }


@dataclass
class RunRequest:
    """What an orchestrator gets: the spec, and ways to run it here or elsewhere."""

    spec: RunSpec
    components: Components
    step_classes: dict[str, type[Step]] | None = None
    progress: Progress | None = None

    def execute(self, parallelism: int = 1) -> RunResult:
        """Run the whole pipeline in this process."""
        return Engine(self, parallelism).run()

    def publish_spec(self) -> str:
        """Put the spec in the artifact store (once); returns the location for ``command``."""
        from zenml_core.pipeline.runner import publish_spec

        return publish_spec(self.spec, self.components.artifact_store)

    def command(self, spec_location: str) -> list[str]:
        """The command a remote orchestrator runs, given where it put the spec."""
        return ["python", "-m", "zenml_core", "run", "--spec", spec_location]

    def secret_environment(self) -> dict[str, str]:
        """Secrets the remote process needs, as environment variables: ship them through the
        backend's secret store (a Kubernetes Secret, Secret Manager), never in plain specs."""
        environment: dict[str, str] = {}
        for kind in ("metadata_store", "artifact_store", "processing", "training"):
            environment.update(getattr(self.components, kind).secret_environment())
        return environment

    def require_shared_stores(self, where: str) -> None:
        """Raise ``ConfigError`` unless the run's stores can be reached from ``where`` (a pod,
        a VM): stores on this machine's disk cannot. Remote backends call this first."""
        problems = []
        artifacts, metadata = self.components.artifact_store, self.components.metadata_store
        if artifacts.MACHINE_LOCAL:
            problems.append(
                f"the artifact store {artifacts.root!r} is a folder on this machine: use an "
                "object store, e.g. artifact_store: gs://BUCKET/zenml (pip install zenml-gcp)"
            )
        if metadata.MACHINE_LOCAL:
            problems.append(
                f"the metadata store ({type(metadata).__name__}) is a file on this machine: use "
                "a MySQL metadata store that both this machine and the run can reach"
            )
        if problems:
            raise ConfigError(f"A run on {where} cannot reach its stores: " + "; ".join(problems))

    def record_failure(self, reason: str) -> None:
        """Record that the run failed where it ran (a pod OOM-killed, an image that cannot be
        pulled...), so the metadata store tells what the raised error tells. Steps it left
        running are failed with the reason; a run that never started is recorded first."""
        from zenml_core.exceptions import MetadataStoreError

        store, run_id = self.components.metadata_store, self.spec.run_id
        try:
            run = store.get_run(run_id)
        except MetadataStoreError:
            orchestrator = self.spec.pipeline.components.get("orchestrator", {}).get("name")
            store.begin_run(
                self.spec.pipeline.name,
                run_id,
                orchestrator or self.components.orchestrator.to_config()["name"],
                self.spec.to_dict(),
            )
            store.end_run(run_id, RUN_FAILED, reason)
            return
        for step in run.steps:
            if step.state == RUNNING:
                store.fail_step(run_id, step.execution_id, reason)
        recorded = run.error if run.status == RUN_FAILED else ""
        store.end_run(run_id, RUN_FAILED, f"{reason}; {recorded}" if recorded else reason)

    def submitted(self) -> RunResult:
        """The result of a run handed off without waiting: follow it with ``zenml runs show``."""
        return RunResult(
            self.spec.run_id,
            self.spec.pipeline.name,
            RUN_SUBMITTED,
            {},
            self.components.artifact_store,
            self.components.metadata_store,
        )

    def result(self) -> RunResult:
        """The run's result as recorded, once a remote process has executed it; raises
        ``StepFailedError`` for a failed run, as a local run does."""
        result = RunResult.from_metadata(
            self.spec.run_id, self.components.metadata_store, self.components.artifact_store
        )
        if result.status != RUN_COMPLETED:
            run = self.components.metadata_store.get_run(self.spec.run_id)
            raise StepFailedError(
                f"Run {self.spec.run_id} {result.status}: {run.error or 'no error recorded'}"
            ).with_result(result)
        return result


@dataclass
class StepRequest:
    """What a training backend gets: one step to run, here or elsewhere."""

    spec: RunSpec
    step: str
    execution_id: int
    execute: Callable[[], None]
    run: RunRequest

    def publish_spec(self) -> str:
        return self.run.publish_spec()

    def secret_environment(self) -> dict[str, str]:
        return self.run.secret_environment()

    def command(self, spec_location: str) -> list[str]:
        return [
            "python",
            "-m",
            "zenml_core",
            "step",
            "--spec",
            spec_location,
            "--step",
            self.step,
            "--execution-id",
            str(self.execution_id),
        ]


def cache_key(
    step_spec: StepSpec, step_class: type[Step], inputs: dict[str, ArtifactRecord]
) -> str:
    """Step identity + its code + parameters + input fingerprints."""
    material = {
        "source": step_spec.source,
        "code": step_class.code_hash(),
        "params": step_spec.params,
        "inputs": {name: record.fingerprint for name, record in sorted(inputs.items())},
        "outputs": sorted(step_class.signature().outputs),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class Engine:
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
        self.previous: dict[str, StepRecord] = {}
        self.waiting: dict[str, int] = {}
        self.dependents: dict[str, list[str]] = {}
        #: executions already recorded as running, together with their upstream's completion
        self.prestarted: dict[str, int] = {}
        self.backends: dict[str, BaseProcessingBackend | BaseTrainingBackend] = {}
        self.backend_names: dict[str, str] = {}

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> RunResult:
        for step_spec in self.order:  # parameters and backends, before anything is written
            self.step_backend(step_spec)
        self.artifacts.check_access()
        self.metadata.check_access()
        if self.pipeline.enable_cache:
            self.previous = self.metadata.completed_executions(self.pipeline.name)
        orchestrator = self.pipeline.components.get("orchestrator", {}).get("name")
        self.metadata.begin_run(
            self.pipeline.name,
            self.spec.run_id,
            orchestrator or self.components.orchestrator.to_config()["name"],
            self.spec.to_dict(),
        )
        failure: BaseException | None = None
        try:
            self._schedule()
        except BaseException as error:  # KeyboardInterrupt included: record, then re-raise
            failure = error
        finally:
            for execution_id in self.prestarted.values():  # unblocked, then another step failed
                self.metadata.fail_step(
                    self.spec.run_id, execution_id, "not run: another step of the run failed first"
                )
            self.metadata.record_cached(self.spec.run_id, self.cached)
            failed = [r for r in self.results.values() if r.state == FAILED]
            if failure is None and failed:
                status, message = RUN_FAILED, f"step {failed[0].name!r} failed: {failed[0].error}"
            elif failure is not None:
                status, message = RUN_FAILED, f"{type(failure).__name__}: {failure}"
            else:
                status, message = RUN_COMPLETED, ""
            self.metadata.end_run(self.spec.run_id, status, message)
        if failure is not None:
            raise failure
        result = RunResult(
            self.spec.run_id,
            self.pipeline.name,
            status,
            dict(self.results),
            self.artifacts,
            self.metadata,
        )
        if failed:
            first = failed[0]
            raise StepFailedError(
                f"Step {first.name!r} of run {self.spec.run_id} failed: {first.error}\n"
                "The run is recorded as failed; fix the step and run the pipeline again: "
                "completed steps are reused from the cache."
            ).with_result(result)
        return result

    def _schedule(self) -> None:
        """Run steps as their inputs become ready; after a failure, start nothing new."""
        waiting = self.waiting = {
            s.name: len({a.split(".", 1)[0] for a in s.inputs.values()}) for s in self.order
        }
        dependents = self.dependents = {s.name: [] for s in self.order}
        for s in self.order:
            for upstream in {a.split(".", 1)[0] for a in s.inputs.values()}:
                dependents[upstream].append(s.name)
        by_name = self.pipeline_steps
        ready = deque(name for name, count in waiting.items() if count == 0)

        def finish(name: str, result: StepResult) -> bool:
            self.results[name] = result
            if result.state == FAILED:
                return False
            for dependent in dependents[name]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    ready.append(dependent)
            return True

        healthy = True
        if self.parallelism == 1:  # in this thread: no hand-offs on the hot path
            while ready and healthy:
                name = ready.popleft()
                healthy = finish(name, self._run_step(by_name[name]))
        else:
            running: dict[Future[StepResult], str] = {}
            with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
                while (ready and healthy) or running:
                    while ready and healthy and len(running) < self.parallelism:
                        name = ready.popleft()
                        running[pool.submit(self._run_step, by_name[name])] = name
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        healthy = finish(running.pop(future), future.result()) and healthy
        for name in by_name:
            if name not in self.results:  # downstream of a failure
                self.results[name] = StepResult(name, SKIPPED)
                self.progress(SKIPPED, name, "an upstream step failed")

    # -- one step ------------------------------------------------------------------------------

    def step_backend(self, step_spec: StepSpec) -> BaseProcessingBackend | BaseTrainingBackend:
        if step_spec.name in self.backends:
            return self.backends[step_spec.name]
        step_class = self.classes[step_spec.name]
        if step_spec.backend is not None:
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

    def _inputs(self, step_spec: StepSpec) -> dict[str, ArtifactRecord]:
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
        hit = self.previous.get(key)
        if hit is not None and all(self.artifacts.exists(r.uri) for r in hit.outputs.values()):
            return hit
        return None

    def _backend_name(self, step_spec: StepSpec) -> str:
        name = self.backend_names.get(step_spec.name)
        if name is None:
            backend = self.step_backend(step_spec)
            name = self.backend_names[step_spec.name] = (
                f"{backend.KIND}:{backend.to_config()['name']}"
            )
        return name

    def _run_step(self, step_spec: StepSpec) -> StepResult:
        started = time.perf_counter()
        step_class = self.classes[step_spec.name]
        backend = self.step_backend(step_spec)
        backend_name = self._backend_name(step_spec)
        inputs = self._inputs(step_spec)
        key = cache_key(step_spec, step_class, inputs)
        hit = self._cache_hit(step_spec, key)
        if hit is not None:
            with self.lock:
                self.cached.append(
                    CachedStep(
                        step_spec.name,
                        key,
                        backend_name,
                        step_spec.source,
                        inputs,
                        hit.outputs,
                        hit.execution_id,
                        time.time(),
                    )
                )
            self.progress(CACHED, step_spec.name, "")
            return StepResult(step_spec.name, CACHED, hit.outputs, time.perf_counter() - started)
        self.progress("start", step_spec.name, backend_name)
        execution_id = self.prestarted.pop(step_spec.name, None)
        if execution_id is None:
            execution_id = self.metadata.start_step(
                self.spec.run_id,
                step_spec.name,
                cache_key=key,
                backend=backend_name,
                source=step_spec.source,
                inputs=inputs,
            )
        outcome: dict[str, dict[str, ArtifactRecord]] = {}

        def execute() -> None:
            published = execute_step(
                self.spec, step_spec, step_class, inputs, execution_id, backend, self.artifacts
            )
            outcome["outputs"] = self._complete(step_spec, execution_id, published)

        try:
            if isinstance(backend, BaseTrainingBackend):
                backend.run_step(
                    StepRequest(self.spec, step_spec.name, execution_id, execute, self.request)
                )
                if "outputs" not in outcome:  # it ran elsewhere: read what that process recorded
                    outcome["outputs"] = self._recorded_outputs(execution_id)
            else:
                execute()
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            recorded = self._recorded_error(execution_id) if "outputs" not in outcome else ""
            if recorded:  # the process that ran the step elsewhere said why: keep its words
                message = recorded.splitlines()[0]
            else:
                self.metadata.fail_step(
                    self.spec.run_id, execution_id, message + "\n" + traceback.format_exc(limit=-8)
                )
            self.progress(FAILED, step_spec.name, message)
            return StepResult(step_spec.name, FAILED, {}, time.perf_counter() - started, message)
        except KeyboardInterrupt:  # Ctrl-C: the step did not finish; say so, then stop the run
            if "outputs" not in outcome:
                self.metadata.fail_step(self.spec.run_id, execution_id, "interrupted (Ctrl-C)")
            raise
        seconds = time.perf_counter() - started
        self.progress(COMPLETED, step_spec.name, f"{seconds:.2f}s")
        return StepResult(step_spec.name, COMPLETED, outcome["outputs"], seconds)

    def _complete(
        self, step_spec: StepSpec, execution_id: int, published: dict[str, tuple[str, str, str]]
    ) -> dict[str, ArtifactRecord]:
        """Record a step's outputs; when steps run one at a time, record the steps this one
        unblocks as running in the same write (one metadata transaction per step)."""
        starts: list[StepStart] = []
        if self.parallelism == 1:
            for name in self.dependents.get(step_spec.name, []):
                if self.waiting[name] != 1:  # still waits for another step
                    continue
                dependent = self.pipeline_steps[name]
                inputs = {}
                for argument, address in dependent.inputs.items():
                    upstream, output = address.split(".", 1)
                    inputs[argument] = (
                        ArtifactRecord(None, output, *published[output])
                        if upstream == step_spec.name
                        else self.results[upstream].outputs[output]
                    )
                key = cache_key(dependent, self.classes[name], inputs)
                if self._cache_hit(dependent, key) is None:
                    starts.append(
                        StepStart(
                            name, key, self._backend_name(dependent), dependent.source, inputs
                        )
                    )
        records, ids = self.metadata.complete_and_start(
            self.spec.run_id, execution_id, published, starts
        )
        self.prestarted.update({start.step: i for start, i in zip(starts, ids, strict=True)})
        return records

    def _recorded_error(self, execution_id: int) -> str:
        for step in self.metadata.get_run(self.spec.run_id).steps:
            if step.execution_id == execution_id and step.state == FAILED:
                return step.error
        return ""

    def _recorded_outputs(self, execution_id: int) -> dict[str, ArtifactRecord]:
        run = self.metadata.get_run(self.spec.run_id)
        for step in run.steps:
            if step.execution_id == execution_id:
                if step.state != COMPLETED:
                    raise StepFailedError(step.error or f"the step ended in state {step.state}")
                return step.outputs
        raise StepFailedError(f"execution {execution_id} recorded nothing")


def execute_step(
    spec: RunSpec,
    step_spec: StepSpec,
    step_class: type[Step],
    inputs: dict[str, ArtifactRecord],
    execution_id: int,
    backend: Any,
    artifacts: BaseArtifactStore,
) -> dict[str, tuple[str, str, str]]:
    """Run one step's code: load inputs, call it, publish its outputs.

    Returns output name -> (uri, fingerprint, data type), for the caller to record.
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
        for name, value in values.items():
            materializer = materializers.for_annotation(
                signature.outputs[name], f"step {step_spec.name!r} output {name!r}"
            )
            uri = artifacts.uri(spec.pipeline.name, step_spec.name, name, str(execution_id))
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
