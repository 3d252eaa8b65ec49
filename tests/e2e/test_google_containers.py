"""The loopback Compute Engine and Vertex AI run their workloads in containers of our image."""

from __future__ import annotations

import yaml

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


def test_a_preempted_vm_kills_its_container(loopback_google, monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1

    monkeypatch.setenv("NO_GCE_CHECK", "true")
    instances = compute_v1.InstancesClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=loopback_google.client_options(),
    )
    declaration = {"spec": {"containers": [{
        "image": WORKLOAD_IMAGE, "command": ["python", "-c"],
        "args": ["import time; print('up', flush=True); time.sleep(300)"],
    }]}}  # fmt: skip
    instances.insert(
        project="p",
        zone="europe-west1-b",
        instance_resource={
            "name": "spot",
            "metadata": {"items": [
                {"key": "gce-container-declaration", "value": yaml.safe_dump(declaration)}
            ]},
            "scheduling": {"preemptible": True},
        },
    )  # fmt: skip
    link = instances.get(project="p", zone="europe-west1-b", instance="spot").self_link
    wait_until(lambda: "up" in loopback_google.output(link), timeout=120)
    loopback_google.preempt("p", "europe-west1-b", "spot")
    wait_until(
        lambda: (
            instances.get(project="p", zone="europe-west1-b", instance="spot").status
            == "TERMINATED"
        ),
        timeout=120,
    )
    assert loopback_google.output(link).endswith("workload exited with code 137\n")
