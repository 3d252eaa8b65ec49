"""Which replica of a multi-machine job this process is, from the environment the platform
sets: ``TF_CONFIG`` (TensorFlow's convention, set by Vertex AI, Kubeflow's TFJob and others)
or, failing that, Vertex AI's ``CLUSTER_SPEC``.

Every replica runs the same step command (``python -m zenml_core step ...``); they train one
model together, and only the chief records the step and publishes its outputs, so the step has
exactly one execution whatever the number of machines.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from zenml_core.exceptions import ConfigError

#: Vertex AI's worker pools, in TF_CONFIG's words
_POOL_TASKS = {"workerpool0": "chief", "workerpool1": "worker", "workerpool2": "ps",
               "workerpool3": "evaluator"}  # fmt: skip


@dataclass(frozen=True)
class ClusterTask:
    """This process's place in a cluster: ``cluster`` maps task types to addresses."""

    cluster: dict[str, list[str]]
    task_type: str
    index: int

    @property
    def trainers(self) -> int:
        """Replicas that train (the chief and the workers)."""
        return len(self.cluster.get("chief", [])) + len(self.cluster.get("worker", []))

    @property
    def is_chief(self) -> bool:
        """The chief records: the ``chief`` task, or worker 0 where there is no chief."""
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.index == 0

    def tf_config(self) -> str:
        return json.dumps(
            {"cluster": self.cluster, "task": {"type": self.task_type, "index": self.index}}
        )


def cluster_task() -> ClusterTask | None:
    """This process's task, or None when it is not part of a multi-machine job."""
    if raw := os.environ.get("TF_CONFIG"):
        config = _parse("TF_CONFIG", raw)
        cluster, task = config.get("cluster") or {}, config.get("task") or {}
        kind = task.get("type")
    elif raw := os.environ.get("CLUSTER_SPEC"):
        config = _parse("CLUSTER_SPEC", raw)
        pools, task = config.get("cluster") or {}, config.get("task") or {}
        cluster = {_POOL_TASKS.get(pool, pool): hosts for pool, hosts in pools.items()}
        pool = str(task.get("type", ""))
        kind = _POOL_TASKS.get(pool, pool)
    else:
        return None
    if not isinstance(cluster, dict) or not isinstance(kind, str) or kind not in cluster:
        raise ConfigError(
            f"The cluster spec in the environment names no task of this process ({raw[:200]}): "
            "each replica needs its own task type and index."
        )
    index = int(task.get("index", 0))
    task_of = ClusterTask({k: list(v) for k, v in cluster.items()}, kind, index)
    return task_of if sum(len(v) for v in task_of.cluster.values()) > 1 else None


def is_chief() -> bool:
    """True unless this process is a replica that must not record (a worker, a parameter
    server, an evaluator of a multi-machine job)."""
    task = cluster_task()
    return task is None or task.is_chief


def _parse(name: str, raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise ConfigError(f"${name} is not JSON: {raw[:200]!r}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"${name} must be a JSON object, got {raw[:200]!r}")
    return value
