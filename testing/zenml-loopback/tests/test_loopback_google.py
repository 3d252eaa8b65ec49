"""The loopback Compute Engine and Vertex AI, through the real google-cloud clients (REST):
what they run, what they report, and the faults they inject."""

from __future__ import annotations

import pytest
import yaml

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
def instances(cloud):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1

    return compute_v1.InstancesClient(
        credentials=AnonymousCredentials(), transport="rest", client_options=cloud.client_options()
    )


@pytest.fixture
def jobs(cloud):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1

    return aiplatform_v1.JobServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options=cloud.client_options()
    )


def _vm(name, script, preemptible=False, image=IMAGE):
    declaration = {"spec": {"containers": [{
        "image": image, "command": ["python"], "args": ["-c", script],
        "env": [{"name": "GREETING", "value": "hello"}],
    }], "restartPolicy": "Never"}}  # fmt: skip
    return {
        "name": name,
        "machine_type": f"zones/{ZONE}/machineTypes/e2-medium",
        "metadata": {
            "items": [{"key": "gce-container-declaration", "value": yaml.safe_dump(declaration)}]
        },
        "scheduling": {"preemptible": preemptible},
    }


def test_a_vm_runs_its_declared_container_and_terminates(instances):
    script = "import os; print(os.environ['GREETING'], 'from the VM')"
    operation = instances.insert(project=PROJECT, zone=ZONE, instance_resource=_vm("vm-ok", script))
    assert operation.name.startswith("operation-")
    wait_until(
        lambda: instances.get(project=PROJECT, zone=ZONE, instance="vm-ok").status == "TERMINATED"
    )
    serial = instances.get_serial_port_output(project=PROJECT, zone=ZONE, instance="vm-ok").contents
    assert serial.splitlines() == ["hello from the VM", "loopback-gce: workload exited with code 0"]
    listed = [i.name for i in instances.list(project=PROJECT, zone=ZONE)]
    assert listed == ["vm-ok"]
    instances.delete(project=PROJECT, zone=ZONE, instance="vm-ok")
    assert [i.name for i in instances.list(project=PROJECT, zone=ZONE)] == []


def test_a_preempted_vm_is_terminated_and_says_so(cloud, instances):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1

    vm = _vm(
        "vm-spot", "import time; print('working', flush=True); time.sleep(60)", preemptible=True
    )
    instances.insert(project=PROJECT, zone=ZONE, instance_resource=vm)
    wait_until(
        lambda: (
            "working"
            in cloud.output(instances.get(project=PROJECT, zone=ZONE, instance="vm-spot").self_link)
        )
    )
    cloud.preempt(PROJECT, ZONE, "vm-spot")
    wait_until(
        lambda: instances.get(project=PROJECT, zone=ZONE, instance="vm-spot").status == "TERMINATED"
    )
    operations = compute_v1.ZoneOperationsClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=cloud.client_options(),
    ).list(project=PROJECT, zone=ZONE)
    assert "compute.instances.preempted" in [o.operation_type for o in operations]
    serial = instances.get_serial_port_output(
        project=PROJECT, zone=ZONE, instance="vm-spot"
    ).contents
    assert serial.endswith("workload exited with code 137\n")


def test_compute_errors_reach_the_client_as_its_own_exceptions(cloud, instances):
    from google.api_core import exceptions

    with pytest.raises(exceptions.NotFound):
        instances.get(project=PROJECT, zone=ZONE, instance="absent")
    cloud.fail_requests("POST", r"/instances$", 403)
    with pytest.raises(exceptions.Forbidden):
        instances.insert(project=PROJECT, zone=ZONE, instance_resource=_vm("vm-no", "pass"))
    assert [i.name for i in instances.list(project=PROJECT, zone=ZONE)] == []  # nothing made
    cloud.fail_requests("GET", r"/instances/vm-ok$", 429)
    instances.insert(project=PROJECT, zone=ZONE, instance_resource=_vm("vm-ok", "pass"))
    with pytest.raises(exceptions.TooManyRequests):
        instances.get(project=PROJECT, zone=ZONE, instance="vm-ok")
    assert instances.get(project=PROJECT, zone=ZONE, instance="vm-ok").name == "vm-ok"
    with pytest.raises(exceptions.Conflict):
        instances.insert(project=PROJECT, zone=ZONE, instance_resource=_vm("vm-ok", "pass"))


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
    error = jobs.get_custom_job(name=job.name).error
    assert "exited with a non-zero status of 4" in error.message


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
    assert "Unable to pull image" in jobs.get_custom_job(name=job.name).error.message


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
