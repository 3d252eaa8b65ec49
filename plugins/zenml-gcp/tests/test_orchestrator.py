"""OrchestratorGCPBackend through the real google-cloud-compute and secret-manager clients
against the loopback Compute Engine: the VM's startup script really runs the run's image (a
container of our image in the e2e session, a subprocess otherwise), artifacts land in the GCS
emulator and metadata in MariaDB."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from zenml_core import Pipeline
from zenml_core.backends.remote import InfrastructureFailure
from zenml_core.exceptions import ConfigError, StepFailedError
from zenml_core.testing import terminal_sigint, wait_until
from zenml_core.testing.conformance import OrchestratorConformance
from zenml_gcp.orchestrator import OrchestratorGCPBackend
from zenml_loopback.fixtures import WORKLOAD_IMAGE

PROJECT, ZONE, FALLBACK_ZONE = "zenml-test", "europe-west1-b", "europe-west1-c"  # as conftest
INSERT = r"/instances$"


class TestGCPOrchestrator(OrchestratorConformance):
    backend_class = OrchestratorGCPBackend
    name = "gcp"
    params = {"project": PROJECT, "zone": ZONE, "image": WORKLOAD_IMAGE}
    bad_params = [
        ({"project": "My Project"}, "project id"),
        ({"zone": "europe-west1"}, "not a Compute Engine zone"),
        ({"fallback_zones": ["nowhere"]}, "not a Compute Engine zone"),
        ({"machine_type": "huge"}, "machine type"),
        ({"image": "Trainer:1.0"}, "not a valid image reference"),
        (
            {"gpu_type": "nvidia-tesla-t4", "gpu_count": 1, "machine_type": "e2-standard-4"},
            "N1 machines only",
        ),
        ({"gpu_type": "nvidia-tesla-t4"}, "set together"),
        (
            {"gpu_type": "nvidia-l4", "gpu_count": 1, "machine_type": "g2-standard-8"},
            "comes with its own GPUs",
        ),
        (
            {"gpu_type": "nvidia-tesla-k80", "gpu_count": 1, "machine_type": "n1-standard-8"},
            "not a GPU",
        ),
        ({"labels": {"Team": "ml"}}, "not a Google Cloud label"),
        ({"env": {"DB_PASSWORD": "hunter2"}}, "Secret Manager"),
        ({"cloudsql_connection_name": "just-a-name"}, "PROJECT:REGION:INSTANCE"),
        ({"max_run_duration_seconds": 5}, "max_run_duration_seconds"),
        ({"boot_image": "cos-stable"}, "boot_image"),
        ({"scopes": ["cloud-platform"]}, "OAuth scope"),
        ({"self_delete_delay_seconds": -1}, "self_delete_delay_seconds"),
    ]

    @pytest.fixture
    def conformance_run_params(self, gcp_params):
        return gcp_params

    @pytest.fixture
    def conformance_stores(self, stores):
        return stores


def _pipeline(name: str, *tail: str, seconds: float = 0.0) -> Pipeline:
    import user_steps

    pipeline = Pipeline(name)
    numbers = pipeline.add_step(user_steps.numbers(n=5))
    for step_name in tail or ("slow_sum",):
        if step_name == "slow_sum":
            pipeline.add_step(user_steps.slow_sum(x=numbers, seconds=seconds))
        else:
            pipeline.add_step(getattr(user_steps, step_name)(x=numbers))
    return pipeline


def _inserted(cloud) -> list[dict]:
    return [b for m, p, b in cloud.requests() if m == "POST" and p.endswith("/instances")]


def _metadata(body: dict, key: str) -> str:
    return next(i["value"] for i in body["metadata"]["items"] if i["key"] == key)


def test_the_run_happens_on_the_vm_with_logs_streamed_and_gs_artifacts(
    project, stores, gcp_params, loopback_google, capsys
):
    backend = OrchestratorGCPBackend(
        **gcp_params, labels={"team": "ml"}, spot=True, cloud_logging=True
    )
    result = _pipeline("gcp-e2e").run(backend=backend, **stores)
    assert result.status == "completed" and result.load("slow_sum") == 10
    (body,) = _inserted(loopback_google)
    script = _metadata(body, "startup-script")
    assert "docker run --rm --network host" in script
    # the startup script is the only workload: no container declaration for a retired agent
    assert {i["key"] for i in body["metadata"]["items"]} == {"startup-script", "zenml-spec",
                                                               "zenml-run"}  # fmt: skip
    spec = _metadata(body, "zenml-spec")
    assert spec.startswith(stores["artifact_store"]) and spec in script
    assert body["scheduling"] == {
        "provisioningModel": "SPOT", "instanceTerminationAction": "DELETE",
        "maxRunDuration": {"seconds": "86400"}, "onHostMaintenance": "TERMINATE",
        "automaticRestart": False,
    }  # fmt: skip
    assert body["labels"]["team"] == "ml" and body["labels"]["zenml-run"]
    run = stores["metadata_store"].get_run(result.run_id)
    assert run.status == "completed" and run.orchestrator == "gcp"
    assert all(
        a.uri.startswith(stores["artifact_store"]) for s in run.steps for a in s.outputs.values()
    )
    out = capsys.readouterr().out
    assert "summing 5 numbers" in out, out  # printed on the VM, read from its serial port
    assert "startup-script:" not in out and "google_metadata_script_runner" not in out
    assert "console.cloud.google.com/compute/instancesDetail" in out
    assert "console.cloud.google.com/logs/query" in out  # its container logged there too
    wait_until(lambda: not loopback_google.instances, timeout=60)  # deleted, not left billing


def test_the_metadata_password_reaches_the_vm_only_through_secret_manager(
    project, stores, gcp_params, loopback_google, capsys
):
    password = stores["metadata_store"].password
    result = _pipeline("gcp-secret").run(backend=OrchestratorGCPBackend(**gcp_params), **stores)
    assert result.status == "completed"
    assert password not in capsys.readouterr().out  # nor in what the VM printed
    recorded = stores["metadata_store"].get_run(result.run_id)
    assert password not in str(vars(recorded))  # nor in the metadata
    (body,) = _inserted(loopback_google)
    assert password not in str(body)
    script = _metadata(body, "startup-script")
    assert "python -m zenml_gcp.secrets --secret ZENML_" in script
    every_request = str(loopback_google.requests())
    secret_requests = [r for r in loopback_google.requests() if "/secrets" in r[1]]
    assert password not in str([r for r in loopback_google.requests() if "/secrets" not in r[1]])
    assert any("addVersion" in r[1] for r in secret_requests) and every_request
    assert loopback_google.secrets == {}  # deleted once the run ended


def test_a_failing_step_fails_the_run_with_its_error_and_deletes_the_vm(
    project, stores, gcp_params, loopback_google
):
    with pytest.raises(StepFailedError, match="failed on purpose"):
        _pipeline("gcp-boom", "boom").run(backend=OrchestratorGCPBackend(**gcp_params), **stores)
    wait_until(lambda: not loopback_google.instances, timeout=60)


def test_an_image_that_cannot_be_pulled_fails_the_run_and_deletes_the_vm(
    project, stores, gcp_params, loopback_google
):
    backend = OrchestratorGCPBackend(**{**gcp_params, "image": "nowhere/none:1"})
    with pytest.raises(InfrastructureFailure, match="could not pull") as raised:
        _pipeline("gcp-pull").run(backend=backend, **stores)
    assert raised.value.kind == "image_pull"
    wait_until(lambda: not loopback_google.instances, timeout=60)


def test_a_preempted_vm_is_retried_on_a_new_vm_resuming_from_the_cache(
    project, stores, gcp_params, loopback_google
):
    import user_steps

    backend = OrchestratorGCPBackend(**gcp_params, spot=True, preemption_retries=1)
    pipeline = Pipeline("gcp-preempted")
    numbers = pipeline.add_step(user_steps.numbers(n=5))
    pipeline.add_step(user_steps.slow_sum(x=numbers, seconds=8.0))
    store = stores["metadata_store"]

    def preempt_first_vm_once_summing() -> None:
        def summing() -> bool:
            for (p, z, name), _ in list(loopback_google.instances.items()):
                if "summing" in loopback_google.serial_output(p, z, name):
                    loopback_google.preempt(p, z, name)
                    return True
            return False

        wait_until(summing, timeout=180)

    import threading

    preempter = threading.Thread(target=preempt_first_vm_once_summing, daemon=True)
    preempter.start()
    result = pipeline.run(backend=backend, **stores)
    preempter.join(timeout=5)
    assert result.status == "completed" and result.load("slow_sum") == 10
    assert result.run_id.endswith("-attempt2")
    runs = {r.run_id: store.get_run(r.run_id) for r in store.list_runs("gcp-preempted")}
    (first,) = [r for r in runs.values() if not r.run_id.endswith("-attempt2")]
    assert first.status == "failed" and first.failure == "preempted"
    assert f"retried as run {result.run_id}" in first.error
    second = runs[result.run_id]
    states = {s.step: s.state for s in second.steps}
    assert states == {"numbers": "cached", "slow_sum": "completed"}  # only the cut step re-ran
    assert len(_inserted(loopback_google)) == 2


def test_a_stockout_in_the_first_zone_moves_to_the_fallback_zone(
    project, stores, gcp_params, loopback_google, capsys
):
    loopback_google.inject_compute_fault("stockout", zone=ZONE, http_status=False)
    backend = OrchestratorGCPBackend(**gcp_params, fallback_zones=[FALLBACK_ZONE])
    result = _pipeline("gcp-stockout").run(backend=backend, **stores)
    assert result.status == "completed"
    zones = [p.split("/zones/")[1].split("/")[0] for m, p, _ in loopback_google.requests()
             if m == "POST" and p.endswith("/instances")]  # fmt: skip
    assert zones == [ZONE, FALLBACK_ZONE]
    assert "ZONE_RESOURCE_POOL_EXHAUSTED" in capsys.readouterr().out


def test_a_stockout_everywhere_is_a_stockout_failure(project, stores, gcp_params, loopback_google):
    loopback_google.inject_compute_fault("stockout", times=2)
    backend = OrchestratorGCPBackend(**gcp_params, fallback_zones=[FALLBACK_ZONE])
    with pytest.raises(InfrastructureFailure, match="No zone had") as raised:
        _pipeline("gcp-stockout-all").run(backend=backend, **stores)
    assert raised.value.kind == "stockout"
    assert loopback_google.instances == {}


@pytest.mark.parametrize("fault, words", [("quota", "Quota 'CPUS'"),
                                          ("gpu-quota", "GPUS_ALL_REGIONS")])  # fmt: skip
def test_quota_is_a_clear_error_and_nothing_is_created(
    project, stores, gcp_params, loopback_google, fault, words
):
    loopback_google.inject_compute_fault(fault)
    with pytest.raises(InfrastructureFailure, match=words) as raised:
        _pipeline("gcp-quota").run(backend=OrchestratorGCPBackend(**gcp_params), **stores)
    assert raised.value.kind == "quota" and "Request more quota" in str(raised.value)
    assert loopback_google.instances == {} and loopback_google.secrets == {}
    (run,) = stores["metadata_store"].list_runs("gcp-quota")
    assert stores["metadata_store"].get_run(run.run_id).failure == "quota"


def test_machine_local_stores_are_refused_before_any_request(project, gcp_params, loopback_google):
    with pytest.raises(ConfigError, match="cannot reach its stores"):
        _pipeline("gcp-local").run(backend=OrchestratorGCPBackend(**gcp_params))
    assert _inserted(loopback_google) == []


def test_missing_credentials_name_the_gcloud_command(project, stores, monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "none.json"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    backend = OrchestratorGCPBackend(project=PROJECT, zone=ZONE, image=WORKLOAD_IMAGE)
    with pytest.raises(ConfigError, match="`gcloud auth application-default login`"):
        _pipeline("gcp-creds").run(backend=backend, **stores)


def test_cloud_sql_needs_the_store_on_127_0_0_1_before_any_request(
    project, stores, gcp_params, loopback_google
):
    store = stores["metadata_store"]
    store.host = "db.example.com"
    backend = OrchestratorGCPBackend(**gcp_params, cloudsql_connection_name="p:europe-west1:db")
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1"):
        _pipeline("gcp-sql").run(backend=backend, **stores)
    assert _inserted(loopback_google) == []


def test_the_startup_script_runs_the_cloud_sql_proxy_and_the_gpu_driver(gcp_params):
    from zenml_core.backends.remote import Workload
    from zenml_gcp.vm import startup_script

    backend = OrchestratorGCPBackend(
        **gcp_params, machine_type="n1-standard-8", gpu_type="nvidia-tesla-t4", gpu_count=2,
        cloudsql_connection_name="my-project:europe-west1:zenml", cloud_logging=True,
    )  # fmt: skip
    workload = Workload("vm", "img:1", ["python", "-m", "zenml_core", "run", "--spec", "gs://b/s"])
    workload.env = {"GREETING": "hello world; rm -rf /"}
    script = startup_script(backend, workload)
    assert "'--env=GREETING=hello world; rm -rf /'" in script  # one quoted word
    assert "--log-driver=gcplogs" in script
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)  # it parses
    l4s = OrchestratorGCPBackend(**gcp_params, machine_type="g2-standard-48")  # carries 4 L4s
    assert "--device=/dev/nvidia3" in startup_script(l4s, workload)
    proxy = script.index("cloud-sql-proxy:2.")
    run = script.index("docker run --rm --network host --name zenml-run")
    assert script.index("cos-extensions install gpu") < proxy < run
    assert "--address 127.0.0.1 --port 3306 my-project:europe-west1:zenml" in script
    assert "--device=/dev/nvidia1" in script and "--gpus" not in script
    body = backend.instance(workload, ZONE)
    assert body["guestAccelerators"] == [{
        "acceleratorType": f"projects/{PROJECT}/zones/{ZONE}/acceleratorTypes/nvidia-tesla-t4",
        "acceleratorCount": 2}]  # fmt: skip
    assert body["scheduling"]["onHostMaintenance"] == "TERMINATE"


def _interrupted_run(project, stores, gcp_params, name: str, signal_number: int):
    store = stores["metadata_store"]
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(project)!r})
        import user_steps
        from zenml_core import Pipeline
        from zenml_core.metadata import MySQLMetadataStore
        from zenml_gcp.orchestrator import OrchestratorGCPBackend

        pipeline = Pipeline({name!r})
        numbers = pipeline.add_step(user_steps.numbers(n=5))
        pipeline.add_step(user_steps.slow_sum(x=numbers, seconds=300.0))
        store = MySQLMetadataStore(
            host={store.host!r}, port={store.port}, database={store.database!r},
            username={store.username!r}, password={store.password!r})
        pipeline.run(backend=OrchestratorGCPBackend(**{gcp_params!r}),
                     artifact_store={stores["artifact_store"]!r}, metadata_store=store)
    """)  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", script], cwd=project, env={**os.environ, "PYTHONPATH": str(project)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=terminal_sigint,
    )  # fmt: skip


def _wait_summing(cloud) -> None:
    def summing() -> bool:
        return any("summing" in cloud.serial_output(*key) for key in list(cloud.instances))

    wait_until(summing, timeout=180)


def test_ctrl_c_deletes_the_vm_and_records_the_interruption(
    project, stores, gcp_params, loopback_google
):
    process = _interrupted_run(project, stores, gcp_params, "gcp-interrupted", signal.SIGINT)
    try:
        _wait_summing(loopback_google)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert loopback_google.instances == {}, output
    (run,) = stores["metadata_store"].list_runs("gcp-interrupted")
    recorded = stores["metadata_store"].get_run(run.run_id)
    assert recorded.status == "failed" and recorded.failure == "interrupted"


def test_the_sweep_deletes_a_vm_left_by_a_killed_client(
    project, stores, gcp_params, loopback_google, capsys
):
    from zenml_gcp.cli import sweep

    process = _interrupted_run(project, stores, gcp_params, "gcp-killed", signal.SIGKILL)
    try:
        _wait_summing(loopback_google)
        process.kill()  # no clean-up runs: the VM is left, running and billing
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    ((_, zone, name),) = loopback_google.instances
    assert sweep(PROJECT, dry_run=True, endpoint=loopback_google.url) == [f"{zone}/{name}"]
    assert loopback_google.instances  # a dry run deletes nothing
    assert sweep(PROJECT, endpoint=loopback_google.url) == [f"{zone}/{name}"]
    assert loopback_google.instances == {}
    assert sweep(PROJECT, endpoint=loopback_google.url) == []
