"""The remote-run layer's driver, through the docs' subprocess backend (real processes on this
machine): how remote work ending badly is mapped, recorded and raised, retries, deadlines."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from doc_blocks import plugins_doc_file

from zenml_core import Pipeline
from zenml_core.backends.remote import (
    Failure,
    FailureKind,
    InfrastructureFailure,
    JobState,
    JobStatus,
    RemoteDriver,
    TransientError,
    WaitPolicy,
)
from zenml_core.exceptions import StepFailedError

USER_STEPS = """
import time
from zenml_core import step

@step
def numbers(n: int = 4) -> list:
    return list(range(n))

@step
def crash(x: list) -> int:
    import os
    print("about to crash hard", flush=True)
    os._exit(3)  # no Python error, nothing recorded: only the exit code says what happened

@step
def sleepy(x: list, seconds: float = 120) -> int:
    print("sleeping", flush=True)
    time.sleep(seconds)
    return 0
"""


@pytest.fixture
def acme(project, zenml_plugins, tmp_path):
    """The docs' example module, registered in-process; user steps only in the project."""
    path = tmp_path / "acme_subprocess.py"
    path.write_text(plugins_doc_file("acme_subprocess.py"))
    spec = importlib.util.spec_from_file_location("acme_subprocess", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    zenml_plugins.register(module, name="acme")
    (project / "user_steps.py").write_text(textwrap.dedent(USER_STEPS))
    sys.path.insert(0, str(project))
    yield module
    sys.path.remove(str(project))
    sys.modules.pop("user_steps", None)


def _pipeline(name, tail, **params):
    import user_steps

    pipeline = Pipeline(name)
    numbers = pipeline.add_step(user_steps.numbers())
    pipeline.add_step(getattr(user_steps, tail)(x=numbers, **params))
    return pipeline


def test_a_process_that_dies_is_an_exit_code_failure_with_its_last_words(acme):
    with pytest.raises(InfrastructureFailure) as caught:
        _pipeline("acme-crash", "crash").run(backend=acme.SubprocessOrchestrator())
    assert caught.value.kind == FailureKind.EXIT_CODE
    assert "exited with code 3" in str(caught.value)
    assert "about to crash hard" in str(caught.value)  # the tail of its output
    result = caught.value.result
    run = result.metadata_store.get_run(result.run_id)
    assert run.status == "failed" and run.failure == "exit_code"
    crash = next(s for s in run.steps if s.step == "crash")
    assert crash.state == "failed" and "exited with code 3" in crash.error  # not left running


def test_per_step_a_dead_step_process_fails_that_step(acme):
    from zenml_core.exceptions import StepFailedError

    with pytest.raises(StepFailedError, match="exited with code 3; its last output") as caught:
        _pipeline("acme-crash-steps", "crash").run(
            backend=acme.SubprocessOrchestrator(per_step=True)
        )
    assert {n: s.state for n, s in caught.value.result.steps.items()} == {
        "numbers": "completed",
        "crash": "failed",
    }


def test_work_past_its_deadline_is_stopped_and_recorded(acme, zenml_plugins):
    from zenml_core import hookimpl

    platforms = []

    class Watched(acme.SubprocessPlatform):
        def __init__(self):
            super().__init__()
            platforms.append(self)

    @dataclass
    class Hasty(acme.SubprocessOrchestrator):
        def platform(self):
            return Watched()

        def workload(self, request, command, step):
            workload = super().workload(request, command, step)
            workload.deadline_seconds = 1
            return workload

        def wait_policy(self):
            return WaitPolicy(poll_seconds=0.2, deadline_grace=0)

    class Plugin:
        @hookimpl
        def register_orchestrators(self, register):
            register("hasty", Hasty)

    zenml_plugins.register(Plugin(), name="hasty")
    with pytest.raises(InfrastructureFailure, match="past its deadline of 1 s") as caught:
        _pipeline("acme-deadline", "sleepy").run(backend=Hasty())
    assert caught.value.kind == FailureKind.DEADLINE_EXCEEDED
    (platform,) = platforms
    assert platform.jobs == {}  # cleaned up
    run = caught.value.result.metadata_store.get_run(caught.value.result.run_id)
    assert run.failure == "deadline_exceeded"


def test_transient_errors_are_retried_and_others_are_not(acme):
    calls = []

    class Flaky(acme.SubprocessPlatform):
        def submit(self, workload):
            calls.append(workload.name)
            if len(calls) < 3:
                raise TransientError("429 Too Many Requests")
            return super().submit(workload)

    driver = RemoteDriver(Flaky(), WaitPolicy(poll_seconds=0.1))
    assert driver._call(lambda: "ok") == "ok"
    job = driver._submit(acme._workload("w", [sys.executable, "-c", "print(1)"]), {})
    assert len(calls) == 3 and driver._wait_for(job) is None

    class Refusing(acme.SubprocessPlatform):
        def submit(self, workload):
            calls.append("refused")
            raise InfrastructureFailure(FailureKind.QUOTA, "Quota 'CPUS' exceeded")

    with pytest.raises(InfrastructureFailure, match="Quota"):
        RemoteDriver(Refusing(), WaitPolicy(poll_seconds=0.1))._submit(
            acme._workload("w", ["true"]), {}
        )
    assert calls.count("refused") == 1


def _orchestrator(acme, zenml_plugins, name, platform_class, **fields):
    from zenml_core import hookimpl

    @dataclass
    class Orchestrator(acme.SubprocessOrchestrator):
        def platform(self):
            return platform_class()

        def wait_policy(self):
            return WaitPolicy(poll_seconds=0.1)

    for key, value in fields.items():
        setattr(Orchestrator, key, value)

    class Plugin:
        @hookimpl
        def register_orchestrators(self, register):
            register(name, Orchestrator)

    zenml_plugins.register(Plugin(), name=name)
    return Orchestrator()


def test_work_whose_platform_never_says_it_ended_ends_by_its_run_s_record(acme, zenml_plugins):
    class LikeAVM(acme.SubprocessPlatform):
        """Says RUNNING after its work exited 0, as a VM does after its container; a
        non-zero exit it reports (a VM's script says so on the serial port)."""

        ends_by_record = True

        def poll(self, job):
            status = super().poll(job)
            return JobStatus(JobState.RUNNING) if status.state == JobState.SUCCEEDED else status

        def cancel(self, job):
            self.jobs[job][0].kill()

    backend = _orchestrator(acme, zenml_plugins, "vm-like", LikeAVM)
    result = _pipeline("acme-record", "sleepy", seconds=0).run(backend=backend)
    assert result.status == "completed"
    with pytest.raises(StepFailedError, match="exited with code 3"):
        _pipeline("acme-record-fails", "crash").run(backend=backend)


def test_preempted_work_is_run_again_as_a_new_attempt_resuming_from_the_cache(acme, zenml_plugins):
    submitted = []

    class Preempting(acme.SubprocessPlatform):
        """Takes the first job back once its run has started its second step."""

        def poll(self, job):
            status = super().poll(job)
            if len(submitted) == 1 and status.state == JobState.RUNNING:
                log = Path(self.jobs[job][1]).read_text()
                if "sleeping" in log:
                    self.jobs[job][0].kill()
                    return JobStatus(
                        JobState.FAILED, Failure(FailureKind.PREEMPTED, f"{job} was preempted")
                    )
            return status

        def submit(self, workload):
            submitted.append(" ".join(workload.command))
            return super().submit(workload)

    backend = _orchestrator(acme, zenml_plugins, "spot", Preempting, preemption_retries=1)
    result = _pipeline("acme-preempted", "sleepy", seconds=3).run(backend=backend)
    assert result.status == "completed" and result.run_id.endswith("-attempt2")
    first_id = result.run_id.removesuffix("-attempt2")
    assert len(submitted) == 2 and f"/{first_id}/" in submitted[0]
    assert f"/{result.run_id}/" in submitted[1]
    store = result.metadata_store
    first = store.get_run(first_id)
    assert first.status == "failed" and first.failure == "preempted"
    assert f"retried as run {result.run_id}" in first.error
    states = {s.step: s.state for s in store.get_run(result.run_id).steps}
    assert states == {"numbers": "cached", "sleepy": "completed"}

    submitted.clear()
    backend = _orchestrator(acme, zenml_plugins, "spot-once", Preempting, preemption_retries=0)
    with pytest.raises(InfrastructureFailure, match="preempted") as caught:
        _pipeline("acme-preempted-once", "sleepy", seconds=3).run(backend=backend)
    assert caught.value.kind == FailureKind.PREEMPTED and len(submitted) == 1
