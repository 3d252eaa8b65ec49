"""Conformance suites: the one contract every backend and plugin meets, first-party or not.

Subclass the suite for your backend's kind in a test module, named ``Test...`` so pytest
collects it, and fill in the class attributes::

    from zenml_core.testing.conformance import OrchestratorConformance

    class TestKubernetesOrchestrator(OrchestratorConformance):
        backend_class = KubernetesOrchestrator
        name = "kubernetes"
        params = {"namespace": "ml", "image": "zenml:0.1.0"}
        bad_params = [({"namespace": "Not_Valid"}, "namespace")]

The suites ask the process-wide plugin manager, so they test the plugin as installed, found
through its entry point. Set ``installed = False`` to skip the checks that need a real
installation (e.g. a class registered in-process with the ``zenml_plugins`` fixture).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import typing
from typing import Any, ClassVar

import pytest

from zenml_core.component import BaseComponent
from zenml_core.exceptions import ConfigError
from zenml_core.kinds import KINDS
from zenml_core.plugins import LOADED, PluginManager, get_plugin_manager
from zenml_core.testing import heavy_modules_imported


class BackendConformance:
    """Checks shared by every kind: registration, config round trips, clear errors, light import."""

    kind: ClassVar[str] = ""
    backend_class: ClassVar[type[BaseComponent]]
    name: ClassVar[str]
    #: parameters a user would write; the suite builds the backend from them
    params: ClassVar[dict[str, Any]] = {}
    #: (parameters, text the error message must contain): each must be refused on construction
    bad_params: ClassVar[list[tuple[dict[str, Any], str]]] = []
    installed: ClassVar[bool] = True

    def make(self, **overrides: Any) -> BaseComponent:
        return self.backend_class.from_params({**self.params, **overrides})

    def test_subclasses_the_base_of_its_kind(self) -> None:
        _, base = KINDS[self.kind]
        assert issubclass(self.backend_class, base)
        assert self.kind == self.backend_class.KIND
        assert dataclasses.is_dataclass(self.backend_class), "parameters are dataclass fields"

    def test_registered_under_its_name(self) -> None:
        manager = get_plugin_manager()
        assert manager.get_class(self.kind, self.name) is self.backend_class
        assert manager.name_of(self.backend_class) == self.name

    def test_config_round_trips_through_json(self) -> None:
        backend = self.make()
        config = json.loads(json.dumps(backend.to_config()))
        assert config["kind"] == self.kind and config["name"] == self.name
        assert type(backend).from_config(config) == backend
        assert KINDS[self.kind][1].from_config(config) == backend

    def test_config_round_trips_through_yaml(self) -> None:
        backend = self.make()
        assert type(backend).from_yaml(backend.to_yaml()) == backend

    def test_unknown_parameter_is_named(self) -> None:
        with pytest.raises(ConfigError, match="no_such_parameter"):
            self.backend_class.from_params({**self.params, "no_such_parameter": 1})

    def test_wrongly_typed_parameters_are_refused(self) -> None:
        hints = typing.get_type_hints(self.backend_class)
        checked = 0
        for f in dataclasses.fields(self.backend_class):  # type: ignore[arg-type]
            if hints.get(f.name, Any) is Any:
                continue
            with pytest.raises(ConfigError, match=f.name):
                self.make(**{f.name: {"not", "a", "valid", "value"}})
            checked += 1
        if not checked:
            pytest.skip(f"{self.backend_class.__qualname__} has no typed parameters")

    def test_bad_parameters_are_refused_with_a_clear_error(self) -> None:
        if not self.bad_params:
            pytest.skip("no bad_params given")
        for overrides, expected_text in self.bad_params:
            with pytest.raises(ConfigError) as caught:
                self.make(**overrides)
            assert expected_text in str(caught.value), (overrides, str(caught.value))

    def test_importing_the_backend_is_light(self) -> None:
        module = self.backend_class.__module__
        heavy = heavy_modules_imported(f"import {module}")
        assert heavy == [], f"importing {module} imports {heavy}: import them where used"

    def test_listed_by_the_cli(self) -> None:
        if not self.installed:
            pytest.skip("backend is registered in-process, not installed")
        result = subprocess.run(
            [sys.executable, "-m", "zenml_core", "backends", self.kind, "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        names = {row["name"]: row["class"] for row in json.loads(result.stdout)}
        cls = self.backend_class
        assert names.get(self.name) == f"{cls.__module__}.{cls.__qualname__}"


def _tiny_pipeline(name: str) -> Any:
    from zenml_core.pipeline import Pipeline
    from zenml_core.testing.steps import mean_and_pid, numbers

    pipeline = Pipeline(name)
    values = pipeline.add_step(numbers(count=5))
    pipeline.add_step(mean_and_pid(values=values))
    return pipeline


class OrchestratorConformance(BackendConformance):
    """Also runs a two-step pipeline through the orchestrator. Remote orchestrators point
    ``run_params`` (default: ``params``) at their loopback emulators."""

    kind = "orchestrator"
    run_params: ClassVar[dict[str, Any] | None] = None

    @pytest.fixture
    def conformance_run_params(self) -> dict[str, Any]:
        """Parameters for the conformance run; override this fixture when they come from
        other fixtures (an emulator's address)."""
        return self.run_params or {}

    @pytest.fixture
    def conformance_stores(self) -> dict[str, Any]:
        """``metadata_store``/``artifact_store`` for the conformance run (default: the
        project's). A remote orchestrator overrides this with stores its workload reaches."""
        return {}

    def test_runs_a_pipeline_and_records_it(
        self,
        tmp_path: Any,
        monkeypatch: Any,
        conformance_run_params: dict[str, Any],
        conformance_stores: dict[str, Any],
    ) -> None:
        from zenml_core.repository import init

        monkeypatch.chdir(tmp_path)
        init(tmp_path)
        orchestrator = self.make(**conformance_run_params)
        result = _tiny_pipeline("conformance").run(backend=orchestrator, **conformance_stores)
        assert result.status == "completed"
        assert result.load("mean_and_pid")["mean"] == 2.0
        run = result.metadata_store.get_run(result.run_id)
        assert [(s.step, s.state) for s in run.steps] == [
            ("numbers", "completed"),
            ("mean_and_pid", "completed"),
        ]
        assert run.orchestrator == self.name
        again = _tiny_pipeline("conformance").run(backend=orchestrator, **conformance_stores)
        assert {s.state for s in again.steps.values()} == {"cached"}


class ProcessingBackendConformance(BackendConformance):
    kind = "processing"

    def test_gives_beam_arguments_naming_a_runner(self) -> None:
        args = self.make().beam_args(job_name="conformance-job")  # type: ignore[attr-defined]
        assert isinstance(args, list) and all(isinstance(a, str) for a in args)
        assert any(a.startswith("--runner=") for a in args), "name the runner explicitly"


class TrainingBackendConformance(BackendConformance):
    """Also runs a training step through the backend and checks it was recorded."""

    kind = "training"
    run_params: ClassVar[dict[str, Any] | None] = None

    def test_runs_a_training_step(self, tmp_path: Any, monkeypatch: Any) -> None:
        from zenml_core.repository import init

        monkeypatch.chdir(tmp_path)
        init(tmp_path)
        pipeline = _tiny_pipeline("conformance-training")
        pipeline.steps[1].with_backend(self.make(**(self.run_params or {})))
        result = pipeline.run()
        assert result.load("mean_and_pid")["mean"] == 2.0
        run = result.metadata_store.get_run(result.run_id)
        trainer = next(s for s in run.steps if s.step == "mean_and_pid")
        assert trainer.state == "completed" and trainer.backend == f"training:{self.name}"
        assert trainer.inputs["values"].id == run.steps[0].outputs["output"].id


class PluginConformance:
    """Checks of a plugin distribution as installed: found, compatible, loaded, light."""

    distribution: ClassVar[str]
    #: kind -> names the plugin must provide
    backends: ClassVar[dict[str, list[str]]] = {}

    def _info(self) -> Any:
        manager = PluginManager()  # a fresh scan of what is installed, not a cached one
        found = [p for p in manager.plugins() if p.distribution == self.distribution]
        assert found, (
            f"{self.distribution} is not found through the zenml_core.plugins entry points"
        )
        return found

    def test_found_and_loaded_without_errors(self) -> None:
        for info in self._info():
            assert info.status == LOADED, info.errors

    def test_provides_its_backends(self) -> None:
        provided: dict[str, set[str]] = {}
        for info in self._info():
            for kind, names in info.backends.items():
                provided.setdefault(kind, set()).update(names)
        assert provided == {kind: set(names) for kind, names in self.backends.items()}

    def test_importing_the_plugin_is_light(self) -> None:
        for info in self._info():
            module = info.module.split(":")[0]
            heavy = heavy_modules_imported(f"import {module}")
            assert heavy == [], f"importing {module} imports {heavy}: import them where used"
