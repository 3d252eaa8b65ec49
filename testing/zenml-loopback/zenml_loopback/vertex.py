"""What the loopback Vertex AI checks and sets, as Vertex AI does: custom job specs refused
with the service's words, and the environment each replica of each worker pool gets.

Kept apart from any client's own checks on purpose: a client that skips its validation must
still meet the service's refusal here.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: machine family -> accelerators it takes, with the counts allowed (None: as many as the
#: machine type carries, e.g. a2-highgpu-4g carries 4)
ACCELERATORS_BY_FAMILY: dict[str, dict[str, tuple[int, ...] | None]] = {
    "n1": {
        "NVIDIA_TESLA_T4": (1, 2, 4),
        "NVIDIA_TESLA_V100": (1, 2, 4, 8),
        "NVIDIA_TESLA_P100": (1, 2, 4),
        "NVIDIA_TESLA_P4": (1, 2, 4),
    },
    "a2": {"NVIDIA_TESLA_A100": None, "NVIDIA_A100_80GB": None},
    "a3": {"NVIDIA_H100_80GB": None, "NVIDIA_H100_MEGA_80GB": None},
    "g2": {"NVIDIA_L4": None},
}
_MACHINE = re.compile(
    r"^(?P<family>n1|n2|n2d|e2|c2|a2|a3|g2)-"
    r"(?:(?:standard|highmem|highcpu)-(?P<cpus>\d+)|(?:highgpu|megagpu|ultragpu|edgegpu)-"
    r"(?P<gpus>\d+)g)$"
)
#: g2-standard-N carries GPUs by its CPU count
_G2_GPUS = {4: 1, 8: 1, 12: 1, 16: 1, 32: 1, 24: 2, 48: 4, 96: 8}
#: enums as the REST clients send them (numbers of aiplatform/v1's protos)
ACCELERATOR_NUMBERS = {0: "ACCELERATOR_TYPE_UNSPECIFIED", 1: "NVIDIA_TESLA_K80",
                       2: "NVIDIA_TESLA_P100", 3: "NVIDIA_TESLA_V100", 4: "NVIDIA_TESLA_P4",
                       5: "NVIDIA_TESLA_T4", 6: "TPU_V2", 7: "TPU_V3", 8: "NVIDIA_TESLA_A100",
                       9: "NVIDIA_A100_80GB", 10: "TPU_V4_POD", 11: "NVIDIA_L4",
                       12: "TPU_V5_LITEPOD", 13: "NVIDIA_H100_80GB", 14: "NVIDIA_H100_MEGA_80GB",
                       15: "NVIDIA_H200_141GB", 16: "NVIDIA_B200"}  # fmt: skip
STRATEGY_NUMBERS = {0: "STRATEGY_UNSPECIFIED", 1: "ON_DEMAND", 2: "LOW_COST", 3: "STANDARD",
                    4: "SPOT", 6: "FLEX_START"}  # fmt: skip
#: worker pool index -> the TF_CONFIG task type Vertex gives it
TASK_TYPES = ("chief", "worker", "ps", "evaluator")
#: the port every replica listens on in Vertex's cluster spec
VERTEX_PORT = 2222


class SpecError(ValueError):
    """A 400 INVALID_ARGUMENT, in the service's words."""


def _carried_gpus(family: str, match: re.Match[str]) -> int | None:
    if match["gpus"]:
        return int(match["gpus"])
    if family == "g2" and match["cpus"]:
        return _G2_GPUS.get(int(match["cpus"]))
    return None


def check_machine_spec(spec: Any, where: str) -> None:
    if not isinstance(spec, dict) or not spec.get("machineType"):
        raise SpecError(f"{where}.machine_spec.machine_type must be specified.")
    machine = spec["machineType"]
    match = _MACHINE.match(machine)
    if match is None:
        raise SpecError(f'Machine type "{machine}" is not supported.')
    accelerator = _enum(spec.get("acceleratorType", 0), ACCELERATOR_NUMBERS, "accelerator_type")
    count = int(spec.get("acceleratorCount", 0) or 0)
    has_type = accelerator != "ACCELERATOR_TYPE_UNSPECIFIED"
    if has_type != (count > 0):
        raise SpecError(
            f"{where}.machine_spec: accelerator_type and accelerator_count must be set together "
            f"(got type {accelerator!r}, count {count})."
        )
    family = match["family"]
    carried = _carried_gpus(family, match)
    if not has_type:
        if carried:
            raise SpecError(
                f'Machine type "{machine}" requires {carried} accelerator(s): set '
                "accelerator_type and accelerator_count."
            )
        return
    allowed = ACCELERATORS_BY_FAMILY.get(family, {})
    if accelerator not in allowed:
        raise SpecError(
            f'Accelerator "{accelerator}" is not supported for machine type "{machine}".'
        )
    counts = allowed[accelerator]
    valid = (carried,) if counts is None else counts
    if count not in valid:
        raise SpecError(
            f'Accelerator count {count} of "{accelerator}" is not valid for machine type '
            f'"{machine}"; valid counts: {list(valid)}.'
        )


def check_custom_job(body: Any) -> list[tuple[int, dict[str, Any]]]:
    """The job's worker pools (index, spec) that run; ``SpecError`` for what Vertex refuses."""
    if not isinstance(body, dict) or not body.get("displayName"):
        raise SpecError("CustomJob.display_name must be specified.")
    if len(body["displayName"]) > 128:
        raise SpecError("CustomJob.display_name must be at most 128 characters.")
    pools = (body.get("jobSpec") or {}).get("workerPoolSpecs") or []
    if not pools or not pools[0]:
        raise SpecError("job_spec.worker_pool_specs[0] (the primary replica) must be specified.")
    if len(pools) > len(TASK_TYPES):
        raise SpecError(f"At most {len(TASK_TYPES)} worker pools are allowed.")
    running = []
    for index, pool in enumerate(pools):
        if not pool:  # an empty pool holds its index for the ones after it
            continue
        where = f"job_spec.worker_pool_specs[{index}]"
        check_machine_spec(pool.get("machineSpec"), where)
        replicas = int(pool.get("replicaCount", 0) or 0)
        if replicas < 1:
            raise SpecError(f"{where}.replica_count must be greater than 0.")
        if index == 0 and replicas != 1:
            raise SpecError(f"{where}.replica_count must be 1 for the primary replica pool.")
        container = pool.get("containerSpec")
        if not container and not pool.get("pythonPackageSpec"):
            raise SpecError(f"{where} needs a container_spec or a python_package_spec.")
        if container is not None and not container.get("imageUri"):
            raise SpecError(f"{where}.container_spec.image_uri must be specified.")
        running.append((index, pool))
    scheduling = (body.get("jobSpec") or {}).get("scheduling") or {}
    if "timeout" in scheduling:
        seconds(scheduling["timeout"], "job_spec.scheduling.timeout")
    _enum(scheduling.get("strategy", 0), STRATEGY_NUMBERS, "job_spec.scheduling.strategy")
    return running


def strategy(body: dict[str, Any]) -> str:
    scheduling = (body.get("jobSpec") or {}).get("scheduling") or {}
    return _enum(scheduling.get("strategy", 0), STRATEGY_NUMBERS, "strategy")


def _enum(value: Any, names: dict[int, str], where: str) -> str:
    if isinstance(value, int) and value in names:
        return names[value]
    if isinstance(value, str) and value in names.values():
        return value
    raise SpecError(f"Invalid value for {where}: {value!r}.")


def seconds(duration: Any, where: str) -> float:
    """A protobuf Duration as JSON ("3600s", "1.5s")."""
    if not isinstance(duration, str) or not re.fullmatch(r"\d+(\.\d+)?s", duration):
        raise SpecError(f"Invalid value for {where}: {duration!r} (write e.g. '3600s').")
    value = float(duration[:-1])
    if value <= 0:
        raise SpecError(f"{where} must be positive.")
    return value


def replica_environments(
    job_id: str, body: dict[str, Any], pools: list[tuple[int, dict[str, Any]]], ports: Any
) -> dict[str, dict[str, str]]:
    """replica name (``workerpool1-0``) -> the environment Vertex sets in it: CLUSTER_SPEC,
    TF_CONFIG and AIP_*. ``ports`` gives each replica its own port on 127.0.0.1 (on Vertex
    every replica has its own host, ``workerpoolN-I:2222``)."""
    addresses = {
        index: [f"127.0.0.1:{next(ports)}" for _ in range(int(pool["replicaCount"]))]
        for index, pool in pools
    }
    cluster_spec = {f"workerpool{i}": hosts for i, hosts in addresses.items()}
    tf_cluster = {TASK_TYPES[i]: hosts for i, hosts in addresses.items()}
    output = (body.get("jobSpec") or {}).get("baseOutputDirectory", {}).get("outputUriPrefix")
    environments = {}
    for index, hosts in addresses.items():
        for replica in range(len(hosts)):
            name = f"workerpool{index}-{replica}"
            env = {
                "CLUSTER_SPEC": json.dumps(
                    {
                        "cluster": cluster_spec,
                        "environment": "cloud",
                        "task": {"type": f"workerpool{index}", "index": replica},
                        "job": json.dumps(body.get("jobSpec", {})),
                    }
                ),
                "TF_CONFIG": json.dumps(
                    {
                        "cluster": tf_cluster,
                        "environment": "cloud",
                        "task": {"type": TASK_TYPES[index], "index": replica},
                    }
                ),
                "CLOUD_ML_JOB_ID": job_id,
                "AIP_JOB_ID": job_id,
                "AIP_TASK_NAME": name,
            }
            if output:
                base = output.rstrip("/")
                env.update(
                    AIP_MODEL_DIR=f"{base}/model/",
                    AIP_CHECKPOINT_DIR=f"{base}/checkpoints/",
                    AIP_TENSORBOARD_LOG_DIR=f"{base}/logs/",
                )
            environments[name] = env
    return environments
