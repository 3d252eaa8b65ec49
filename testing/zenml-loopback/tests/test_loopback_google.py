"""The loopback Vertex AI, Cloud Logging and Secret Manager, through the real google-cloud
clients (REST): what they run, what they report, and the faults they inject."""

from __future__ import annotations

import re

import pytest

from zenml_core.testing import wait_until
from zenml_loopback.google import LoopbackGoogleCloud
from zenml_loopback.workloads import SubprocessRunner

IMAGE = "loopback/test:1"
PROJECT, ZONE, REGION = "p", "europe-west1-b", "europe-west1"


@pytest.fixture
def cloud(monkeypatch):
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    with LoopbackGoogleCloud(SubprocessRunner([IMAGE])) as running:
        yield running


@pytest.fixture
def jobs(cloud):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1

    return aiplatform_v1.JobServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options=cloud.client_options()
    )


def _custom_job(script, image=IMAGE):
    return {
        "display_name": "train",
        "job_spec": {"worker_pool_specs": [{
            "machine_spec": {"machine_type": "n1-standard-4", "accelerator_type": "NVIDIA_TESLA_T4",
                             "accelerator_count": 1},
            "replica_count": 1,
            "container_spec": {"image_uri": image, "command": ["python", "-c", script],
                               "env": [{"name": "EPOCHS", "value": "3"}]},
        }]},
    }  # fmt: skip


def _job_state(jobs, name):
    from google.cloud.aiplatform_v1 import JobState

    return JobState(jobs.get_custom_job(name=name).state)


def test_a_custom_job_runs_its_container_and_succeeds(cloud, jobs):
    from google.cloud.aiplatform_v1 import JobState

    script = "import os; print('epochs', os.environ['EPOCHS'])"
    job = jobs.create_custom_job(
        parent=f"projects/{PROJECT}/locations/{REGION}", custom_job=_custom_job(script)
    )
    assert job.name.startswith(f"projects/{PROJECT}/locations/{REGION}/customJobs/")
    wait_until(lambda: _job_state(jobs, job.name) == JobState.JOB_STATE_SUCCEEDED)
    assert cloud.output(job.name) == "epochs 3\n"
    spec = jobs.get_custom_job(name=job.name).job_spec.worker_pool_specs[0]
    assert spec.machine_spec.accelerator_count == 1  # the request arrived whole


def test_a_failing_custom_job_reports_vertex_s_message(jobs):
    from google.cloud.aiplatform_v1 import JobState

    job = jobs.create_custom_job(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        custom_job=_custom_job("raise SystemExit(4)"),
    )
    wait_until(lambda: _job_state(jobs, job.name) == JobState.JOB_STATE_FAILED)
    # Vertex writes the error after the state: a client must read again
    wait_until(lambda: jobs.get_custom_job(name=job.name).error.message)
    error = jobs.get_custom_job(name=job.name).error
    assert "The replica workerpool0-0 exited with a non-zero status of 4" in error.message


def test_a_cancelled_custom_job_stops_its_container(cloud, jobs):
    from google.cloud.aiplatform_v1 import JobState

    job = jobs.create_custom_job(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        custom_job=_custom_job("import time; print('started', flush=True); time.sleep(60)"),
    )
    wait_until(lambda: "started" in cloud.output(job.name))
    assert _job_state(jobs, job.name) == JobState.JOB_STATE_RUNNING
    jobs.cancel_custom_job(name=job.name)
    wait_until(lambda: _job_state(jobs, job.name) == JobState.JOB_STATE_CANCELLED, timeout=10)


def test_an_image_that_cannot_be_pulled_fails_the_job(jobs):
    from google.cloud.aiplatform_v1 import JobState

    job = jobs.create_custom_job(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        custom_job=_custom_job("pass", image="europe-docker.pkg.dev/x/missing:1"),
    )
    wait_until(lambda: _job_state(jobs, job.name) == JobState.JOB_STATE_FAILED)
    wait_until(lambda: "Unable to pull image" in jobs.get_custom_job(name=job.name).error.message)


def test_vertex_errors_reach_the_client_as_its_own_exceptions(cloud, jobs):
    from google.api_core import exceptions

    cloud.fail_requests("POST", r"/customJobs$", 500)
    with pytest.raises(exceptions.InternalServerError):
        jobs.create_custom_job(
            parent=f"projects/{PROJECT}/locations/{REGION}", custom_job=_custom_job("pass")
        )
    with pytest.raises(exceptions.NotFound):
        jobs.get_custom_job(name=f"projects/{PROJECT}/locations/{REGION}/customJobs/1")
    assert [m for m, p, _ in cloud.requests()] == ["POST", "GET"]


# -- Vertex AI as strict as the real one ------------------------------------------------------


def _pool(machine="n1-standard-4", accelerator=None, count=None, replicas=1, script="pass"):
    machine_spec = {"machine_type": machine}
    if accelerator is not None:
        machine_spec["accelerator_type"] = accelerator
    if count is not None:
        machine_spec["accelerator_count"] = count
    return {
        "machine_spec": machine_spec,
        "replica_count": replicas,
        "container_spec": {"image_uri": IMAGE, "command": ["python", "-c", script]},
    }


@pytest.mark.parametrize(
    ("pool", "words"),
    [
        (_pool("e2-standard-4", "NVIDIA_TESLA_A100", 3), 'not supported for machine type "e2'),
        (_pool("n1-standard-4", "NVIDIA_TESLA_K80", 1), '"NVIDIA_TESLA_K80" is not supported'),
        (_pool("a2-highgpu-1g", "NVIDIA_TESLA_A100", 3), "valid counts: [1]"),
        (_pool("n1-standard-4", "NVIDIA_TESLA_T4"), "must be set together"),
        (_pool("n1-standard-4", count=2), "must be set together"),
        (_pool("g2-standard-8"), "requires 1 accelerator"),
        (_pool("n1-standard-4", replicas=2), "must be 1 for the primary replica pool"),
        (_pool("super-machine-9"), 'Machine type "super-machine-9" is not supported'),
        ({"replica_count": 1, "container_spec": {"image_uri": IMAGE}}, "machine_type must be"),
    ],
)
def test_specs_vertex_refuses_are_refused_with_its_words(cloud, jobs, pool, words):
    from google.api_core import exceptions

    body = {"display_name": "bad", "job_spec": {"worker_pool_specs": [pool]}}
    with pytest.raises(exceptions.BadRequest, match=re.escape(words)):
        jobs.create_custom_job(parent=f"projects/{PROJECT}/locations/{REGION}", custom_job=body)
    assert not cloud.custom_jobs


def test_valid_accelerator_pairs_are_accepted(jobs):
    for pool in (
        _pool("n1-standard-8", "NVIDIA_TESLA_V100", 8),
        _pool("a2-highgpu-4g", "NVIDIA_TESLA_A100", 4),
        _pool("a3-highgpu-8g", "NVIDIA_H100_80GB", 8),
        _pool("g2-standard-48", "NVIDIA_L4", 4),
    ):
        body = {"display_name": "ok", "job_spec": {"worker_pool_specs": [pool]}}
        jobs.create_custom_job(parent=f"projects/{PROJECT}/locations/{REGION}", custom_job=body)


def test_the_timeout_is_enforced(cloud, jobs):
    from google.cloud.aiplatform_v1 import JobState

    body = {"display_name": "slow", "job_spec": {
        "worker_pool_specs": [_pool(script="import time; print('up', flush=True); time.sleep(60)")],
        "scheduling": {"timeout": "1s"},
    }}  # fmt: skip
    job = jobs.create_custom_job(parent=f"projects/{PROJECT}/locations/{REGION}", custom_job=body)
    wait_until(lambda: _job_state(jobs, job.name) == JobState.JOB_STATE_FAILED, timeout=30)
    wait_until(lambda: jobs.get_custom_job(name=job.name).error.code == 4)
    assert "timeout" in jobs.get_custom_job(name=job.name).error.message
    assert all(e.done.is_set() for k, e in cloud._executions.items() if k.startswith(job.name))


def test_every_pool_and_replica_runs_with_its_cluster_spec(cloud, jobs):
    import json

    from google.cloud.aiplatform_v1 import JobState

    script = (
        "import json, os; c = json.loads(os.environ['CLUSTER_SPEC']); "
        "t = json.loads(os.environ['TF_CONFIG']); "
        "print(json.dumps([c['task'], t['task'], sorted(t['cluster']), "
        "os.environ['AIP_MODEL_DIR'], os.environ['CLOUD_ML_JOB_ID']]))"
    )
    body = {"display_name": "cluster", "job_spec": {
        "worker_pool_specs": [_pool(script=script), _pool(replicas=2, script=script)],
        "base_output_directory": {"output_uri_prefix": "gs://b/out"},
    }}  # fmt: skip
    job = jobs.create_custom_job(parent=f"projects/{PROJECT}/locations/{REGION}", custom_job=body)
    wait_until(lambda: _job_state(jobs, job.name) == JobState.JOB_STATE_SUCCEEDED, timeout=60)
    seen = [json.loads(line) for line in cloud.output(job.name).splitlines()]
    job_id = job.name.rsplit("/", 1)[-1]
    assert sorted((c["type"], c["index"], t["type"]) for c, t, *_ in seen) == [
        ("workerpool0", 0, "chief"), ("workerpool1", 0, "worker"), ("workerpool1", 1, "worker")
    ]  # fmt: skip
    assert all(s[2] == ["chief", "worker"] and s[3] == "gs://b/out/model/" for s in seen)
    assert {s[4] for s in seen} == {job_id}


def test_a_failing_worker_fails_the_job_and_stops_the_others(cloud, jobs):
    from google.cloud.aiplatform_v1 import JobState

    body = {"display_name": "fails", "job_spec": {"worker_pool_specs": [
        _pool(script="import time; time.sleep(60)"), _pool(script="raise SystemExit(3)"),
    ]}}  # fmt: skip
    job = jobs.create_custom_job(parent=f"projects/{PROJECT}/locations/{REGION}", custom_job=body)
    wait_until(lambda: _job_state(jobs, job.name) == JobState.JOB_STATE_FAILED, timeout=30)
    wait_until(lambda: jobs.get_custom_job(name=job.name).error.message)
    assert (
        "workerpool1-0 exited with a non-zero status of 3"
        in jobs.get_custom_job(name=job.name).error.message
    )


@pytest.mark.parametrize(
    ("fault", "words"),
    [("quota", "exceed quota limits"), ("stockout", "Resources are insufficient in region")],
)
def test_quota_and_stockout_fail_the_job_with_code_8(cloud, jobs, fault, words):
    from google.cloud.aiplatform_v1 import JobState

    cloud.inject_vertex_fault(fault)
    job = jobs.create_custom_job(
        parent=f"projects/{PROJECT}/locations/{REGION}", custom_job=_custom_job("pass")
    )
    wait_until(lambda: _job_state(jobs, job.name) == JobState.JOB_STATE_FAILED)
    wait_until(lambda: jobs.get_custom_job(name=job.name).error.code == 8)
    assert words in jobs.get_custom_job(name=job.name).error.message
    assert cloud.output(job.name) == ""  # nothing ran


def test_quota_at_create_is_a_429(cloud, jobs):
    from google.api_core import exceptions

    cloud.inject_vertex_fault("quota-at-create")
    with pytest.raises(exceptions.TooManyRequests, match="quota"):
        jobs.create_custom_job(
            parent=f"projects/{PROJECT}/locations/{REGION}", custom_job=_custom_job("pass")
        )
    assert not cloud.custom_jobs


def test_an_ended_job_is_deleted_through_a_well_formed_operation(cloud, jobs):
    from google.api_core import exceptions
    from google.cloud.aiplatform_v1 import JobState

    job = jobs.create_custom_job(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        custom_job=_custom_job("import time; time.sleep(60)"),
    )
    with pytest.raises(exceptions.BadRequest, match="cannot be deleted"):
        jobs.delete_custom_job(name=job.name).result()
    jobs.cancel_custom_job(name=job.name)
    wait_until(lambda: _job_state(jobs, job.name) == JobState.JOB_STATE_CANCELLED)
    jobs.delete_custom_job(name=job.name).result(timeout=10)
    assert job.name not in cloud.custom_jobs


def test_the_job_s_logs_are_read_through_cloud_logging(cloud, jobs):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import logging as cloud_logging
    from google.cloud.aiplatform_v1 import JobState

    script = "for i in range(120): print('line', i)"
    job = jobs.create_custom_job(
        parent=f"projects/{PROJECT}/locations/{REGION}", custom_job=_custom_job(script)
    )
    wait_until(lambda: _job_state(jobs, job.name) == JobState.JOB_STATE_SUCCEEDED)
    client = cloud_logging.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        _use_grpc=False,
        client_options={"api_endpoint": cloud.url},
    )
    job_id = job.name.rsplit("/", 1)[-1]
    entries = list(client.list_entries(
        resource_names=[f"projects/{PROJECT}"],
        filter_=f'resource.type="ml_job" AND resource.labels.job_id="{job_id}"',
        page_size=50,
    ))  # fmt: skip
    assert [e.payload for e in entries] == [f"line {i}" for i in range(120)]  # all pages
    assert {e.resource.labels["task_name"] for e in entries} == {"workerpool0-0"}
    later = list(client.list_entries(
        resource_names=[f"projects/{PROJECT}"],
        filter_=(f'resource.type="ml_job" AND resource.labels.job_id="{job_id}" AND '
                 f'timestamp>"{entries[-1].timestamp.isoformat()}"'),
    ))  # fmt: skip
    assert later == []


def test_secret_manager_keeps_versions_and_forgets_deleted_secrets(cloud):
    from google.api_core import exceptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager_v1

    client = secretmanager_v1.SecretManagerServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options=cloud.client_options()
    )
    secret = client.create_secret(
        parent=f"projects/{PROJECT}",
        secret_id="db-password",
        secret={"replication": {"automatic": {}}, "labels": {"zenml-run": "r1"}},
    )
    with pytest.raises(exceptions.Conflict):
        client.create_secret(
            parent=f"projects/{PROJECT}", secret_id="db-password",
            secret={"replication": {"automatic": {}}},
        )  # fmt: skip
    version = client.add_secret_version(parent=secret.name, payload={"data": b"hunter2"})
    assert version.name == f"{secret.name}/versions/1"
    assert client.access_secret_version(name=version.name).payload.data == b"hunter2"
    latest = client.access_secret_version(name=f"{secret.name}/versions/latest")
    assert latest.payload.data == b"hunter2"
    client.delete_secret(name=secret.name)
    with pytest.raises(exceptions.NotFound):
        client.access_secret_version(name=version.name)


def test_replicas_of_a_multi_worker_job_listen_on_loopback_only(cloud, jobs):
    import json

    from google.cloud.aiplatform_v1 import JobState

    # as TensorFlow's collective server does: bind every interface, v4 and v6
    script = (
        "import json, socket; a = socket.socket(); a.bind(('0.0.0.0', 0)); "
        "b = socket.socket(socket.AF_INET6); b.bind(('::', 0)); "
        "print(json.dumps([a.getsockname()[0], b.getsockname()[0]]))"
    )
    body = {"display_name": "listeners", "job_spec": {
        "worker_pool_specs": [_pool(script=script), _pool(script=script)]}}  # fmt: skip
    job = jobs.create_custom_job(parent=f"projects/{PROJECT}/locations/{REGION}", custom_job=body)
    wait_until(lambda: _job_state(jobs, job.name) == JobState.JOB_STATE_SUCCEEDED, timeout=60)
    bound = [json.loads(line) for line in cloud.output(job.name).splitlines()]
    assert bound == [["127.0.0.1", "::ffff:127.0.0.1"]] * 2
