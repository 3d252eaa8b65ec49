"""KubernetesOrchestrator through the real kubernetes client against the loopback cluster: the
Job's pod really runs the pipeline (a container from our base image in the e2e session, a
subprocess otherwise), its artifacts land in the GCS emulator and its metadata in MariaDB."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from zenml_core import Pipeline
from zenml_core.exceptions import ConfigError, StepFailedError, ZenMLError
from zenml_core.testing import terminal_sigint, wait_until
from zenml_core.testing.conformance import OrchestratorConformance
from zenml_k8s.orchestrator import KubernetesOrchestrator
from zenml_loopback.fixtures import WORKLOAD_IMAGE, docker_mode

JOBS = "batch/v1/jobs"


class TestKubernetesOrchestrator(OrchestratorConformance):
    backend_class = KubernetesOrchestrator
    name = "kubernetes"
    params = {"namespace": "ml", "image": WORKLOAD_IMAGE, "cpu_request": "500m"}
    bad_params = [
        ({"namespace": "Not_Valid"}, "namespace"),
        ({"image": "Trainer:1.0"}, "not a valid image reference"),
        ({"memory_limit": "4 gigabytes"}, "not a Kubernetes quantity"),
        ({"cpu_request": "lots"}, "cpu_request"),
        ({"labels": {"team": "has spaces"}}, "label value"),
        ({"node_selector": {"bad key!": "x"}}, "not a valid Kubernetes key"),
        ({"env": {"DB_PASSWORD": "hunter2"}}, "Kubernetes Secret"),
        ({"tolerations": [{"key": "gpu", "operator": "Maybe"}]}, "toleration"),
        ({"in_cluster": True, "context": "prod"}, "in_cluster"),
        ({"backoff_limit": -1}, "backoff_limit"),
        ({"active_deadline_seconds": 0}, "active_deadline_seconds"),
        ({"image_pull_policy": "Sometimes"}, "image_pull_policy"),
    ]

    @pytest.fixture
    def conformance_run_params(self, k8s_params):
        return k8s_params

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


def _failed_run(stores, pipeline_name: str):
    store = stores["metadata_store"]
    (run,) = store.list_runs(pipeline_name)
    return store.get_run(run.run_id)


# -- a run, end to end -----------------------------------------------------------------------


def test_the_run_happens_in_the_pod_with_logs_streamed_and_gs_artifacts(
    project, stores, k8s_params, loopback_kubernetes, capsys
):
    orchestrator = KubernetesOrchestrator(**k8s_params, labels={"team": "ml"})
    result = _pipeline("k8s-e2e", "slow_sum", "where").run(backend=orchestrator, **stores)
    assert result.status == "completed" and result.load("slow_sum") == 10
    where = result.load("where")
    if docker_mode():  # written from inside a container of our base image
        assert where == {"own_container": True, "python": "/opt/zenml/bin/python"}
    else:
        assert where == {"own_container": False, "python": sys.executable}
    run = stores["metadata_store"].get_run(result.run_id)
    assert run.orchestrator == "kubernetes"
    assert all(
        a.uri.startswith(stores["artifact_store"]) for s in run.steps for a in s.outputs.values()
    )
    out = capsys.readouterr().out
    assert "Job ml/zenml-" in out
    assert "slow_sum" in out  # the pod's own progress lines, streamed back
    (job,) = loopback_kubernetes.objects(JOBS, "ml")
    assert job["metadata"]["labels"]["team"] == "ml"
    assert job["metadata"]["labels"]["zenml.io/run-id"] == result.run_id[:63]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:5] == ["python", "-m", "zenml_core", "run", "--spec"]
    assert container["command"][5].startswith(stores["artifact_store"])  # spec via the store


def test_the_metadata_password_reaches_the_pod_only_through_a_secret(
    project, stores, k8s_params, loopback_kubernetes, capsys, mariadb
):
    canary = stores["metadata_store"].password  # the MariaDB user's real password
    assert canary and len(canary) >= 16
    orchestrator = KubernetesOrchestrator(**k8s_params)
    result = _pipeline("k8s-canary").run(backend=orchestrator, **stores)
    assert result.status == "completed"  # the pod did log in to MariaDB with it
    encoded = base64.b64encode(canary.encode()).decode()
    posted = [body for method, path, body in loopback_kubernetes.requests() if method == "POST"]
    jobs = [b for b in posted if b.get("kind") == "Job"]
    secrets = [b for b in posted if b.get("kind") == "Secret"]
    assert len(jobs) == 1 and len(secrets) == 1
    job_text = json.dumps(jobs[0])
    assert canary not in job_text and encoded not in job_text
    env = jobs[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "ZENML_MYSQL_PASSWORD",
        "valueFrom": {
            "secretKeyRef": {"name": secrets[0]["metadata"]["name"], "key": "ZENML_MYSQL_PASSWORD"}
        },
    } in env
    assert secrets[0]["data"] == {"ZENML_MYSQL_PASSWORD": encoded}
    # nor in logs, the run spec, or the metadata
    captured = capsys.readouterr()
    assert canary not in captured.out + captured.err
    dump = subprocess.run(
        [
            "mariadb-dump",
            "--no-defaults",
            "-uroot",
            f"--socket={mariadb.socket}",
            stores["metadata_store"].database,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert result.run_id in dump and canary not in dump  # the whole metadata database
    from zenml_core.pipeline.runner import read_spec

    spec_uri = jobs[0]["spec"]["template"]["spec"]["containers"][0]["command"][5]
    assert canary not in read_spec(spec_uri).to_json()


def test_manifests_pass_the_real_kubernetes_schemas(project, stores, k8s_params):
    import kubernetes_validate

    from zenml_core.pipeline.engine import Components, RunRequest, new_run_id
    from zenml_core.pipeline.spec import RunSpec

    orchestrator = KubernetesOrchestrator(
        **{**k8s_params, "image": "europe-docker.pkg.dev/proj/ml/trainer:1.2"},
        service_account="zenml-runner",
        cpu_request="500m",
        cpu_limit="2",
        memory_request="1Gi",
        memory_limit="4Gi",
        gpus=1,
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        secrets=["team-credentials"],
        labels={"team": "ml"},
        ttl_seconds_after_finished=600,
        backoff_limit=0,
        active_deadline_seconds=3600,
    )
    pipeline = _pipeline("k8s-manifests")
    spec = pipeline.to_spec({"orchestrator": orchestrator, **_store_objects(stores)})
    run_spec = RunSpec(new_run_id(spec.name), spec)
    request = RunRequest(
        run_spec, Components.of(spec, {"orchestrator": orchestrator, **_store_objects(stores)})
    )
    manifests = orchestrator.manifests(request, "gs://bucket/runs/x/spec")
    assert [m["kind"] for m in manifests] == ["Secret", "Job"]
    for manifest in manifests:
        assert kubernetes_validate.validate(manifest, "1.32", strict=True) is not None
    container = manifests[1]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # and a broken manifest is caught by the same check (so it can fail)
    broken = yaml.safe_load(yaml.safe_dump(manifests[1]))
    broken["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = [2]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.32", strict=True)


def _store_objects(stores):
    from zenml_core.artifacts import ArtifactStore

    return {
        "artifact_store": ArtifactStore(stores["artifact_store"]),
        "metadata_store": stores["metadata_store"],
    }


# -- failures, each reported in the metadata store and in the raised error ---------------------


def test_an_image_that_cannot_be_pulled_fails_the_run_and_deletes_the_job(
    project, stores, k8s_params, loopback_kubernetes
):
    params = {**k8s_params, "image": "registry.invalid/nobody/missing:1"}
    with pytest.raises(StepFailedError, match="ImagePullBackOff"):
        _pipeline("k8s-pull").run(backend=KubernetesOrchestrator(**params), **stores)
    run = _failed_run(stores, "k8s-pull")
    assert run.status == "failed" and "ImagePullBackOff" in run.error
    assert loopback_kubernetes.objects(JOBS, "ml") == []


def test_a_missing_user_secret_fails_the_run_and_deletes_the_job(
    project, stores, k8s_params, loopback_kubernetes
):
    orchestrator = KubernetesOrchestrator(**k8s_params, secrets=["team-credentials"])
    with pytest.raises(StepFailedError, match="CreateContainerConfigError"):
        _pipeline("k8s-nosecret").run(backend=orchestrator, **stores)
    assert 'secret "team-credentials" not found' in _failed_run(stores, "k8s-nosecret").error
    assert loopback_kubernetes.objects(JOBS, "ml") == []


@pytest.mark.parametrize(
    ("fault", "reason"), [("oom", "OOMKilled (exit code 137)"), ("evicted", "Evicted")]
)
def test_a_pod_killed_mid_run_fails_the_run_and_its_running_step(
    project, stores, k8s_params, loopback_kubernetes, fault, reason
):
    loopback_kubernetes.fail_next_pod(fault)  # strikes about a second after the pod starts
    with pytest.raises(StepFailedError, match=reason.split(" ")[0]):
        _pipeline(f"k8s-{fault}", seconds=60).run(
            backend=KubernetesOrchestrator(**k8s_params, memory_limit="2Gi"), **stores
        )
    run = _failed_run(stores, f"k8s-{fault}")
    assert run.status == "failed" and reason in run.error
    states = {s.step: (s.state, s.error) for s in run.steps}
    if "slow_sum" in states:  # the pod got that far: the step it was running failed with it
        assert states["slow_sum"][0] == "failed" and reason in states["slow_sum"][1]


def test_a_failing_step_exits_non_zero_and_both_reasons_are_kept(project, stores, k8s_params):
    with pytest.raises(StepFailedError) as caught:
        _pipeline("k8s-boom", "boom").run(backend=KubernetesOrchestrator(**k8s_params), **stores)
    assert "exited with code 1" in str(caught.value)
    assert "the step failed on purpose" in str(caught.value)
    run = _failed_run(stores, "k8s-boom")
    assert "exited with code 1" in run.error and "the step failed on purpose" in run.error


def test_the_active_deadline_fails_the_run(project, stores, k8s_params):
    orchestrator = KubernetesOrchestrator(**k8s_params, active_deadline_seconds=3)
    with pytest.raises(StepFailedError, match="DeadlineExceeded"):
        _pipeline("k8s-deadline", seconds=120).run(backend=orchestrator, **stores)
    assert "active_deadline_seconds=3" in _failed_run(stores, "k8s-deadline").error


def test_throttling_and_server_errors_are_retried(project, stores, k8s_params, loopback_kubernetes):
    loopback_kubernetes.fail_requests("POST", "/apis/batch/v1/namespaces/ml/jobs", 429, times=2)
    loopback_kubernetes.fail_requests("POST", "/api/v1/namespaces/ml/secrets", 500)
    result = _pipeline("k8s-retry").run(backend=KubernetesOrchestrator(**k8s_params), **stores)
    assert result.status == "completed"
    posts = [p for m, p, _ in loopback_kubernetes.requests() if m == "POST"]
    assert posts.count("/apis/batch/v1/namespaces/ml/jobs") == 3


def test_forbidden_job_creation_leaves_nothing_behind(
    project, stores, k8s_params, loopback_kubernetes
):
    loopback_kubernetes.fail_requests("POST", "/apis/batch/v1/namespaces/ml/jobs", 403)
    with pytest.raises(ZenMLError, match="lacks permission"):
        _pipeline("k8s-403").run(backend=KubernetesOrchestrator(**k8s_params), **stores)
    assert loopback_kubernetes.objects("v1/secrets", "ml") == []
    assert loopback_kubernetes.objects(JOBS, "ml") == []


# -- refused before anything is created --------------------------------------------------------


def _nothing_created(cluster) -> bool:
    return not [p for m, p, _ in cluster.requests() if m in ("POST", "PUT", "PATCH")]


def test_a_missing_namespace_is_named_before_anything_is_created(
    project, stores, k8s_params, loopback_kubernetes
):
    orchestrator = KubernetesOrchestrator(**{**k8s_params, "namespace": "nowhere"})
    with pytest.raises(ConfigError, match="kubectl create namespace nowhere"):
        _pipeline("k8s-ns").run(backend=orchestrator, **stores)
    assert _nothing_created(loopback_kubernetes)


def test_an_unreachable_api_is_named(project, stores, k8s_params, tmp_path):
    from zenml_loopback.kubernetes import LoopbackKubernetes
    from zenml_loopback.workloads import SubprocessRunner

    cluster = LoopbackKubernetes(SubprocessRunner([]))  # never started: nothing listens there
    dead = cluster.write_kubeconfig(tmp_path / "dead-kubeconfig")
    params = {**k8s_params, "kubeconfig": str(dead), "context": None}
    with pytest.raises(ConfigError, match=f"API at {cluster.url} does not answer"):
        _pipeline("k8s-dead").run(backend=KubernetesOrchestrator(**params), **stores)


def test_stores_on_this_machine_are_refused_with_the_fix(project, k8s_params, loopback_kubernetes):
    with pytest.raises(ConfigError, match="gs://") as caught:
        _pipeline("k8s-local").run(backend=KubernetesOrchestrator(**k8s_params))
    assert "MySQL metadata store" in str(caught.value)
    assert loopback_kubernetes.requests() == []
    assert not (project / ".zenml" / "artifacts" / "code").exists()  # refused before the zip


def test_no_kubeconfig_is_a_clear_error(project, stores, tmp_path):
    orchestrator = KubernetesOrchestrator(kubeconfig=str(tmp_path / "absent"), namespace="ml")
    with pytest.raises(ConfigError, match="No Kubernetes configuration"):
        _pipeline("k8s-noconfig").run(backend=orchestrator, **stores)


# -- not waiting, clean-up, Ctrl-C ------------------------------------------------------------


def test_without_waiting_the_run_is_submitted_and_finishes_on_its_own(
    project, stores, k8s_params, loopback_kubernetes
):
    orchestrator = KubernetesOrchestrator(**k8s_params, wait=False)
    result = _pipeline("k8s-nowait").run(backend=orchestrator, **stores)
    assert result.status == "submitted" and result.steps == {}
    store = stores["metadata_store"]
    (run,) = wait_until(
        lambda: [r for r in store.list_runs("k8s-nowait") if r.status == "completed"],
        timeout=120,
        what="the submitted run to complete",
    )
    assert run.run_id == result.run_id


def test_finished_jobs_and_their_secret_go_after_the_ttl(
    project, stores, k8s_params, loopback_kubernetes
):
    orchestrator = KubernetesOrchestrator(**k8s_params, ttl_seconds_after_finished=1)
    _pipeline("k8s-ttl").run(backend=orchestrator, **stores)
    for resource in (JOBS, "v1/secrets", "v1/pods"):  # the TTL, then the garbage collector
        wait_until(lambda r=resource: loopback_kubernetes.objects(r, "ml") == [], what=resource)


CTRL_C_SCRIPT = """
import sys
sys.path.insert(0, {project!r})
import user_steps
from zenml_core import Pipeline
from zenml_core.metadata import MySQLMetadataStore
from zenml_k8s.orchestrator import KubernetesOrchestrator

store = MySQLMetadataStore.from_config({store_config!r})
pipeline = Pipeline("k8s-ctrl-c")
pipeline.add_step(user_steps.slow_sum(x=pipeline.add_step(user_steps.numbers()), seconds=120))
pipeline.run(
    backend=KubernetesOrchestrator(**{params!r}),
    metadata_store=store,
    artifact_store={artifacts!r},
)
"""


def test_ctrl_c_deletes_the_job_and_records_the_interruption(
    project, stores, k8s_params, loopback_kubernetes
):
    store = stores["metadata_store"]
    script = project / "ctrl_c.py"
    script.write_text(
        textwrap.dedent(CTRL_C_SCRIPT).format(
            project=str(project),
            store_config={**store.to_config(), "kind": "metadata_store"},
            params=k8s_params,
            artifacts=stores["artifact_store"],
        )
    )
    env = {**os.environ, "ZENML_MYSQL_PASSWORD": store.password}
    process = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=terminal_sigint,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until the pod is running the slow step
        runs = store.list_runs("k8s-ctrl-c")
        if runs and any(s.state == "running" for s in store.get_run(runs[0].run_id).steps):
            break
        if process.poll() is not None:
            pytest.fail("the run ended before Ctrl-C:\n" + "".join(process.communicate())[-4000:])
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0 and "KeyboardInterrupt" in err
    assert loopback_kubernetes.objects(JOBS, "ml") == []
    run = store.get_run(store.list_runs("k8s-ctrl-c")[0].run_id)
    assert run.status == "failed" and "interrupted (Ctrl-C)" in run.error
    assert {s.state for s in run.steps} <= {"completed", "failed"}
