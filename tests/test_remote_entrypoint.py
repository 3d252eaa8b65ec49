"""A remote run is the local engine elsewhere: backends that hand the run spec to another
process (`python -m zenml_core run|step`), with the code shipped through the artifact store."""

from __future__ import annotations

import os
import sys
import textwrap
import zipfile

import pytest
import subprocess_backends

from zenml_core import Pipeline
from zenml_core.pipeline.code import ARCHIVE
from zenml_core.testing.conformance import OrchestratorConformance, TrainingBackendConformance

USER_STEPS = """
import os
from zenml_core import StepContext, step

@step
def numbers(n: int = 4) -> list:
    return list(range(n))

@step(kind="training")
def where(x: list) -> dict:
    return {"pid": os.getpid(), "mean": sum(x) / len(x)}

@step
def token_digest(x: list, context: StepContext) -> dict:
    import hashlib
    token = context.backend.resolved_token()
    return {"pid": os.getpid(), "sha256": hashlib.sha256(token.encode()).hexdigest()}
"""


@pytest.fixture
def remote_project(project, zenml_plugins, tmp_path_factory):
    """A project whose steps live in its own folder, which child processes cannot import."""
    (project / "user_steps.py").write_text(textwrap.dedent(USER_STEPS))
    (project / ".gitignore").write_text("secrets.txt\n")
    (project / "secrets.txt").write_text("never shipped")
    zenml_plugins.register(subprocess_backends, name="subprocess-backends")
    sys.path.insert(0, str(project))
    yield project, str(tmp_path_factory.mktemp("elsewhere"))
    sys.path.remove(str(project))
    sys.modules.pop("user_steps", None)


def test_the_whole_run_executes_in_another_process(remote_project):
    import user_steps

    project, elsewhere = remote_project
    orchestrator = subprocess_backends.SubprocessOrchestrator(elsewhere)
    pipeline = Pipeline("remote", backend=orchestrator)
    n = pipeline.add_step(user_steps.numbers(n=5))
    pipeline.add_step(user_steps.where(x=n))
    result = pipeline.run()
    assert result.status == "completed", orchestrator.last_output
    where = result.load("where")
    assert where["mean"] == 2.0 and where["pid"] != os.getpid()
    assert [s.state for s in result.steps.values()] == ["completed", "completed"]
    (package,) = (project / ".zenml" / "artifacts" / "code").iterdir()
    names = zipfile.ZipFile(package / ARCHIVE).namelist()
    assert "user_steps.py" in names and ".gitignore" in names
    assert "secrets.txt" not in names and not any(n.startswith(".zenml/") for n in names)
    # unchanged code is not uploaded again; the second run is cached in the child
    again = pipeline.run()
    assert {s.state for s in again.steps.values()} == {"cached"}, orchestrator.last_output
    assert len(list((project / ".zenml" / "artifacts" / "code").iterdir())) == 1


def test_a_training_step_runs_in_another_process(remote_project):
    import user_steps

    project, elsewhere = remote_project
    pipeline = Pipeline("remote-step")
    n = pipeline.add_step(user_steps.numbers(n=3))
    backend = subprocess_backends.SubprocessTrainingBackend(elsewhere)
    pipeline.add_step(user_steps.where(x=n).with_backend(backend))
    result = pipeline.run()
    assert result.steps["numbers"].state == "completed"
    where = result.load("where")
    assert where["mean"] == 1.0 and where["pid"] != os.getpid()
    from zenml_core.metadata import SQLiteMetadataStore

    run = SQLiteMetadataStore(str(project / ".zenml" / "metadata.db")).get_run(result.run_id)
    trainer = next(s for s in run.steps if s.step == "where")
    assert trainer.state == "completed" and trainer.backend == "training:subprocess"
    assert trainer.inputs["x"].id == result.steps["numbers"].outputs["output"].id


def test_a_step_failing_in_the_child_fails_the_run_with_its_error(remote_project):
    project, elsewhere = remote_project
    (project / "user_steps.py").write_text(
        textwrap.dedent(USER_STEPS) + "\n@step(kind='training')\ndef broken(x: list) -> int:\n"
        "    raise ValueError('bad data in child')\n"
    )
    import user_steps

    from zenml_core.exceptions import StepFailedError

    pipeline = Pipeline("remote-fail")
    n = pipeline.add_step(user_steps.numbers())
    backend = subprocess_backends.SubprocessTrainingBackend(elsewhere)
    pipeline.add_step(user_steps.broken(x=n).with_backend(backend))
    with pytest.raises(StepFailedError, match="ValueError: bad data in child"):
        pipeline.run()
    from zenml_core.metadata import SQLiteMetadataStore

    runs = SQLiteMetadataStore(str(project / ".zenml" / "metadata.db")).list_runs("remote-fail")
    run = SQLiteMetadataStore(str(project / ".zenml" / "metadata.db")).get_run(runs[0].run_id)
    broken = next(s for s in run.steps if s.step == "broken")
    assert broken.state == "failed" and "ValueError: bad data in child" in broken.error


class _Registered:
    @pytest.fixture(autouse=True)
    def _register(self, zenml_plugins):
        zenml_plugins.register(subprocess_backends, name="subprocess-backends")


class TestSubprocessOrchestratorConformance(_Registered, OrchestratorConformance):
    """A third-party-style orchestrator passes the same suite as the built-in one."""

    backend_class = subprocess_backends.SubprocessOrchestrator
    name = "subprocess"
    installed = False
    bad_params = [({"workdir": "relative/folder"}, "workdir")]


class TestSubprocessTrainingConformance(_Registered, TrainingBackendConformance):
    backend_class = subprocess_backends.SubprocessTrainingBackend
    name = "subprocess"
    installed = False
    bad_params = [({"workdir": "relative/folder"}, "workdir")]


def test_a_remote_run_that_fails_raises_like_a_local_one(remote_project):
    project, elsewhere = remote_project
    (project / "user_steps.py").write_text(
        textwrap.dedent(USER_STEPS) + "\n@step\ndef broken(x: list) -> int:\n"
        "    raise ValueError('bad data far away')\n"
    )
    import user_steps

    from zenml_core.exceptions import StepFailedError

    pipeline = Pipeline(
        "remote-run-fail", backend=subprocess_backends.SubprocessOrchestrator(elsewhere)
    )
    n = pipeline.add_step(user_steps.numbers())
    pipeline.add_step(user_steps.broken(x=n))
    with pytest.raises(StepFailedError, match="ValueError: bad data far away") as caught:
        pipeline.run()
    assert caught.value.result.steps["numbers"].state == "completed"
    assert caught.value.result.steps["broken"].state == "failed"


def test_a_step_backends_secret_reaches_the_remote_step_and_nowhere_else(remote_project, capfd):
    """``.with_backend(obj)`` with a secret: the remote process gets it through the secret
    environment; the spec, the metadata and the output never hold it."""
    import hashlib
    import secrets

    import user_steps

    project, elsewhere = remote_project
    canary = "canary-" + secrets.token_hex(16)
    orchestrator = subprocess_backends.SubprocessOrchestrator(elsewhere)
    pipeline = Pipeline("remote-secret", backend=orchestrator)
    n = pipeline.add_step(user_steps.numbers())
    backend = subprocess_backends.TokenProcessingBackend(token=canary)
    pipeline.add_step(user_steps.token_digest(x=n).with_backend(backend))
    result = pipeline.run()
    digest = result.load("token_digest")
    assert digest["pid"] != os.getpid(), "the step ran in another process"
    assert digest["sha256"] == hashlib.sha256(canary.encode()).hexdigest()
    captured = capfd.readouterr()
    assert canary not in captured.out + captured.err + orchestrator.last_output
    for path in (project / ".zenml").rglob("*"):  # metadata.db, the run spec, artifacts
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path


def test_command_names_the_interpreter_for_where_it_runs(project):
    from zenml_core.backends import Components, RunRequest, StepRequest
    from zenml_core.pipeline.spec import RunSpec

    spec = demo_pipeline_spec()
    request = RunRequest(RunSpec("r-1", spec), Components.of(spec))
    assert request.command("gs://b/spec")[:3] == ["python", "-m", "zenml_core"]  # the image's
    assert request.command("gs://b/spec", local=True)[0] == sys.executable  # this venv's
    step = StepRequest(request.spec, "numbers", 7, lambda: None, request)
    assert step.command("gs://b/spec", local=True)[0] == sys.executable
    assert step.command("gs://b/spec")[-4:] == ["--step", "numbers", "--execution-id", "7"]


def demo_pipeline_spec():
    from zenml_core.testing.conformance import _tiny_pipeline

    return _tiny_pipeline("interpreter").to_spec()
