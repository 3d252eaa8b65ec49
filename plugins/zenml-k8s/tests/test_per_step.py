"""KubernetesOrchestrator(per_step=True): one Job per step, driven by this process through
the core's step-by-step contract, on the loopback cluster (its pods really run)."""

from __future__ import annotations

import pytest

from zenml_core import Pipeline
from zenml_core.exceptions import StepFailedError
from zenml_core.testing.conformance import OrchestratorConformance
from zenml_k8s.orchestrator import KubernetesOrchestrator

JOBS = "batch/v1/jobs"


class TestKubernetesOrchestratorPerStep(OrchestratorConformance):
    backend_class = KubernetesOrchestrator
    name = "kubernetes"
    params = {"namespace": "ml", "per_step": True}
    bad_params = [
        ({"per_step": True, "wait": False}, "per_step=True needs wait=True"),
        ({"max_parallel": 0}, "max_parallel"),
    ]

    @pytest.fixture
    def conformance_run_params(self, k8s_params):
        return {**k8s_params, "per_step": True}

    @pytest.fixture
    def conformance_stores(self, stores):
        return stores


def _jobs_by_step(cluster):
    return {job["metadata"]["labels"]["zenml.io/step"]: job for job in cluster.objects(JOBS, "ml")}


def test_each_step_is_its_own_job_with_its_own_resources(
    project, stores, k8s_params, loopback_kubernetes
):
    import user_steps

    pipeline = Pipeline("k8s-per-step")
    numbers = pipeline.add_step(user_steps.numbers(n=5))
    total = user_steps.slow_sum(x=numbers).with_resources(memory="3Gi", cpu="1500m", gpus=1)
    pipeline.add_step(total)
    orchestrator = KubernetesOrchestrator(**k8s_params, per_step=True, memory_limit="2Gi")
    result = pipeline.run(backend=orchestrator, **stores)
    assert result.status == "completed" and result.load("slow_sum") == 10
    jobs = _jobs_by_step(loopback_kubernetes)
    assert set(jobs) == {"numbers", "slow_sum"}
    containers = {s: j["spec"]["template"]["spec"]["containers"][0] for s, j in jobs.items()}
    for step, container in containers.items():
        assert container["command"][2:4] == ["zenml_core", "step"]
        assert container["command"][container["command"].index("--step") + 1] == step
    assert containers["numbers"]["resources"] == {"limits": {"memory": "2Gi"}}
    assert containers["slow_sum"]["resources"] == {
        "requests": {"cpu": "1500m", "memory": "3Gi"},
        "limits": {"memory": "3Gi", "nvidia.com/gpu": "1"},
    }
    run = stores["metadata_store"].get_run(result.run_id)
    assert [(s.step, s.state) for s in run.steps] == [
        ("numbers", "completed"),
        ("slow_sum", "completed"),
    ]


def test_independent_branches_run_at_the_same_time(
    project, stores, k8s_params, loopback_kubernetes
):
    import user_steps

    pipeline = Pipeline("k8s-branches")
    numbers = pipeline.add_step(user_steps.numbers(n=3))
    where = f"{stores['artifact_store']}/meeting"
    for me, other in (("left", "right"), ("right", "left")):
        step = user_steps.meet(x=numbers, me=me, other=other, where=where).with_name(me)
        pipeline.add_step(step)
    orchestrator = KubernetesOrchestrator(**k8s_params, per_step=True, max_parallel=2)
    result = pipeline.run(backend=orchestrator, **stores)
    assert result.load("left") == "left" and result.load("right") == "right"
    assert set(_jobs_by_step(loopback_kubernetes)) == {"numbers", "left", "right"}


def test_a_failing_step_fails_only_the_steps_that_depend_on_it(
    project, stores, k8s_params, loopback_kubernetes
):
    import user_steps

    pipeline = Pipeline("k8s-per-step-failure")
    numbers = pipeline.add_step(user_steps.numbers(n=4))
    boom = pipeline.add_step(user_steps.boom(x=numbers))
    pipeline.add_step(user_steps.slow_sum(x=numbers))
    pipeline.add_step(user_steps.numbers(n=boom).with_name("after_boom"))
    orchestrator = KubernetesOrchestrator(**k8s_params, per_step=True)
    with pytest.raises(StepFailedError, match="the step failed on purpose") as caught:
        pipeline.run(backend=orchestrator, **stores)
    states = {name: s.state for name, s in caught.value.result.steps.items()}
    assert states == {
        "numbers": "completed",
        "boom": "failed",
        "slow_sum": "completed",
        "after_boom": "skipped",
    }
    (run,) = stores["metadata_store"].list_runs("k8s-per-step-failure")
    recorded = stores["metadata_store"].get_run(run.run_id)
    assert recorded.status == "failed" and "boom" in recorded.error
    assert "after_boom" not in _jobs_by_step(loopback_kubernetes)


def test_an_image_that_cannot_be_pulled_fails_its_step(
    project, stores, k8s_params, loopback_kubernetes
):
    import user_steps

    pipeline = Pipeline("k8s-per-step-pull")
    pipeline.add_step(user_steps.slow_sum(x=pipeline.add_step(user_steps.numbers())))
    params = {**k8s_params, "image": "registry.invalid/nobody/missing:1", "per_step": True}
    with pytest.raises(StepFailedError, match="ImagePullBackOff"):
        pipeline.run(backend=KubernetesOrchestrator(**params), **stores)
    assert loopback_kubernetes.objects(JOBS, "ml") == []  # stuck Jobs are deleted
    assert loopback_kubernetes.objects("v1/secrets", "ml") == []  # and the run's Secret
