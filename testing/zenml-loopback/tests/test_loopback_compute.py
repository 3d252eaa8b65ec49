"""The loopback Compute Engine through the real google-cloud-compute client (REST): each rule
where the real service would trip a buggy client (../shared/CLOUD-FACTS.md §1)."""

from __future__ import annotations

import json

import pytest

from zenml_core.testing import wait_until
from zenml_loopback.compute import SERIAL_WINDOW
from zenml_loopback.google import LoopbackGoogleCloud
from zenml_loopback.workloads import SubprocessRunner

IMAGE = "loopback/test:1"
PROJECT, ZONE = "p", "europe-west1-b"


@pytest.fixture
def cloud(monkeypatch):
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    with LoopbackGoogleCloud(SubprocessRunner([IMAGE])) as running:
        yield running


def _client(cloud, kind):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1

    return getattr(compute_v1, kind)(
        credentials=AnonymousCredentials(), transport="rest", client_options=cloud.client_options()
    )


@pytest.fixture
def instances(cloud):
    return _client(cloud, "InstancesClient")


@pytest.fixture
def operations(cloud):
    return _client(cloud, "ZoneOperationsClient")


def _vm(name, script=None, machine="e2-medium", scheduling=None, labels=None, **extra):
    items = [{"key": "zenml-spec", "value": "gs://b/runs/r1/spec"}]
    if script is not None:
        items.append({"key": "startup-script", "value": "#!/bin/bash\n" + script})
    return {
        "name": name,
        "machine_type": f"zones/{ZONE}/machineTypes/{machine}",
        "disks": [{"boot": True, "auto_delete": True, "initialize_params": {
            "source_image": "projects/cos-cloud/global/images/family/cos-stable"}}],
        "network_interfaces": [{"network": "global/networks/default"}],
        "metadata": {"items": items},
        "scheduling": scheduling or {},
        "labels": labels or {},
        **extra,
    }  # fmt: skip


def _status(instances, name):
    return instances.get(project=PROJECT, zone=ZONE, instance=name).status


def _serial(instances, name, start=0):
    return instances.get_serial_port_output(
        request={"project": PROJECT, "zone": ZONE, "instance": name, "start": start}
    )


def _op_state(operations, name):
    operation = operations.get(project=PROJECT, zone=ZONE, operation=name)
    return type(operation).Status(operation.status).name, operation


def _insert(instances, body):
    return instances.insert(project=PROJECT, zone=ZONE, instance_resource=body)


def test_the_startup_script_runs_docker_and_the_vm_stays_running_after_it(cloud, instances):
    declaration = "spec:\n  containers:\n  - image: loopback/test:1\n    command: [false]\n"
    body = _vm("vm-ok", (
        "echo booted on $HOSTNAME\n"
        f"docker run --rm --network host -e GREETING=hello {IMAGE} "
        "python -c 'import os; print(os.environ[\"GREETING\"], \"from the container\")'\n"
        "echo container exited $?\n"
    ))  # fmt: skip
    body["metadata"]["items"].append({"key": "gce-container-declaration", "value": declaration})
    _insert(instances, body)
    wait_until(lambda: "Finished running startup scripts" in _serial(instances, "vm-ok").contents)
    serial = _serial(instances, "vm-ok").contents
    payload = [ln.split("startup-script: ", 1)[1] for ln in serial.splitlines()
               if "startup-script: " in ln]  # fmt: skip
    assert payload == ["booted on vm-ok", "hello from the container", "container exited 0"]
    assert "exited with code" not in serial  # nothing the real serial port would not say
    assert _status(instances, "vm-ok") == "RUNNING"  # and billing, until somebody deletes it
    assert cloud.vm_containers(PROJECT, ZONE, "vm-ok") != []  # the script's docker run only


def test_docker_fails_as_the_real_cli_does(instances):
    _insert(instances, _vm("vm-docker", (
        "docker run --rm nowhere/img:1 true; echo pull=$?\n"
        f"docker run --frobnicate {IMAGE} true; echo flag=$?\n"
        f"docker run --gpus all {IMAGE} true; echo gpus=$?\n"
        f"docker run --device /dev/nvidia0 {IMAGE} true; echo device=$?\n"
        "cos-extensions install gpu; echo driver=$?\n"
    )))  # fmt: skip
    wait_until(lambda: "driver=" in _serial(instances, "vm-docker").contents)
    serial = _serial(instances, "vm-docker").contents
    assert "pull access denied for nowhere/img" in serial and "pull=125" in serial
    assert "unknown flag: --frobnicate" in serial and "flag=125" in serial
    assert 'could not select device driver "" with capabilities: [[gpu]]' in serial
    assert "gpus=125" in serial and "device=125" in serial
    assert "No GPU found" in serial and "driver=1" in serial


def test_a_gpu_vm_passes_devices_once_the_driver_is_installed(instances):
    body = _vm(
        "vm-gpu",
        (
            "cos-extensions install gpu; echo driver=$?\n"
            "mount --bind /var/lib/nvidia /var/lib/nvidia\n"
            "mount -o remount,exec /var/lib/nvidia\n"
            f"docker run --rm --device /dev/nvidia0 {IMAGE} python -c 'print(\"on the gpu\")'\n"
        ),
        machine="n1-standard-8",
        scheduling={"on_host_maintenance": "TERMINATE"},
        guest_accelerators=[
            {
                "accelerator_type": f"projects/{PROJECT}/zones/{ZONE}/"
                "acceleratorTypes/nvidia-tesla-t4",
                "accelerator_count": 1,
            }
        ],
    )
    _insert(instances, body)
    wait_until(lambda: "Finished running" in _serial(instances, "vm-gpu").contents)
    serial = _serial(instances, "vm-gpu").contents
    assert "driver=0" in serial and "on the gpu" in serial


@pytest.mark.parametrize("changes, words", [
    ({"machine": "n1-standard-8", "guest_accelerators": [{"accelerator_type":
        f"projects/{PROJECT}/zones/{ZONE}/acceleratorTypes/nvidia-tesla-t4",
        "accelerator_count": 1}]}, "do not support live migration"),
    ({"machine": "e2-standard-4", "scheduling": {"on_host_maintenance": "TERMINATE"},
      "guest_accelerators": [{"accelerator_type":
        f"projects/{PROJECT}/zones/{ZONE}/acceleratorTypes/nvidia-tesla-t4",
        "accelerator_count": 1}]}, "cannot be attached to machine type"),
    ({"machine": "g2-standard-8", "scheduling": {"on_host_maintenance": "TERMINATE"},
      "guest_accelerators": [{"accelerator_type":
        f"projects/{PROJECT}/zones/{ZONE}/acceleratorTypes/nvidia-l4",
        "accelerator_count": 1}]}, "comes with its own GPUs"),
    ({"machine": "g2-standard-8"}, "do not support live migration"),
    ({"machine": "n1-standard-8", "scheduling": {"on_host_maintenance": "TERMINATE"},
      "guest_accelerators": [{"accelerator_type":
        f"projects/{PROJECT}/zones/europe-west4-a/acceleratorTypes/nvidia-tesla-t4",
        "accelerator_count": 1}]}, "must be of zone"),
    ({"scheduling": {"provisioning_model": "SPOT"}}, "OnHostMaintenance"),
    ({"scheduling": {"max_run_duration": {"seconds": 60}}}, "instanceTerminationAction"),
    ({"machine": "e2-gigantic"}, "does not exist in zone"),
    ({"labels": {"Team": "x"}}, "resource.labels"),
])  # fmt: skip
def test_what_compute_engine_refuses_is_refused(instances, changes, words):
    from google.api_core import exceptions

    machine = changes.pop("machine", "e2-medium")
    with pytest.raises(exceptions.BadRequest, match=words):
        _insert(instances, _vm("vm-bad", machine=machine, **changes))
    assert list(instances.list(project=PROJECT, zone=ZONE)) == []


def test_operations_take_a_while_and_a_stockout_ends_done_with_errors(cloud, instances, operations):
    operation = _insert(instances, _vm("vm-slow"))
    assert _op_state(operations, operation.name)[0] == "RUNNING"
    wait_until(lambda: _op_state(operations, operation.name)[0] == "DONE")
    cloud.inject_compute_fault("stockout", zone=ZONE)
    failed = _insert(instances, _vm("vm-stockout"))
    wait_until(lambda: _op_state(operations, failed.name)[0] == "DONE")
    done = _op_state(operations, failed.name)[1]
    assert done.error.errors[0].code == "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"
    assert done.http_error_status_code == 503
    cloud.inject_compute_fault("stockout", http_status=False)  # only error.errors: the pinned
    quiet = _insert(instances, _vm("vm-stockout-2"))  # client's result() would not raise
    wait_until(lambda: _op_state(operations, quiet.name)[0] == "DONE")
    assert _op_state(operations, quiet.name)[1].http_error_status_code == 0
    assert {i.name for i in instances.list(project=PROJECT, zone=ZONE)} == {"vm-slow"}


def test_quota_is_a_synchronous_403_quota_exceeded(cloud, instances):
    from google.api_core import exceptions

    cloud.inject_compute_fault("gpu-quota")
    with pytest.raises(exceptions.Forbidden, match="GPUS_ALL_REGIONS") as raised:
        _insert(instances, _vm("vm-quota"))
    assert raised.value.errors[0]["reason"] == "quotaExceeded"
    assert list(instances.list(project=PROJECT, zone=ZONE)) == []


@pytest.mark.parametrize("action, after", [("DELETE", None), ("STOP", "TERMINATED")])
def test_a_preempted_spot_vm_takes_its_termination_action(
    cloud, instances, operations, action, after
):
    from google.api_core import exceptions

    scheduling = {"provisioning_model": "SPOT", "instance_termination_action": action,
                  "on_host_maintenance": "TERMINATE", "automatic_restart": False}  # fmt: skip
    metadata = "http://$GCE_METADATA_HOST/computeMetadata/v1/instance/preempted"
    script = (f"while true; do echo preempted=$(curl -sf -H 'Metadata-Flavor: Google' "
              f"{metadata}); sleep 0.1; done\n")  # fmt: skip
    _insert(instances, _vm("vm-spot", script, scheduling=scheduling))
    wait_until(lambda: "preempted=FALSE" in cloud.serial_output(PROJECT, ZONE, "vm-spot"))
    link = instances.get(project=PROJECT, zone=ZONE, instance="vm-spot").self_link
    cloud.preempt(PROJECT, ZONE, "vm-spot")
    wait_until(lambda: "preempted=TRUE" in cloud.serial_output(PROJECT, ZONE, "vm-spot")
               or not cloud.instances)  # fmt: skip
    if after is None:
        wait_until(lambda: not cloud.instances)
        with pytest.raises(exceptions.NotFound):
            instances.get(project=PROJECT, zone=ZONE, instance="vm-spot")
    else:
        wait_until(lambda: _status(instances, "vm-spot") == after)
    wanted = f'operationType="compute.instances.preempted" AND targetLink="{link}"'
    found = list(operations.list(request={"project": PROJECT, "zone": ZONE, "filter": wanted}))
    assert [o.target_link for o in found] == [link]
    other = wanted.replace("vm-spot", "vm-other")
    assert list(operations.list(request={"project": PROJECT, "zone": ZONE, "filter": other})) == []


def test_a_stopped_vm_starts_again_and_runs_its_script_again(cloud, instances, operations):
    _insert(instances, _vm("vm-again", "echo boot\n"))
    wait_until(
        lambda: cloud.serial_output(PROJECT, ZONE, "vm-again").count("startup-script: boot") == 1
    )
    stop = instances.stop(project=PROJECT, zone=ZONE, instance="vm-again")
    wait_until(lambda: _op_state(operations, stop.name)[0] == "DONE")
    assert _status(instances, "vm-again") == "TERMINATED"
    instances.start(project=PROJECT, zone=ZONE, instance="vm-again")
    wait_until(
        lambda: cloud.serial_output(PROJECT, ZONE, "vm-again").count("startup-script: boot") == 2
    )
    assert _status(instances, "vm-again") == "RUNNING"


def test_max_run_duration_fires_the_termination_action(cloud, instances):
    scheduling = {"instance_termination_action": "DELETE", "max_run_duration": {"seconds": 1}}
    _insert(instances, _vm("vm-capped", "sleep 300\n", scheduling=scheduling))
    wait_until(lambda: _status(instances, "vm-capped") == "RUNNING")
    wait_until(lambda: not cloud.instances, timeout=30)


def test_filters_apply_to_lists_and_aggregated_lists(instances):
    _insert(instances, _vm("vm-a", labels={"zenml-run": "r1"}))
    _insert(instances, _vm("vm-b", labels={"zenml-run": "r2"}))
    _insert(instances, _vm("vm-c"))

    def names(**request):
        return sorted(i.name for i in instances.list(request={"project": PROJECT, "zone": ZONE,
                                                                 **request}))  # fmt: skip

    assert names(filter='labels.zenml-run = "r1"') == ["vm-a"]
    assert names(filter="labels.zenml-run:*") == ["vm-a", "vm-b"]
    assert names(filter='labels.zenml-run != "r1"') == ["vm-b", "vm-c"]
    aggregated = instances.aggregated_list(request={"project": PROJECT,
                                                    "filter": "labels.zenml-run:*"})  # fmt: skip
    assert sorted(i.name for _, scoped in aggregated for i in scoped.instances) == ["vm-a", "vm-b"]


def test_the_serial_port_pages_with_start_and_next_over_a_1_mb_window(cloud, instances):
    lines = SERIAL_WINDOW // 1000 + 200  # more than the window holds, in lines of ~1 kB
    _insert(instances, _vm("vm-talky", (
        f"python3 -c 'import sys; [print(f\"{{i:06d}}\" + \"x\" * 990) for i in range({lines})]'\n"
        "echo the-end\n"
    )))  # fmt: skip
    wait_until(lambda: "the-end" in cloud.serial_output(PROJECT, ZONE, "vm-talky"), timeout=60)
    whole = _serial(instances, "vm-talky")
    assert int(whole.next_) > SERIAL_WINDOW and int(whole.start) > 0  # the oldest bytes are gone
    assert len(whole.contents.encode()) == SERIAL_WINDOW
    assert "000000xxx" not in whole.contents
    tail = _serial(instances, "vm-talky", start=int(whole.next_) - 100)
    assert tail.contents == whole.contents[-100:] and tail.next_ == whole.next_
    assert _serial(instances, "vm-talky", start=int(whole.next_)).contents == ""


def test_the_workload_reaches_the_metadata_server_and_secret_manager(cloud, instances):
    cloud.call(lambda: cloud.secrets.update({"projects/p/secrets/canary": {
        "secret": {"name": "projects/p/secrets/canary"},
        "versions": ["Y2FuYXJ5LXZhbHVl"]}}))  # fmt: skip
    program = (
        "import os, json, urllib.request\n"
        "from google.auth.credentials import AnonymousCredentials\n"
        "from google.api_core.client_options import ClientOptions\n"
        "from google.cloud import secretmanager_v1\n"
        "def md(path):\n"
        "    r = urllib.request.Request('http://' + os.environ['GCE_METADATA_HOST'] +\n"
        "        '/computeMetadata/v1/' + path, headers={'Metadata-Flavor': 'Google'})\n"
        "    return urllib.request.urlopen(r).read().decode()\n"
        "c = secretmanager_v1.SecretManagerServiceClient(credentials=AnonymousCredentials(),\n"
        "    transport='rest', client_options=ClientOptions(api_endpoint=os.environ['SM']))\n"
        "v = c.access_secret_version(name='projects/p/secrets/canary/versions/latest')\n"
        "print(json.dumps({'name': md('instance/name'), 'zone': md('instance/zone'),\n"
        "    'spec': md('instance/attributes/zenml-spec'), 'preempted': md('instance/preempted'),\n"
        "    'secret': v.payload.data.decode()}))\n"
    )
    (cloud_dir := cloud.url)
    _insert(instances, _vm("vm-md", (
        f"cat > /tmp/zenml-md-probe.py <<'PY'\n{program}PY\n"
        f"docker run --rm --network host -e SM={cloud_dir} {IMAGE} python /tmp/zenml-md-probe.py\n"
        "curl -s -o /dev/null -w 'no-header=%{http_code}\\n' "
        "http://$GCE_METADATA_HOST/computeMetadata/v1/instance/name\n"
    )))  # fmt: skip
    wait_until(lambda: "no-header=" in cloud.serial_output(PROJECT, ZONE, "vm-md"), timeout=60)
    serial = cloud.serial_output(PROJECT, ZONE, "vm-md")
    line = next(ln for ln in serial.splitlines() if '"name"' in ln).split("startup-script: ")[1]
    assert json.loads(line) == {"name": "vm-md", "zone": "projects/123456789/zones/" + ZONE,
                                "spec": "gs://b/runs/r1/spec", "preempted": "FALSE",
                                "secret": "canary-value"}  # fmt: skip
    assert "no-header=403" in serial


def test_a_deleted_vm_loses_its_serial_port_and_kills_its_container(cloud, instances, operations):
    from google.api_core import exceptions

    _insert(
        instances,
        _vm(
            "vm-del",
            f"docker run --rm {IMAGE} python -c "
            "'import time; print(\"container-is-up\", flush=True); time.sleep(300)'\n",
        ),
    )
    wait_until(lambda: "container-is-up" in cloud.serial_output(PROJECT, ZONE, "vm-del"))
    delete = instances.delete(project=PROJECT, zone=ZONE, instance="vm-del")
    wait_until(lambda: _op_state(operations, delete.name)[0] == "DONE")
    with pytest.raises(exceptions.NotFound):
        _serial(instances, "vm-del")
    wait_until(lambda: cloud.container_exit_codes()[-1] is not None)
    assert cloud.container_exit_codes()[-1] != 0  # killed with the VM


def test_compute_errors_reach_the_client_as_its_own_exceptions(cloud, instances):
    from google.api_core import exceptions

    with pytest.raises(exceptions.NotFound):
        instances.get(project=PROJECT, zone=ZONE, instance="absent")
    cloud.fail_requests("POST", r"/instances$", 403)
    with pytest.raises(exceptions.Forbidden):
        _insert(instances, _vm("vm-no"))
    assert list(instances.list(project=PROJECT, zone=ZONE)) == []  # nothing made
    cloud.fail_requests("GET", r"/instances/vm-ok$", 429)
    _insert(instances, _vm("vm-ok"))
    with pytest.raises(exceptions.TooManyRequests):
        instances.get(project=PROJECT, zone=ZONE, instance="vm-ok")
    assert instances.get(project=PROJECT, zone=ZONE, instance="vm-ok").name == "vm-ok"
    with pytest.raises(exceptions.Conflict):
        _insert(instances, _vm("vm-ok"))
