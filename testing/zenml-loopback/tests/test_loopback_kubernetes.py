"""The loopback Kubernetes itself, over plain HTTP: what its controllers do with a Job, and the
faults it injects. (The kubernetes client's view of it is tested with zenml-k8s.)"""

from __future__ import annotations

import base64
import json
import sys
import time
import urllib.error
import urllib.request

import pytest

from zenml_core.testing import wait_until
from zenml_loopback.kubernetes import LoopbackKubernetes
from zenml_loopback.workloads import SubprocessRunner

IMAGE = "loopback/test:1"
JOBS = "/apis/batch/v1/namespaces/default/jobs"


@pytest.fixture
def cluster():
    with LoopbackKubernetes(SubprocessRunner([IMAGE])) as running:
        yield running


def _request(cluster, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        cluster.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
        kind = response.headers.get("Content-Type", "")
    return json.loads(raw) if "json" in kind else raw.decode()


def _job(name, script, **spec):
    container = {
        "name": "main",
        "image": spec.pop("image", IMAGE),
        "command": ["python", "-c", script],
    }
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
            **spec,
        },
    }


def _condition(cluster, name):
    job = _request(cluster, "GET", f"{JOBS}/{name}")
    conditions = job.get("status", {}).get("conditions") or []
    return conditions[0] if conditions else None


def _pods(cluster, job):
    return [
        p
        for p in cluster.objects("v1/pods", "default")
        if p["metadata"]["labels"]["job-name"] == job
    ]


def test_a_job_runs_its_pod_with_secrets_resolved_and_completes(cluster):
    _request(cluster, "POST", "/api/v1/namespaces/default/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"TOKEN": base64.b64encode(b"t0k3n").decode()},
    })  # fmt: skip
    script = "import os; print('token', os.environ['TOKEN'], os.environ['PLAIN'])"
    env = [
        {"name": "PLAIN", "value": "p"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "TOKEN"}}},
    ]
    created = _request(cluster, "POST", JOBS, _job("ok", script, container={"env": env}))
    assert created["metadata"]["uid"]  # filled in as the API server does
    condition = wait_until(lambda: _condition(cluster, "ok"))
    assert condition["type"] == "Complete"
    (pod,) = _pods(cluster, "ok")
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert pod["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    log = _request(cluster, "GET", f"/api/v1/namespaces/default/pods/{pod['metadata']['name']}/log")
    assert log == "token t0k3n p\n"


def test_backoff_limit_retries_failed_pods_then_fails_the_job(cluster):
    _request(cluster, "POST", JOBS, _job("flaky", "raise SystemExit(3)", backoffLimit=1))
    condition = wait_until(lambda: _condition(cluster, "flaky"))
    assert condition["reason"] == "BackoffLimitExceeded"
    pods = _pods(cluster, "flaky")
    assert len(pods) == 2
    assert {
        p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] for p in pods
    } == {3}


def test_the_active_deadline_kills_the_pod(cluster):
    job = _job("slow", "import time; time.sleep(60)", activeDeadlineSeconds=1, backoffLimit=0)
    _request(cluster, "POST", JOBS, job)
    condition = wait_until(lambda: _condition(cluster, "slow"), timeout=20)
    assert condition["reason"] == "DeadlineExceeded"
    (pod,) = _pods(cluster, "slow")
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137


def test_deleting_a_job_kills_its_workload_and_collects_what_it_owned(cluster, tmp_path):
    marker = tmp_path / "alive"
    script = (
        f"import time, pathlib\nwhile True: pathlib.Path({str(marker)!r}).touch(); time.sleep(0.05)"
    )
    created = _request(cluster, "POST", JOBS, _job("doomed", script))
    _request(cluster, "POST", "/api/v1/namespaces/default/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "owned", "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "Job", "name": "doomed",
             "uid": created["metadata"]["uid"]}]}, "data": {},
    })  # fmt: skip
    wait_until(marker.exists)
    _request(cluster, "DELETE", f"{JOBS}/doomed")
    wait_until(lambda: cluster.objects("v1/secrets", "default") == [])
    wait_until(lambda: _pods(cluster, "doomed") == [])
    before = marker.stat().st_mtime  # no pod left means its container has stopped, as in k8s
    time.sleep(0.5)
    assert marker.stat().st_mtime == before  # the process is gone


def test_finished_jobs_expire_after_their_ttl(cluster):
    _request(cluster, "POST", JOBS, _job("brief", "pass", ttlSecondsAfterFinished=1))
    wait_until(lambda: _condition(cluster, "brief"))
    wait_until(lambda: cluster.objects("batch/v1/jobs", "default") == [], timeout=10)


@pytest.mark.parametrize(
    ("job_kwargs", "reason"),
    [
        ({"image": "nowhere/missing:1"}, "ImagePullBackOff"),
        (
            {
                "container": {
                    "env": [
                        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "none", "key": "k"}}}
                    ]
                }
            },
            "CreateContainerConfigError",
        ),
    ],
)
def test_pods_that_cannot_start_wait_with_the_kubelets_reason(cluster, job_kwargs, reason):
    _request(cluster, "POST", JOBS, _job("stuck", "pass", **job_kwargs))

    def waiting():
        pods = _pods(cluster, "stuck")
        statuses = pods[0]["status"].get("containerStatuses") if pods else None
        return statuses and statuses[0]["state"].get("waiting")

    assert wait_until(waiting)["reason"] == reason
    assert _condition(cluster, "stuck") is None  # the Job itself stays active, as in Kubernetes


@pytest.mark.parametrize(
    ("fault", "reason", "code"), [("oom", "OOMKilled", 137), ("exit:3", "Error", 3)]
)
def test_injected_pod_faults(cluster, fault, reason, code):
    cluster.fail_next_pod(fault)
    _request(cluster, "POST", JOBS, _job("hit", "import time; time.sleep(30)", backoffLimit=0))
    assert wait_until(lambda: _condition(cluster, "hit"), timeout=40)["type"] == "Failed"
    (pod,) = _pods(cluster, "hit")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == (reason, code)


def test_injected_api_errors_are_answered_before_anything_is_stored(cluster):
    cluster.fail_requests("POST", JOBS, 429, times=2)
    for _ in range(2):
        with pytest.raises(urllib.error.HTTPError) as caught:
            _request(cluster, "POST", JOBS, _job("later", "pass"))
        assert caught.value.code == 429
        assert json.loads(caught.value.read())["reason"] == "TooManyRequests"
    assert cluster.objects("batch/v1/jobs", "default") == []
    _request(cluster, "POST", JOBS, _job("later", "pass"))
    assert [m for m, p, _ in cluster.requests() if p == JOBS] == ["POST"] * 3


def test_unknown_faults_are_refused(cluster):
    with pytest.raises(ValueError, match="unknown fault"):
        cluster.fail_next_pod("meteor")


def test_the_subprocess_runner_uses_this_interpreter(tmp_path):
    from zenml_loopback.workloads import Workload

    running = SubprocessRunner([IMAGE]).start(
        Workload(IMAGE, ["python", "-c", "import sys; print(sys.executable)"])
    )
    assert running.wait() == (0, False)
    assert running.output().strip() == sys.executable
