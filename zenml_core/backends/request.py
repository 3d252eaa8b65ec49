"""What a backend receives and returns: the whole backend contract, in one place.

- An orchestrator's ``run(request: RunRequest) -> RunResult``.
- A training backend's ``run_step(request: StepRequest) -> None``.

Both requests offer the same helpers to a backend that runs the work elsewhere:
``publish_spec()`` (the run spec, in the artifact store), ``command(location)`` (what to run
there), ``plain_environment()`` (what to set there in plain), ``secret_environment()`` (what
to ship as secrets, never in plain text),
``require_shared_stores(where)`` and ``record_failure(reason)``. An orchestrator that runs each
step somewhere of its own uses ``RunRequest.step_by_step()``. Most remote backends need none of
this directly: ``zenml_core.backends.remote`` runs the whole lifecycle for them.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenml_core.backends.base import BaseOrchestrator, BaseProcessingBackend, BaseTrainingBackend
from zenml_core.backends.states import State
from zenml_core.component import BaseComponent
from zenml_core.exceptions import ConfigError, MetadataStoreError, StepFailedError

if TYPE_CHECKING:
    from zenml_core.artifacts.base import BaseArtifactStore
    from zenml_core.metadata.base import ArtifactRecord, BaseMetadataStore
    from zenml_core.pipeline.engine import StepScheduler
    from zenml_core.pipeline.spec import PipelineSpec, RunSpec, StepSpec
    from zenml_core.pipeline.step import Step

#: the components every run has, one of each
COMPONENT_KINDS = ("orchestrator", "processing", "training", "metadata_store", "artifact_store")

#: progress callback: (event, step name, detail); events: start, completed, cached, failed,
#: skipped
Progress = Callable[[str, str, str], None]

#: the interpreter ``command()`` names for a container: the image's first ``python`` on PATH
#: (``/opt/zenml/bin/python`` in zenml-core's base images)
CONTAINER_PYTHON = "python"


def entrypoint(*arguments: str, local: bool = False) -> list[str]:
    """``python -m zenml_core ARGUMENTS``: with this process's interpreter when ``local`` (a
    subprocess on this machine, which may be an un-activated virtualenv), else the image's."""
    return [sys.executable if local else CONTAINER_PYTHON, "-m", "zenml_core", *arguments]


@dataclass
class StepResult:
    name: str
    state: State
    outputs: dict[str, ArtifactRecord] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""


@dataclass
class RunResult:
    run_id: str
    pipeline: str
    status: State
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
        from zenml_core.pipeline import materializers

        record = self.steps[step].outputs[output]
        materializer = materializers.by_name(record.data_type)
        with self.artifact_store.reader(record.uri) as folder:
            value = materializer.load(folder)
            if self.artifact_store.READS_IN_PLACE or not hasattr(value, "path"):
                return value
            # a handle on files (a Dataset) must outlive the store's temporary download
            kept = Path(tempfile.mkdtemp(prefix="zenml-loaded-"))
            atexit.register(shutil.rmtree, kept, True)
            shutil.copytree(folder, kept, dirs_exist_ok=True)
        return materializer.load(kept)


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
        return {kind: getattr(self, kind).to_config() for kind in COMPONENT_KINDS}


@dataclass
class RunRequest:
    """What an orchestrator gets: the run spec, the run's components, and ways to run it here
    (``execute``), elsewhere as a whole (``command``), or step by step (``step_by_step``)."""

    spec: RunSpec
    components: Components
    step_classes: dict[str, type[Step]] | None = None
    progress: Progress | None = None
    #: backends given to single steps in this process (``.with_backend(obj)``), by step: they
    #: still hold their secrets, which the configs in the spec leave out
    step_backends: dict[str, BaseComponent] = field(default_factory=dict)

    # -- here ----------------------------------------------------------------------------------

    def execute(self, parallelism: int = 1) -> RunResult:
        """Run the whole pipeline in this process."""
        from zenml_core.pipeline.engine import Engine

        return Engine(self, parallelism).run()

    def step_by_step(self) -> StepScheduler:
        """The run as steps to launch one by one, wherever the orchestrator likes::

        with request.step_by_step() as run:
            while not run.done:
                for name in run.ready():          # cache hits are already resolved
                    step = run.start(name)        # recorded as running: step.execution_id
                    launch(step.command(location), step.settings)
                run.finish(wait_for_any_launched_step())  # reads what the step recorded
        return run.result()
        """
        from zenml_core.pipeline.engine import StepScheduler

        return StepScheduler(self)

    def retried(self, run_id: str) -> RunRequest:
        """The same run again as the run ``run_id`` (a retry after preemption): steps that
        finished before come from the cache."""
        import dataclasses

        return dataclasses.replace(self, spec=dataclasses.replace(self.spec, run_id=run_id))

    # -- elsewhere -----------------------------------------------------------------------------

    def publish_spec(self) -> str:
        """Put the spec in the artifact store (once); returns the location for ``command``."""
        from zenml_core.pipeline.runner import publish_spec

        return publish_spec(self.spec, self.components.artifact_store)

    def command(self, spec_location: str, *, local: bool = False) -> list[str]:
        """``python -m zenml_core run --spec LOCATION``: the whole run, elsewhere.

        ``python`` is the image's interpreter (the first on PATH in the container); with
        ``local=True`` it is this process's own interpreter, for a subprocess on this machine.
        """
        return entrypoint("run", "--spec", spec_location, local=local)

    def plain_environment(self) -> dict[str, str]:
        """Plain variables the remote process needs: this process's plugin choices
        (``ZENML_PLUGINS``, ``ZENML_PLUGIN_MODULES``...), so the run there loads the same
        backends, an application's own included (its modules travel in the code package)."""
        import os

        from zenml_core.plugins import PLUGIN_ENVIRONMENT

        return {key: os.environ[key] for key in PLUGIN_ENVIRONMENT if key in os.environ}

    def secret_environment(self) -> dict[str, str]:
        """Secrets the remote process needs, as environment variables: ship them through the
        backend's secret store (a Kubernetes Secret, Secret Manager), never in plain specs.
        Includes the secrets of backends given to single steps."""
        environment: dict[str, str] = {}
        for kind in ("metadata_store", "artifact_store", "processing", "training"):
            environment.update(getattr(self.components, kind).secret_environment())
        for backend in self.step_backends.values():
            environment.update(backend.secret_environment())
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

    def record_failure(self, reason: str, failure: str = "") -> None:
        """Record that the run failed where it ran (a pod OOM-killed, an image that cannot be
        pulled...), so the metadata store tells what the raised error tells. Steps it left
        running are failed with the reason; a run that never started is recorded first.
        ``failure`` is the kind of infrastructure failure (see ``remote.FailureKind``)."""
        store, run_id = self.components.metadata_store, self.spec.run_id
        try:
            run = store.get_run(run_id)
        except MetadataStoreError:
            self._begin_run()
            store.end_run(run_id, State.FAILED, reason, failure)
            return
        for step in run.steps:
            if step.state == State.RUNNING:
                store.fail_step(run_id, step.execution_id, reason)
        recorded = run.error if run.status == State.FAILED else ""
        message = f"{reason}; {recorded}" if recorded and recorded not in reason else reason
        store.end_run(run_id, State.FAILED, message, failure)

    def _begin_run(self) -> None:
        self.components.metadata_store.begin_run(
            self.spec.pipeline.name,
            self.spec.run_id,
            self.orchestrator_name(),
            self.spec.redacted(),
        )

    def orchestrator_name(self) -> str:
        name = self.spec.pipeline.components.get("orchestrator", {}).get("name")
        return str(name or self.components.orchestrator.to_config()["name"])

    def submitted(self) -> RunResult:
        """The result of a run handed off without waiting: follow it with ``zenml runs show``."""
        return RunResult(
            self.spec.run_id,
            self.spec.pipeline.name,
            State.SUBMITTED,
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
        if result.status != State.COMPLETED:
            run = self.components.metadata_store.get_run(self.spec.run_id)
            raise StepFailedError(
                f"Run {self.spec.run_id} {result.status}: {run.error or 'no error recorded'}"
            ).with_result(result)
        return result


@dataclass
class StepRequest:
    """One step to run, here (``execute``) or elsewhere (``command``): what a training
    backend's ``run_step`` gets, and what ``StepScheduler.start`` gives an orchestrator that
    runs steps one by one. The step's execution is already recorded as running."""

    spec: RunSpec
    step: str
    execution_id: int
    execute: Callable[[], None]
    run: RunRequest

    @property
    def step_spec(self) -> StepSpec:
        return next(s for s in self.spec.pipeline.steps if s.name == self.step)

    @property
    def settings(self) -> dict[str, Any]:
        """The step's own settings (``Step.with_resources``...), for the backend to honour."""
        return dict(self.step_spec.settings)

    def publish_spec(self) -> str:
        return self.run.publish_spec()

    def secret_environment(self) -> dict[str, str]:
        return self.run.secret_environment()

    def plain_environment(self) -> dict[str, str]:
        return self.run.plain_environment()

    def require_shared_stores(self, where: str) -> None:
        self.run.require_shared_stores(where)

    def command(self, spec_location: str, *, local: bool = False) -> list[str]:
        """``python -m zenml_core step --spec LOCATION --step NAME --execution-id ID``: this
        step alone, elsewhere; ``python`` as in ``RunRequest.command``."""
        return entrypoint(
            "step",
            "--spec",
            spec_location,
            "--step",
            self.step,
            "--execution-id",
            str(self.execution_id),
            local=local,
        )

    def record_failure(self, reason: str) -> None:
        """Record that the step failed where it ran, unless the step's own process already
        recorded how it ended (its words are then kept)."""
        store = self.run.components.metadata_store
        for record in store.get_run(self.spec.run_id).steps:
            if record.execution_id == self.execution_id and record.state == State.RUNNING:
                store.fail_step(self.spec.run_id, self.execution_id, reason)
