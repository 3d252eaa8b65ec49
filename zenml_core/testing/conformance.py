"""Conformance suites: the one contract every backend and plugin meets, first-party or not.

Subclass the suite for your backend's kind in a test module, named ``Test...`` so pytest
collects it, and fill in the class attributes::

    from zenml_core.testing.conformance import OrchestratorConformance

    class TestKubernetesOrchestrator(OrchestratorConformance):
        backend_class = KubernetesOrchestrator
        name = "kubernetes"
        params = {"namespace": "ml", "image": "zenml:0.1.0"}
        bad_params = [({"namespace": "Not_Valid"}, "namespace")]

The suites need ``zenml-core[testing]`` (pytest-timeout gives every test its deadline). They
ask the process-wide plugin manager, so they test the plugin as installed, found through its
entry point. Set ``installed = False`` to skip the checks that need a real installation (a
class registered in-process with the ``zenml_plugins`` fixture).

A broken promise fails with a ``ConformanceFailure`` whose message starts with
``conformance:`` and names the promise.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import typing
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import pytest

from zenml_core.component import BaseComponent
from zenml_core.exceptions import ConfigError, StepFailedError
from zenml_core.kinds import KINDS
from zenml_core.plugins import (
    DEFAULT_IMPORT_LIMIT_S,
    ENV_MODULES,
    LOADED,
    PluginManager,
    get_plugin_manager,
)
from zenml_core.testing import heavy_modules_imported, import_cost

#: how long one suite test may take unless a subclass says otherwise (``deadline_s``)
DEFAULT_DEADLINE_S = 900.0


class ConformanceFailure(AssertionError):
    """A backend broke a promise of the backend contract; the message names the promise."""


def broken(promise: str, detail: str = "") -> NoReturn:
    raise ConformanceFailure(f"conformance: {promise}" + (f"\n  {detail}" if detail else ""))


def _recorded(result: Any) -> Any:
    """The run's record, which must exist once ``run()`` has returned."""
    from zenml_core.exceptions import MetadataStoreError

    try:
        return result.metadata_store.get_run(result.run_id)
    except MetadataStoreError as error:
        broken(
            "run() returns only once the run has ended (waiting is the default)",
            f"it returned, but the metadata store has no record of the run: {error}",
        )


def _states(run: Any) -> list[tuple[str, str]]:
    return [(s.step, str(s.state)) for s in run.steps]


class BackendConformance:
    """Checks shared by every kind: registration, config round trips, clear errors, light import."""

    kind: ClassVar[str] = ""
    backend_class: ClassVar[type[BaseComponent]]
    name: ClassVar[str]
    #: parameters a user would write; the suite builds the backend from them
    params: ClassVar[dict[str, Any]] = {}
    #: (parameters, text the error message must contain): each must be refused on
    #: construction; required for a backend with parameters
    bad_params: ClassVar[list[tuple[dict[str, Any], str]]] = []
    installed: ClassVar[bool] = True
    #: seconds each test may take before it fails as hanging
    deadline_s: ClassVar[float] = DEFAULT_DEADLINE_S

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__ != __name__:  # an author's suite: every test gets the deadline
            marks = [m for m in cls.__dict__.get("pytestmark", []) if m.name != "timeout"]
            deadline = pytest.mark.timeout(cls.deadline_s, method="signal")
            cls.pytestmark = [*marks, deadline]  # type: ignore[attr-defined]

    @pytest.fixture(autouse=True)
    def _conformance_deadline(self, request: pytest.FixtureRequest) -> None:
        if not request.config.pluginmanager.hasplugin("timeout"):
            broken(
                "every suite test has a deadline, but pytest-timeout is not active",
                "install the suites' extra: pip install 'zenml-core[testing]' (and do not "
                "disable the plugin with -p no:timeout)",
            )

    def make(self, **overrides: Any) -> BaseComponent:
        return self.backend_class.from_params({**self.params, **overrides})

    def test_subclasses_the_base_of_its_kind(self) -> None:
        _, base = KINDS[self.kind]
        if not issubclass(self.backend_class, base):
            broken(f"a {self.kind} backend subclasses {base.__name__}")
        if self.kind != self.backend_class.KIND:
            broken(f"KIND is {self.kind!r}", f"got {self.backend_class.KIND!r}")
        if not dataclasses.is_dataclass(self.backend_class):
            broken("parameters are dataclass fields: decorate the class with @dataclass")

    def test_registered_under_its_name(self) -> None:
        manager = get_plugin_manager()
        if manager.get_class(self.kind, self.name) is not self.backend_class:
            broken(f"{self.kind} {self.name!r} is registered as {self.backend_class.__name__}")
        if manager.name_of(self.backend_class) != self.name:
            broken(f"{self.backend_class.__name__} goes by the name {self.name!r}")

    def test_config_round_trips_through_json(self) -> None:
        backend = self.make()
        config = json.loads(json.dumps(backend.to_config()))
        if config["kind"] != self.kind or config["name"] != self.name:
            broken("a config names its kind and name", str(config))
        if type(backend).from_config(config) != backend:
            broken("a backend rebuilt from its JSON config equals the original", str(config))
        if KINDS[self.kind][1].from_config(config) != backend:
            broken("the base class of the kind rebuilds the backend from its config")

    def test_config_round_trips_through_yaml(self) -> None:
        backend = self.make()
        if type(backend).from_yaml(backend.to_yaml()) != backend:
            broken("a backend rebuilt from its YAML equals the original", backend.to_yaml())

    def test_unknown_parameter_is_named(self) -> None:
        with pytest.raises(ConfigError, match="no_such_parameter"):
            self.backend_class.from_params({**self.params, "no_such_parameter": 1})

    def test_wrongly_typed_parameters_are_refused(self) -> None:
        hints = typing.get_type_hints(self.backend_class)
        checked = 0
        for f in dataclasses.fields(self.backend_class):  # type: ignore[arg-type]
            if hints.get(f.name, Any) is Any:
                continue
            try:
                self.make(**{f.name: {"not", "a", "valid", "value"}})
            except ConfigError as error:
                if f.name not in str(error):
                    broken(f"a wrongly typed {f.name!r} is refused naming it", str(error))
            else:
                broken(f"a wrongly typed {f.name!r} (a set) is refused on construction")
            checked += 1
        if not checked:
            pytest.skip(f"{self.backend_class.__qualname__} has no typed parameters")

    def test_bad_parameters_are_refused_with_a_clear_error(self) -> None:
        fields = dataclasses.fields(self.backend_class)  # type: ignore[arg-type]
        if not self.bad_params:
            if not fields:
                return  # nothing to validate; unknown parameters are tested above
            broken(
                "a backend with parameters validates them: declare bad_params",
                f"{self.backend_class.__qualname__} has parameters "
                f"{[f.name for f in fields]}; list values a user could write that it must "
                "refuse, e.g. bad_params = [({'region': 'mars'}, 'region')]",
            )
        for overrides, expected_text in self.bad_params:
            try:
                self.make(**overrides)
            except ConfigError as error:
                if expected_text not in str(error):
                    broken(
                        f"bad parameters {overrides} are refused naming {expected_text!r}",
                        str(error),
                    )
            else:
                broken(f"bad parameters {overrides} are refused on construction (validate())")

    def test_importing_the_backend_is_light(self) -> None:
        module = self.backend_class.__module__
        heavy = heavy_modules_imported(f"import {module}")
        if heavy:
            broken(f"importing {module} is light", f"it imports {heavy}: import them where used")

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
        if names.get(self.name) != f"{cls.__module__}.{cls.__qualname__}":
            broken(f"`zenml backends {self.kind}` lists {self.name!r}", result.stdout)


#: The user's own steps: a module in the project folder, importable here but installed nowhere,
#: so only a run that ships the code package (or runs in this process) can import it.
USER_STEPS = """
import os
import time

from zenml_core import step


@step
def user_numbers(count: int = 5) -> list:
    return list(range(count))


@step(kind="training")
def user_mean(values: list, pause: float = 0.0) -> dict:
    time.sleep(pause)
    return {"mean": sum(values) / len(values), "pid": os.getpid()}
"""


@dataclasses.dataclass
class ConformanceProject:
    folder: Path
    steps: Any  # the user's step module


class _RunsWork:
    """Fixtures of the suites that run pipelines through the backend."""

    backend_class: ClassVar[type[BaseComponent]]
    run_params: ClassVar[dict[str, Any] | None] = None

    @pytest.fixture
    def conformance_run_params(self) -> dict[str, Any]:
        """Parameters for the conformance runs; override this fixture when they come from
        other fixtures (an emulator's address)."""
        return self.run_params or {}

    @pytest.fixture
    def conformance_stores(self) -> dict[str, Any]:
        """``metadata_store``/``artifact_store`` for the conformance runs (default: the
        project's). A remote orchestrator overrides this with stores its workload reaches."""
        return {}

    @pytest.fixture
    def conformance_project(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[ConformanceProject]:
        """A fresh project as the working directory, with the user's own steps in it and the
        probe backends (``zenml_core.testing.probes``) registered here and for runs elsewhere."""
        import importlib

        from zenml_core.repository import init
        from zenml_core.testing import probes

        monkeypatch.chdir(tmp_path)
        init(tmp_path)
        module = f"conformance_steps_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(USER_STEPS))
        monkeypatch.syspath_prepend(str(tmp_path))
        modules = [m for m in os.environ.get(ENV_MODULES, "").split(",") if m.strip()]
        monkeypatch.setenv(ENV_MODULES, ",".join([*modules, probes.__name__]))
        manager = get_plugin_manager()
        registered = not any(p.module == probes.__name__ for p in manager.plugins())
        if registered:
            manager.register(probes, name="conformance-probes")
        try:
            yield ConformanceProject(tmp_path, importlib.import_module(module))
        finally:
            if registered:
                manager.unregister("conformance-probes")
            sys.modules.pop(module, None)

    def _run(self, pipeline: Any, what: str, **kwargs: Any) -> Any:
        try:
            return pipeline.run(**kwargs)
        except Exception as error:  # whatever broke, the failure names the promise
            broken(what, f"the run failed: {type(error).__name__}: {error}")

    def _run_failing(self, pipeline: Any, what: str, **kwargs: Any) -> Any:
        """The record of a run that must fail with ``StepFailedError``; None if it failed
        before anything was recorded."""
        try:
            result = pipeline.run(**kwargs)
        except StepFailedError as error:
            return None if error.result is None else _recorded(error.result)
        broken(what, f"run() returned status {result.status!r}")

    def _check_in_process(self, result: Any, step: str) -> None:
        if getattr(self.backend_class, "RUNS_IN_PROCESS", False) and (
            result.load(step)["pid"] != os.getpid()
        ):
            broken(
                "RUNS_IN_PROCESS = True means the steps run in this very process",
                "a step ran in another process: set RUNS_IN_PROCESS = False (the run then "
                "gets a code package)",
            )


def _tiny_pipeline(name: str) -> Any:
    from zenml_core.pipeline import Pipeline
    from zenml_core.testing.steps import mean_and_pid, numbers

    pipeline = Pipeline(name)
    values = pipeline.add_step(numbers(count=5))
    pipeline.add_step(mean_and_pid(values=values))
    return pipeline


class OrchestratorConformance(_RunsWork, BackendConformance):
    """Also runs pipelines through the orchestrator: to the end, the user's own steps on their
    own backends, and a failing step. Remote orchestrators point ``run_params`` (default:
    ``params``) at their loopback emulators."""

    kind = "orchestrator"

    def test_runs_a_pipeline_and_records_it(
        self,
        conformance_project: ConformanceProject,
        conformance_run_params: dict[str, Any],
        conformance_stores: dict[str, Any],
    ) -> None:
        orchestrator = self.make(**conformance_run_params)
        result = self._run(
            _tiny_pipeline("conformance"),
            "a pipeline runs to the end",
            backend=orchestrator,
            **conformance_stores,
        )
        if result.status != "completed":
            broken(
                "run() waits for the run by default and returns it completed",
                f"it returned status {result.status!r}",
            )
        run = _recorded(result)
        if run.status != "completed":
            broken(
                "run() returns only once the run has ended (waiting is the default)",
                f"the metadata store still says {run.status!r}: {_states(run)}",
            )
        if _states(run) != [("numbers", "completed"), ("mean_and_pid", "completed")]:
            broken("every step of the run is recorded completed", str(_states(run)))
        if run.orchestrator != self.name:
            broken(f"the run is recorded as run by {self.name!r}", f"got {run.orchestrator!r}")
        if result.load("mean_and_pid")["mean"] != 2.0:
            broken("the outputs of the run are the steps' results")
        again = _tiny_pipeline("conformance").run(backend=orchestrator, **conformance_stores)
        if {s.state for s in again.steps.values()} != {"cached"}:
            broken(
                "a second identical run is served from the cache",
                str({n: s.state for n, s in again.steps.items()}),
            )

    def test_runs_the_users_steps_on_their_own_backends_and_waits(
        self,
        conformance_project: ConformanceProject,
        conformance_run_params: dict[str, Any],
        conformance_stores: dict[str, Any],
    ) -> None:
        from zenml_core.pipeline import Pipeline
        from zenml_core.testing.probes import ProbeProcessingBackend, ProbeTrainingBackend

        steps = conformance_project.steps
        pipeline = Pipeline("conformance-user-steps")
        values = pipeline.add_step(steps.user_numbers().with_backend(ProbeProcessingBackend()))
        pipeline.add_step(
            steps.user_mean(values=values, pause=1.0).with_backend(ProbeTrainingBackend())
        )
        result = self._run(
            pipeline,
            "the user's own steps run: they live in the project folder, installed nowhere, so "
            "a backend that runs them in another process must ship the code package "
            "(RUNS_IN_PROCESS = False)",
            backend=self.make(**conformance_run_params),
            **conformance_stores,
        )
        run = _recorded(result)
        if result.status != "completed" or run.status != "completed":
            broken(
                "run() returns only once the run has ended (waiting is the default)",
                f"it returned {result.status!r}; the metadata store says {run.status!r}: "
                f"{_states(run)}",
            )
        recorded = {s.step: s.backend for s in run.steps}
        expected = {
            "user_numbers": "processing:conformance-probe",
            "user_mean": "training:conformance-probe",
        }
        if recorded != expected:
            broken(
                "each step runs on its own processing or training backend, never silently on "
                "the local one",
                f"recorded {recorded}, expected {expected}",
            )
        self._check_in_process(result, "user_mean")

    def test_a_failing_step_fails_the_run(
        self,
        conformance_project: ConformanceProject,
        conformance_run_params: dict[str, Any],
        conformance_stores: dict[str, Any],
    ) -> None:
        from zenml_core.pipeline import Pipeline
        from zenml_core.testing.steps import FAILURE, fails, numbers

        pipeline = Pipeline("conformance-failing")
        pipeline.add_step(fails(values=pipeline.add_step(numbers())))
        run = self._run_failing(
            pipeline,
            "a run in which a step failed raises StepFailedError (waiting is the default), "
            "never reports success or 'submitted'",
            backend=self.make(**conformance_run_params),
            **conformance_stores,
        )
        if run is None:
            return  # failed before the run was recorded: nothing more to check
        states = dict(_states(run))
        if run.status != "failed" or states.get("fails") != "failed":
            broken("a failed step and its run are recorded failed", f"{run.status}: {states}")
        failed = next(s for s in run.steps if s.step == "fails")
        if FAILURE not in failed.error:
            broken("the failed step's record keeps the step's own error", repr(failed.error))


class ProcessingBackendConformance(BackendConformance):
    kind = "processing"

    def test_gives_beam_arguments_naming_a_runner(self) -> None:
        args = self.make().beam_args(job_name="conformance-job")  # type: ignore[attr-defined]
        if not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
            broken("beam_args returns a list of strings", repr(args))
        if not any(a.startswith("--runner=") for a in args):
            broken("beam_args names the runner explicitly (--runner=...)", repr(args))


class TrainingBackendConformance(_RunsWork, BackendConformance):
    """Also runs the user's own training step through the backend, and a failing one."""

    kind = "training"

    def _pipeline(self, name: str, trainer: Any, values_step: Any, params: dict[str, Any]) -> Any:
        from zenml_core.pipeline import Pipeline

        pipeline = Pipeline(name)
        values = pipeline.add_step(values_step)
        pipeline.add_step(trainer(values=values).with_backend(self.make(**params)))
        return pipeline

    def test_runs_a_training_step(
        self,
        conformance_project: ConformanceProject,
        conformance_run_params: dict[str, Any],
        conformance_stores: dict[str, Any],
    ) -> None:
        steps = conformance_project.steps
        pipeline = self._pipeline(
            "conformance-training",
            lambda values: steps.user_mean(values=values, pause=1.0),
            steps.user_numbers(),
            conformance_run_params,
        )
        result = self._run(
            pipeline,
            "the user's own training step runs: it lives in the project folder, installed "
            "nowhere, so a backend that runs it in another process must ship the code package "
            "(RUNS_IN_PROCESS = False) and return only once the step ended",
            **conformance_stores,
        )
        if result.load("user_mean")["mean"] != 2.0:
            broken("the training step's output is its result")
        run = _recorded(result)
        trainer = next(s for s in run.steps if s.step == "user_mean")
        if trainer.state != "completed" or trainer.backend != f"training:{self.name}":
            broken(
                f"the step is recorded completed on training:{self.name}",
                f"{trainer.state} on {trainer.backend}",
            )
        if trainer.inputs["values"].id != run.steps[0].outputs["output"].id:
            broken("the step's input is recorded as the upstream step's output")
        self._check_in_process(result, "user_mean")

    def test_a_failing_training_step_fails_with_its_error(
        self,
        conformance_project: ConformanceProject,
        conformance_run_params: dict[str, Any],
        conformance_stores: dict[str, Any],
    ) -> None:
        from zenml_core.testing.steps import FAILURE, fails_training, numbers

        pipeline = self._pipeline(
            "conformance-training-fails", fails_training, numbers(), conformance_run_params
        )
        run = self._run_failing(
            pipeline,
            "a failing training step fails the run with StepFailedError",
            **conformance_stores,
        )
        if run is None:
            return  # failed before the run was recorded: nothing more to check
        trainer = next(s for s in run.steps if s.step == "fails_training")
        if trainer.state != "failed" or FAILURE not in trainer.error:
            broken(
                "a failing training step is recorded failed with the step's own error",
                f"{trainer.state}: {trainer.error!r}",
            )


class PluginConformance:
    """Checks of a plugin distribution as installed: found, compatible, loaded, light."""

    distribution: ClassVar[str]
    #: kind -> names the plugin must provide
    backends: ClassVar[dict[str, list[str]]] = {}
    #: seconds its entry module may take to import in a fresh interpreter
    import_limit_s: ClassVar[float] = DEFAULT_IMPORT_LIMIT_S

    def _info(self) -> Any:
        manager = PluginManager()  # a fresh scan of what is installed, not a cached one
        found = [p for p in manager.plugins() if p.distribution == self.distribution]
        if not found:
            broken(f"{self.distribution} is found through the zenml_core.plugins entry points")
        return found

    def test_found_and_loaded_without_errors(self) -> None:
        for info in self._info():
            if info.status != LOADED:
                broken(f"{info.label} loads without errors", "; ".join(info.errors))
            if info.refused:
                broken(f"{info.label} registers no name zenml-core provides", str(info.refused))

    def test_provides_its_backends(self) -> None:
        provided: dict[str, set[str]] = {}
        for info in self._info():
            for kind, names in info.backends.items():
                provided.setdefault(kind, set()).update(names)
        expected = {kind: set(names) for kind, names in self.backends.items()}
        if provided != expected:
            broken(f"{self.distribution} provides {expected}", f"it provides {provided}")

    def test_importing_the_plugin_is_light(self) -> None:
        for info in self._info():
            module = info.module.split(":")[0]
            seconds, heavy = import_cost(module)
            if heavy:
                broken(
                    f"importing the entry module {module} is light",
                    f"it imports {heavy}: import them inside the functions that need them",
                )
            if seconds > self.import_limit_s:
                broken(
                    f"importing the entry module {module} is quick",
                    f"it took {seconds:.2f} s in a fresh interpreter (limit "
                    f"{self.import_limit_s:g} s); every zenml command pays for it",
                )
