"""The conformance suites fail broken backends, each with a message naming the broken promise.

Deliberately broken backends are built into a real plugin distribution, installed, and judged
by the suites in a pytest run of their own, exactly as their author would run them; a correct
backend from the same distribution passes every test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree

import pytest

from zenml_core.testing.plugin_factory import build_wheels, install_wheels, write_plugin_project

BACKENDS = '''
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

from zenml_core import hookimpl
from zenml_core.backends import BaseOrchestrator, BaseTrainingBackend, RunResult, State
from zenml_core.exceptions import ConfigError, StepFailedError


@dataclass
class Good(BaseOrchestrator):
    RUNS_IN_PROCESS = True
    region: str = "local"

    def validate(self):
        if not self.region:
            raise ConfigError("region must not be empty")

    def run(self, request):
        return request.execute()


class HidesFailure(Good):
    """Reports success for a run in which a step failed."""

    def run(self, request):
        try:
            return request.execute()
        except StepFailedError as error:
            error.result.status = State.COMPLETED
            return error.result


class SubmitsFailure(Good):
    """Reports 'submitted' for a run in which a step failed."""

    def run(self, request):
        try:
            return request.execute()
        except StepFailedError:
            return request.submitted()


class ReturnsEarly(Good):
    """Says the run completed while it still runs."""

    def run(self, request):
        threading.Thread(target=request.execute, daemon=True).start()
        components = request.components
        return RunResult(
            request.spec.run_id, request.spec.pipeline.name, State.COMPLETED, {},
            components.artifact_store, components.metadata_store,
        )


class DropsStepBackends(Good):
    """Runs every step on the run's own (local) backends, whatever the step asked for."""

    def run(self, request):
        request.step_backends.clear()
        for step in request.spec.pipeline.steps:
            step.backend = None
        return request.execute()


class RunsElsewhere(Good):
    """Says it runs in-process, but runs the run in another process, without the code."""

    def run(self, request):
        command = request.command(request.publish_spec(), local=True)
        with tempfile.TemporaryDirectory() as elsewhere:
            subprocess.run(command, cwd=elsewhere, capture_output=True, check=False)
        return request.result()


class Hangs(Good):
    def run(self, request):
        time.sleep(3600)


@dataclass
class Unvalidated(BaseOrchestrator):
    """Accepts any region at all."""

    RUNS_IN_PROCESS = True
    region: str = "local"

    def run(self, request):
        return request.execute()


@dataclass
class GoodTraining(BaseTrainingBackend):
    RUNS_IN_PROCESS = True

    def run_step(self, request):
        request.execute()


class TrainingReturnsEarly(GoodTraining):
    def run_step(self, request):
        threading.Thread(target=request.execute, daemon=True).start()


class TrainingHidesFailure(GoodTraining):
    def run_step(self, request):
        try:
            request.execute()
        except Exception:
            pass


ORCHESTRATORS = {
    "good": Good, "hides-failure": HidesFailure, "submits-failure": SubmitsFailure,
    "returns-early": ReturnsEarly, "drops-step-backends": DropsStepBackends,
    "runs-elsewhere": RunsElsewhere, "hangs": Hangs, "unvalidated": Unvalidated,
}
TRAINING = {
    "good-training": GoodTraining, "training-returns-early": TrainingReturnsEarly,
    "training-hides-failure": TrainingHidesFailure,
}


@hookimpl
def register_orchestrators(register):
    for name, cls in ORCHESTRATORS.items():
        register(name, cls)


@hookimpl
def register_training_backends(register):
    for name, cls in TRAINING.items():
        register(name, cls)
'''

SLEEPY = "import time\ntime.sleep(1.5)\n"
HEFTY = "import pandas  # noqa: F401\n"

SUITE_MODULE = """
from zenml_core.testing.conformance import {suite}
from zenml_broken.plugin import {cls}


class TestBackend({suite}):
    backend_class = {cls}
    name = {name!r}
{extra}
"""

PLUGIN_SUITE = """
from zenml_core.testing.conformance import PluginConformance


class TestDistribution(PluginConformance):
    distribution = {distribution!r}
    backends = {backends!r}
"""

BAD_REGION = "    bad_params = [({'region': ''}, 'region')]"

#: suite module -> (suite, class, name, extra class body, {failing test: text its message has})
CASES: dict[str, tuple[str, str, str, str, dict[str, str]]] = {
    "good": ("OrchestratorConformance", "Good", "good", BAD_REGION, {}),
    "hides_failure": (
        "OrchestratorConformance",
        "HidesFailure",
        "hides-failure",
        BAD_REGION,
        {"test_a_failing_step_fails_the_run": "a run in which a step failed raises"},
    ),
    "submits_failure": (
        "OrchestratorConformance",
        "SubmitsFailure",
        "submits-failure",
        BAD_REGION,
        {"test_a_failing_step_fails_the_run": "never reports success or 'submitted'"},
    ),
    "returns_early": (
        "OrchestratorConformance",
        "ReturnsEarly",
        "returns-early",
        BAD_REGION,
        {"test_runs_a_pipeline_and_records_it": "returns only once the run has ended"},
    ),
    "drops_step_backends": (
        "OrchestratorConformance",
        "DropsStepBackends",
        "drops-step-backends",
        BAD_REGION,
        {
            "test_runs_the_users_steps_on_their_own_backends_and_waits": (
                "each step runs on its own processing or training backend"
            )
        },
    ),
    "runs_elsewhere": (
        "OrchestratorConformance",
        "RunsElsewhere",
        "runs-elsewhere",
        BAD_REGION,
        {
            "test_runs_the_users_steps_on_their_own_backends_and_waits": (
                "must ship the code package"
            )
        },
    ),
    "hangs": (
        "OrchestratorConformance",
        "Hangs",
        "hangs",
        BAD_REGION + "\n    deadline_s = 3",
        {
            "test_runs_a_pipeline_and_records_it": "Timeout",
            "test_a_failing_step_fails_the_run": "Timeout",
        },
    ),
    "unvalidated": (
        "OrchestratorConformance",
        "Unvalidated",
        "unvalidated",
        "",
        {"test_bad_parameters_are_refused_with_a_clear_error": "declare bad_params"},
    ),
    "good_training": ("TrainingBackendConformance", "GoodTraining", "good-training", "", {}),
    "training_returns_early": (
        "TrainingBackendConformance",
        "TrainingReturnsEarly",
        "training-returns-early",
        "",
        {"test_runs_a_training_step": "return only once the step ended"},
    ),
    "training_hides_failure": (
        "TrainingBackendConformance",
        "TrainingHidesFailure",
        "training-hides-failure",
        "",
        {
            "test_a_failing_training_step_fails_with_its_error": (
                "recorded failed with the step's own error"
            )
        },
    ),
}
BROKEN_BACKENDS = {
    "orchestrator": [
        "good",
        "hides-failure",
        "submits-failure",
        "returns-early",
        "drops-step-backends",
        "runs-elsewhere",
        "hangs",
        "unvalidated",
    ],
    "training": ["good-training", "training-returns-early", "training-hides-failure"],
}
PROVIDES = {
    "zenml-broken": BROKEN_BACKENDS,
    "zenml-sleepy": {"orchestrator": ["sleepy"]},
    "zenml-hefty": {"orchestrator": ["hefty"]},
}
PLUGIN_CASES = {
    "zenml-broken": {},
    "zenml-sleepy": {"test_importing_the_plugin_is_light": "is quick"},
    "zenml-hefty": {"test_importing_the_plugin_is_light": "is light"},
}


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory) -> dict[str, dict[str, str | None]]:
    """Install the broken distributions, run the suites on them in a pytest of their own;
    module -> test -> failure message (None: passed)."""
    from zenml_core.testing.plugin_factory import orchestrator_plugin_source

    root = tmp_path_factory.mktemp("broken")
    projects = [
        write_plugin_project(root, "zenml-broken", BACKENDS),
        write_plugin_project(root, "zenml-sleepy", SLEEPY + orchestrator_plugin_source("sleepy")),
        write_plugin_project(root, "zenml-hefty", HEFTY + orchestrator_plugin_source("hefty")),
    ]
    build_wheels(projects, root / "wheels")
    wheels = {w.name.split("-")[0].replace("_", "-"): w for w in (root / "wheels").glob("*.whl")}
    # the backends' suites beside the broken backends alone (the slow plugins would make every
    # `zenml` command of theirs slow); the plugins' suites beside all three
    backends_site, plugins_site = root / "site-backends", root / "site-plugins"
    install_wheels([wheels["zenml-broken"]], backends_site)
    install_wheels(wheels.values(), plugins_site)
    backends, plugins = root / "backend-suites", root / "plugin-suites"
    backends.mkdir()
    plugins.mkdir()
    for module, (suite, cls, name, extra, _) in CASES.items():
        source = SUITE_MODULE.format(suite=suite, cls=cls, name=name, extra=extra)
        (backends / f"test_{module}.py").write_text(textwrap.dedent(source))
    for distribution in PLUGIN_CASES:
        source = PLUGIN_SUITE.format(distribution=distribution, backends=PROVIDES[distribution])
        (plugins / f"test_{distribution.replace('-', '_')}.py").write_text(source)
    reports, runs = [], []
    for suites, site in ((backends, backends_site), (plugins, plugins_site)):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
        env["PYTHONPATH"] = str(site)
        reports.append(suites / "report.xml")
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--junitxml=report.xml",
        ]
        runs.append(
            subprocess.Popen(
                command, cwd=suites, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
    for run in runs:  # side by side; each of their tests has its own deadline
        run.wait(timeout=1200)
    found: dict[str, dict[str, str | None]] = {}
    cases = [case for report in reports for case in ElementTree.parse(report).iter("testcase")]
    for case in cases:
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        message = None if problem is None else (problem.get("message") or "") + (problem.text or "")
        module = case.get("classname", "").split(".")[0].removeprefix("test_")
        found.setdefault(module, {})[case.get("name", "")] = message
    return found


@pytest.mark.parametrize("module", [*CASES, *(d.replace("-", "_") for d in PLUGIN_CASES)])
def test_the_suites_fail_a_broken_backend_naming_the_promise(verdicts, module):
    expected = CASES[module][4] if module in CASES else PLUGIN_CASES[module.replace("_", "-", 1)]
    results = verdicts[module]
    assert results, f"no test of the suite ran for {module}"
    for test, text in expected.items():
        message = results.get(test)
        assert message is not None, f"{module}: {test} passed a broken backend"
        assert text in message, f"{module}: {test} failed without naming the promise: {message}"
    failed = {test: message for test, message in results.items() if message is not None}
    if not expected:
        assert failed == {}, f"the suite fails a correct backend: {failed}"
    for test, message in failed.items():
        # every failure names a promise: a ConformanceFailure or the deadline, never a crash
        assert "conformance:" in message or "Timeout" in message, (module, test, message)


def test_the_suite_of_a_backend_without_parameters_needs_no_bad_params(verdicts):
    assert verdicts["good_training"]["test_bad_parameters_are_refused_with_a_clear_error"] is None


def test_the_plugin_module_of_the_broken_distribution_lists_every_case():
    """Keeps CASES and the broken backends in step: each class has a suite module."""
    for module, (_, cls, name, _, _) in CASES.items():
        assert f"class {cls}(" in BACKENDS and f'"{name}": {cls}' in BACKENDS, module
