"""The entrypoint side of remote runs: what ``python -m zenml_core run --spec`` and
``python -m zenml_core step`` do inside a backend's container (or any other process)."""

from __future__ import annotations

import os
from pathlib import Path

from zenml_core import progress
from zenml_core.artifacts.base import BaseArtifactStore
from zenml_core.backends.request import Components, Progress, RunRequest, RunResult
from zenml_core.distributed import is_chief
from zenml_core.exceptions import PipelineError
from zenml_core.pipeline.engine import Engine, execute_step, load_step_classes
from zenml_core.pipeline.spec import RunSpec

SPEC_FILE = "spec.json"


def publish_spec(spec: RunSpec, store: BaseArtifactStore) -> str:
    """Put the run spec where a remote process can read it; returns its location."""
    uri = store.uri("runs", spec.run_id, "spec")
    if store.exists(uri):  # a run's spec never changes: publish once
        return uri
    with store.staging() as folder:
        (folder / SPEC_FILE).write_text(spec.to_json())
        store.publish_folder(folder, uri)
    return uri


def read_spec(location: str) -> RunSpec:
    """A run spec from a JSON file path, or from a folder URI written by ``publish_spec``."""
    path = Path(location.removeprefix("file://"))
    if "://" not in location or location.startswith("file://"):
        if path.is_dir():
            path = path / SPEC_FILE
        if not path.is_file():
            raise PipelineError(f"No run spec at {location}.")
        return RunSpec.from_json(_text(path, location))
    from zenml_core.artifacts import ArtifactStore

    store = ArtifactStore(location.rsplit("/", 1)[0])
    with store.reader(location) as folder:
        return RunSpec.from_json(_text(folder / SPEC_FILE, location))


def _text(path: Path, location: str) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise PipelineError(
            f"The run spec at {location} is not UTF-8 text (byte {error.start})."
        ) from None


def _prepare(location: str) -> tuple[RunSpec, Components]:
    from zenml_core.backends.local import LocalOrchestrator

    spec = read_spec(location)
    # this process is where the orchestrator sent the run: execute here, whatever it was
    components = Components.of(spec.pipeline, {"orchestrator": LocalOrchestrator()})
    if spec.code is not None:
        from zenml_core.pipeline.code import fetch_code

        cache = Path(os.environ.get("ZENML_CODE_CACHE", Path.home() / ".cache" / "zenml" / "code"))
        fetch_code(spec.code, components.artifact_store, cache)
    return spec, components


def run_spec(location: str, progress: Progress | None = None) -> RunResult:
    """Execute a whole run spec in this process (the remote half of an orchestrator)."""
    spec, components = _prepare(location)
    return Engine(RunRequest(spec, components, None, progress)).run()


def run_spec_step(location: str, step: str, execution_id: int) -> None:
    """Execute one step whose execution the orchestrating process already recorded."""
    spec, components = _prepare(location)
    step_specs = {s.name: s for s in spec.pipeline.steps}
    if step not in step_specs:
        raise PipelineError(f"Run {spec.run_id} has no step {step!r}; steps: {sorted(step_specs)}.")
    classes = load_step_classes(spec.pipeline)
    run = components.metadata_store.get_run(spec.run_id)
    records = [s for s in run.steps if s.execution_id == execution_id]
    if not records or records[0].step != step:
        raise PipelineError(f"Execution {execution_id} is not step {step!r} of run {spec.run_id}.")
    engine = Engine(RunRequest(spec, components, classes))
    backend = engine.step_backend(step_specs[step])
    # a step run here for another process: its progress goes to this process's output
    from zenml_core.runlog import quiet_libraries

    with quiet_libraries(spec.run_id), progress.bound(spec.run_id, step, progress.Printer()):
        # a worker of a multi-machine step trains with the chief and records nothing: its
        # failure fails the job (its exit code), which the submitting process records
        chief = is_chief()
        try:
            published = execute_step(
                spec,
                step_specs[step],
                classes[step],
                records[0].inputs,
                execution_id,
                backend,
                components.artifact_store,
                publish=chief,
            )
            if chief:
                components.metadata_store.complete_step(spec.run_id, execution_id, published)
        except Exception as error:
            import traceback

            if chief:
                components.metadata_store.fail_step(
                    spec.run_id,
                    execution_id,
                    f"{type(error).__name__}: {error}\n{traceback.format_exc()}",
                )
            raise
