"""The loopback Compute Engine and Vertex AI run their workloads in containers of our image."""

from __future__ import annotations

from zenml_core.testing import wait_until
from zenml_loopback.fixtures import WORKLOAD_IMAGE


def test_a_custom_job_runs_in_a_container_of_our_image(loopback_google, monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1

    monkeypatch.setenv("NO_GCE_CHECK", "true")
    jobs = aiplatform_v1.JobServiceClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=loopback_google.client_options(),
    )
    script = "import sys, zenml_core; print(sys.executable, zenml_core.__version__)"
    job = jobs.create_custom_job(
        parent="projects/p/locations/europe-west1",
        custom_job={
            "display_name": "where",
            "job_spec": {"worker_pool_specs": [{
                "machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": 1,
                "container_spec": {
                    "image_uri": WORKLOAD_IMAGE, "command": ["python", "-c", script]
                },
            }]},
        },
    )  # fmt: skip
    wait_until(lambda: aiplatform_v1.JobState(jobs.get_custom_job(name=job.name).state).name
           == "JOB_STATE_SUCCEEDED", timeout=120)  # fmt: skip
    assert loopback_google.output(job.name).split()[0] == "/opt/zenml/bin/python"


def test_a_vm_s_startup_script_runs_our_image_and_preemption_kills_it(loopback_google, monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1

    monkeypatch.setenv("NO_GCE_CHECK", "true")
    instances = compute_v1.InstancesClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=loopback_google.client_options(),
    )
    program = "import sys, time; print('up in', sys.executable, flush=True); time.sleep(300)"
    script = f'#!/bin/bash\ndocker run --rm --network host {WORKLOAD_IMAGE} python -c "{program}"\n'
    instances.insert(
        project="p",
        zone="europe-west1-b",
        instance_resource={
            "name": "spot",
            "machine_type": "zones/europe-west1-b/machineTypes/e2-medium",
            "disks": [{"boot": True, "initialize_params": {
                "source_image": "projects/cos-cloud/global/images/family/cos-stable"}}],
            "network_interfaces": [{"network": "global/networks/default"}],
            "metadata": {"items": [{"key": "startup-script", "value": script}]},
            "scheduling": {"provisioning_model": "SPOT", "on_host_maintenance": "TERMINATE",
                           "instance_termination_action": "STOP"},
        },
    )  # fmt: skip
    wait_until(lambda: "up in" in loopback_google.serial_output("p", "europe-west1-b", "spot"),
               timeout=120)  # fmt: skip
    assert "up in /opt/zenml/bin/python" in loopback_google.serial_output(
        "p", "europe-west1-b", "spot"
    )
    loopback_google.preempt("p", "europe-west1-b", "spot")
    wait_until(
        lambda: (
            instances.get(project="p", zone="europe-west1-b", instance="spot").status
            == "TERMINATED"
        ),
        timeout=120,
    )
    wait_until(lambda: loopback_google.container_exit_codes()[-1] is not None, timeout=60)
    assert loopback_google.container_exit_codes()[-1] != 0  # killed with the VM
