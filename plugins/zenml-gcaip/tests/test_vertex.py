"""VertexTrainingBackend through the real google-cloud-aiplatform, logging and secret-manager
clients against the loopback Vertex AI: the custom job really runs the trainer step (a container
of our image in the e2e session, a subprocess otherwise), its output lands in the GCS emulator
and its execution in MariaDB."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from zenml_core import Pipeline
from zenml_core.exceptions import ConfigError, StepFailedError
from zenml_core.testing import terminal_sigint, wait_until
from zenml_gcaip.training import VertexTrainingBackend

CREATE = r"/customJobs$"


def _pipeline(name: str, backend: VertexTrainingBackend, trainer: str = "train_mean", **params):
    import user_steps

    pipeline = Pipeline(name)
    numbers = pipeline.add_step(user_steps.numbers(n=5))
    pipeline.add_step(getattr(user_steps, trainer)(x=numbers, **params).with_backend(backend))
    return pipeline


def _posted_jobs(cloud) -> list[dict]:
    return [b for m, p, b in cloud.requests() if m == "POST" and p.endswith("/customJobs")]


def _step(stores, pipeline: str, step: str):
    store = stores["metadata_store"]
    (run,) = store.list_runs(pipeline)
    return next(s for s in store.get_run(run.run_id).steps if s.step == step)


def test_the_trainer_step_runs_as_a_custom_job_with_logs_and_gs_outputs(
    project, stores, vertex_params, loopback_google, capsys
):
    backend = VertexTrainingBackend(**vertex_params, labels={"team": "ml"}, timeout_seconds=600)
    result = _pipeline("vertex-e2e", backend).run(**stores)
    assert result.status == "completed"
    trained = result.load("train_mean")
    assert trained["mean"] == 2.0 and trained["job"]  # computed inside the custom job
    (job,) = _posted_jobs(loopback_google)
    spec = job["jobSpec"]
    (pool,) = spec["workerPoolSpecs"]
    command = pool["containerSpec"]["command"]
    command = command[command.index("--") + 1 :]  # after the secrets' reader
    assert command[:5] == ["python", "-m", "zenml_core", "step", "--spec"]
    assert command[5].startswith(stores["artifact_store"])
    assert pool["machineSpec"] == {"machineType": "n1-standard-4"}
    assert spec["scheduling"]["timeout"] == "600s"
    assert spec["baseOutputDirectory"]["outputUriPrefix"] == vertex_params["job_dir"]
    assert job["labels"]["team"] == "ml" and job["labels"]["zenml-step"] == "train_mean"
    record = _step(stores, "vertex-e2e", "train_mean")
    assert record.state == "completed" and record.backend == "training:gcaip"
    assert all(a.uri.startswith(stores["artifact_store"]) for a in record.outputs.values())
    out = capsys.readouterr().out
    assert "training on 5 values" in out  # the job's own output, through Cloud Logging
    assert "console.cloud.google.com/vertex-ai" in out
    assert "FutureWarning" not in out  # google.api_core's Python-version notice is not shown


def test_the_metadata_password_reaches_the_job_only_through_secret_manager(
    project, stores, vertex_params, loopback_google, capsys
):
    canary = stores["metadata_store"].password
    assert canary and len(canary) >= 16
    result = _pipeline("vertex-secret", VertexTrainingBackend(**vertex_params)).run(**stores)
    assert result.status == "completed"  # the job did log in to MariaDB with it
    (job,) = _posted_jobs(loopback_google)
    assert canary not in json.dumps(job)
    command = job["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["command"]
    assert command[:3] == ["python", "-m", "zenml_gcp.secrets"]
    reference = command[command.index("--secret") + 1]
    assert reference.startswith("ZENML_MYSQL_PASSWORD=projects/zenml-test/secrets/zenml-")
    assert not loopback_google.secrets  # deleted once the step ended
    captured = capsys.readouterr()
    assert canary not in captured.out + captured.err


def test_a_failing_trainer_shows_its_error_and_logs(project, stores, vertex_params):
    backend = VertexTrainingBackend(**vertex_params)
    with pytest.raises(StepFailedError):
        _pipeline("vertex-fails", backend, "train_boom").run(**stores)
    record = _step(stores, "vertex-fails", "train_boom")
    assert record.state == "failed"
    assert "the trainer failed on purpose" in record.error


def test_vertex_s_late_error_is_waited_for(project, stores, vertex_params, loopback_google):
    loopback_google.vertex_error_delay = 4.0
    loopback_google.inject_vertex_fault("stockout")
    with pytest.raises(StepFailedError) as raised:
        _pipeline("vertex-late", VertexTrainingBackend(**vertex_params)).run(**stores)
    error = raised.value
    assert "Resources are insufficient in region: europe-west4" in str(error)
    assert "retry later, choose another region" in str(error)
    assert "failed without a reason" not in str(error)


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("quota-at-create", "429 RESOURCE_EXHAUSTED"),
        ("quota", "request more in the console"),
        ("stockout", "Resources are insufficient"),
    ],
)
def test_quota_and_stockout_are_told_apart(
    project, stores, vertex_params, loopback_google, fault, words
):
    loopback_google.inject_vertex_fault(fault)
    with pytest.raises(StepFailedError) as raised:
        _pipeline(f"vertex-{fault}", VertexTrainingBackend(**vertex_params)).run(**stores)
    assert words in str(raised.value)
    record = _step(stores, f"vertex-{fault}", "train_mean")
    assert record.state == "failed" and words in record.error


def test_a_job_past_its_timeout_fails_as_a_deadline(project, stores, vertex_params):
    backend = VertexTrainingBackend(**vertex_params, timeout_seconds=1)
    with pytest.raises(StepFailedError) as raised:
        _pipeline("vertex-timeout", backend, seconds=120.0).run(**stores)
    assert "timeout" in str(raised.value) and "raise timeout_seconds=1" in str(raised.value)


def test_bad_pairs_are_refused_before_any_request(loopback_google):
    for params in (
        {"machine_type": "e2-standard-4", "accelerator_type": "NVIDIA_TESLA_A100",
         "accelerator_count": 3},
        {"accelerator_type": "NVIDIA_TESLA_T4"},
        {"machine_type": "n1-standard-4", "accelerator_type": "NVIDIA_L4", "accelerator_count": 1},
    ):  # fmt: skip
        with pytest.raises(ConfigError):
            VertexTrainingBackend(
                project="zenml-test", region="europe-west4", job_dir="gs://b/v",
                api_endpoint=loopback_google.url, **params,
            )  # fmt: skip
    assert loopback_google.requests() == []


def test_machine_local_stores_are_refused_before_any_request(
    project, vertex_params, loopback_google
):
    with pytest.raises(ConfigError, match="cannot reach its stores"):
        _pipeline("vertex-local", VertexTrainingBackend(**vertex_params)).run()
    assert _posted_jobs(loopback_google) == []


def test_ctrl_c_cancels_the_job_and_waits_for_cancelled(
    project, stores, vertex_params, loopback_google
):
    store = stores["metadata_store"]
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(project)!r})
        import user_steps
        from zenml_core import Pipeline
        from zenml_core.metadata import MySQLMetadataStore
        from zenml_gcaip.training import VertexTrainingBackend

        pipeline = Pipeline("vertex-interrupted")
        numbers = pipeline.add_step(user_steps.numbers(n=5))
        backend = VertexTrainingBackend(**{vertex_params!r})
        pipeline.add_step(user_steps.train_mean(x=numbers, seconds=300.0).with_backend(backend))
        store = MySQLMetadataStore(
            host={store.host!r}, port={store.port}, database={store.database!r},
            username={store.username!r}, password={store.password!r})
        pipeline.run(artifact_store={stores["artifact_store"]!r}, metadata_store=store)
    """)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(project)}
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=project, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=terminal_sigint,
    )  # fmt: skip
    try:
        jobs = loopback_google.custom_jobs
        wait_until(
            lambda: (
                any(j["state"] == "JOB_STATE_RUNNING" for j in jobs.values())
                and "training on" in "".join(loopback_google.output(n) for n in jobs)
            ),
            timeout=180,
        )
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    (job,) = loopback_google.custom_jobs.values()
    assert job["state"] == "JOB_STATE_CANCELLED"
    assert "is CANCELLED" in output  # it waited for the end, not just asked
    record = _step(stores, "vertex-interrupted", "train_mean")
    assert record.state == "failed" and "interrupted" in record.error
