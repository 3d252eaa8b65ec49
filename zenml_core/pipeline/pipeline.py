"""Pipeline: a DAG of steps, and where each part of it runs.

Backends and stores can be given in four places; for each kind the most specific wins:

1. ``Step(...).with_backend(b)`` — that step's processing or training backend;
2. ``pipeline.run(backend=..., metadata_store=..., artifact_store=...)``;
3. ``pipeline.build(...)`` — kept for later runs;
4. ``Pipeline(..., backend=...)``;
5. the project's defaults (``.zenml/config.yaml``), else the embedded ones: local backends,
   SQLite metadata and a local artifact folder.

``backend=`` takes any backend and files it under its kind; ``backends=[...]`` takes several.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zenml_core.backends.request import Components, Progress, RunRequest, RunResult
from zenml_core.component import BaseComponent
from zenml_core.exceptions import ConfigError, PipelineError
from zenml_core.pipeline.engine import new_run_id
from zenml_core.pipeline.spec import PipelineSpec, RunSpec, StepSpec
from zenml_core.pipeline.step import Step


class Pipeline:
    def __init__(
        self,
        name: str,
        *,
        steps: Iterable[Step] = (),
        backend: BaseComponent | None = None,
        backends: Iterable[BaseComponent] = (),
        metadata_store: BaseComponent | None = None,
        artifact_store: BaseComponent | str | None = None,
        enable_cache: bool = True,
    ) -> None:
        from zenml_core.pipeline.spec import check_name

        self.name = check_name(name, "Pipeline name")
        self.steps: list[Step] = []
        self._names: set[str] = set()
        self.enable_cache = enable_cache
        self._components = _by_kind(backend, backends, metadata_store, artifact_store)
        self._built: dict[str, BaseComponent] = {}
        for step in steps:
            self.add_step(step)

    # -- building ------------------------------------------------------------------------------

    def add_step(self, step: Step) -> Step:
        if not isinstance(step, Step):
            raise ConfigError(f"Pipeline {self.name!r}: add_step needs a Step, got {step!r}.")
        if step.name in self._names:
            raise PipelineError(
                f"Pipeline {self.name!r} already has a step named {step.name!r}; give this one "
                f"another name with .with_name(...)."
            )
        self.steps.append(step)
        self._names.add(step.name)
        return step

    def build(
        self,
        backend: BaseComponent | None = None,
        *,
        backends: Iterable[BaseComponent] = (),
        metadata_store: BaseComponent | None = None,
        artifact_store: BaseComponent | str | None = None,
    ) -> PipelineSpec:
        """Check the pipeline and remember these components for later runs."""
        self._built.update(_by_kind(backend, backends, metadata_store, artifact_store))
        return self.to_spec()

    def to_spec(self, overrides: dict[str, BaseComponent] | None = None) -> PipelineSpec:
        components = self.components(overrides)
        steps = []
        members = {id(s) for s in self.steps}
        for step in self.steps:
            signature = step.signature()
            for ref in step.inputs.values():
                if id(ref.step) not in members:
                    raise PipelineError(
                        f"Step {step.name!r} reads from step {ref.step.name!r}, which is not in "
                        f"pipeline {self.name!r}; add it with add_step()."
                    )
            unbound = [
                a
                for a in signature.arguments
                if a not in step.inputs and a not in step.params and a not in signature.defaults
            ]
            if unbound:
                raise PipelineError(
                    f"Step {step.name!r} has nothing connected to {unbound}; pass another "
                    "step's output (or a value) for each."
                )
            steps.append(
                StepSpec(
                    name=step.name,
                    source=step.source(),
                    params=dict(step.params),
                    inputs={arg: ref.address for arg, ref in step.inputs.items()},
                    backend=step.backend.to_config() if step.backend is not None else None,
                    enable_cache=step.enable_cache,
                    settings=dict(step.settings),
                )
            )
        spec = PipelineSpec(
            self.name, steps, {k: c.to_config() for k, c in components.items()}, self.enable_cache
        )
        spec.check_graph()
        return spec

    def components(self, overrides: dict[str, BaseComponent] | None = None) -> dict[str, Any]:
        return {**self._components, **self._built, **(overrides or {})}

    # -- running -------------------------------------------------------------------------------

    def run(
        self,
        backend: BaseComponent | None = None,
        *,
        backends: Iterable[BaseComponent] = (),
        metadata_store: BaseComponent | None = None,
        artifact_store: BaseComponent | str | None = None,
        enable_cache: bool | None = None,
        progress: Progress | None = None,
    ) -> RunResult:
        """Run the pipeline and return its result; ``StepFailedError`` if a step fails."""
        overrides = _by_kind(backend, backends, metadata_store, artifact_store)
        spec = self.to_spec(overrides)
        if enable_cache is not None:
            spec.enable_cache = enable_cache
        components = Components.of(spec, self.components(overrides))
        # the spec names every component, defaults included: wherever it runs, it must reach
        # the same stores, not whatever that machine's defaults are
        spec.components = components.configs()
        run_spec = RunSpec(new_run_id(self.name), spec)
        request = RunRequest(
            run_spec,
            components,
            {s.name: type(s) for s in self.steps},
            progress,
            {s.name: s.backend for s in self.steps if s.backend is not None},
        )
        step_backends = [
            s.backend or components.training for s in self.steps if s.STEP_KIND == "training"
        ]
        # refusals come before anything is written: the code package included
        components.orchestrator.preflight(request)
        for training in {id(b): b for b in step_backends}.values():
            training.preflight(request)
        if not all(b.RUNS_IN_PROCESS for b in [components.orchestrator, *step_backends]):
            # some step runs in another process, which needs the project's code
            from zenml_core.pipeline.code import package_code
            from zenml_core.pipeline.sources import code_root

            root = code_root(s.source for s in run_spec.pipeline.steps)
            if root is not None:
                run_spec.code = package_code(root, components.artifact_store)
        return components.orchestrator.run(request)

    # -- YAML ----------------------------------------------------------------------------------

    def to_yaml(self) -> str:
        import yaml

        return str(yaml.safe_dump(self.to_spec().to_dict(), sort_keys=False))

    @classmethod
    def from_spec(cls, spec: PipelineSpec) -> Pipeline:
        from zenml_core.pipeline.engine import load_step_classes

        classes = load_step_classes(spec)
        steps: dict[str, Step] = {}
        for step_spec in spec.steps:
            step = classes[step_spec.name](**step_spec.params).with_name(step_spec.name)
            step.enable_cache = step_spec.enable_cache
            step.settings = dict(step_spec.settings)
            if step_spec.backend is not None:
                step.with_backend(BaseComponent.from_config(step_spec.backend))
            steps[step_spec.name] = step
        for step_spec in spec.check_graph():
            step = steps[step_spec.name]
            for argument, address in step_spec.inputs.items():
                upstream, output = address.split(".", 1)
                step.connect(**{argument: steps[upstream][output]})
        components = [
            BaseComponent.from_config({**config, "kind": config.get("kind", kind)})
            for kind, config in spec.components.items()
        ]
        return cls(
            spec.name, steps=steps.values(), backends=components, enable_cache=spec.enable_cache
        )

    @classmethod
    def from_yaml(cls, text: str | bytes, what: str = "Pipeline YAML") -> Pipeline:
        from zenml_core.yamlio import load_yaml

        return cls.from_spec(PipelineSpec.from_dict(load_yaml(text, what, PipelineError)))

    @classmethod
    def from_yaml_file(cls, path: str | Path) -> Pipeline:
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            message = f"Cannot read the pipeline file {path}: {error.strerror}."
            raise PipelineError(message) from None
        return cls.from_yaml(data, f"Pipeline file {path}")


def _by_kind(
    backend: BaseComponent | None,
    backends: Iterable[BaseComponent],
    metadata_store: BaseComponent | None,
    artifact_store: BaseComponent | str | None,
) -> dict[str, BaseComponent]:
    if isinstance(artifact_store, str):
        from zenml_core.artifacts import ArtifactStore

        artifact_store = ArtifactStore(artifact_store)
    chosen: dict[str, BaseComponent] = {}
    for component in [*([backend] if backend else []), *backends, metadata_store, artifact_store]:
        if component is None:
            continue
        if not isinstance(component, BaseComponent):
            raise ConfigError(f"{component!r} is not a zenml-core backend or store.")
        chosen[component.KIND] = component
    return chosen
