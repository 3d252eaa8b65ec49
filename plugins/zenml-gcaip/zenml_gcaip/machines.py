"""Which accelerators each Vertex AI machine family takes, checked before any request, so a
wrong pair costs an error message instead of a refused (or worse, queued) job.

Source: https://cloud.google.com/vertex-ai/docs/training/configure-compute (T4, V100, P100 and
P4 on N1; A100 on A2; H100 on A3; L4 on G2; K80 is gone).
"""

from __future__ import annotations

import re

from zenml_core.exceptions import ConfigError
from zenml_gcp.google import carried_gpus

#: accelerator -> (machine family, counts one machine may take; None: the count the machine
#: type carries, e.g. a2-highgpu-2g carries 2)
ACCELERATORS: dict[str, tuple[str, tuple[int, ...] | None]] = {
    "NVIDIA_TESLA_T4": ("n1", (1, 2, 4)),
    "NVIDIA_TESLA_V100": ("n1", (1, 2, 4, 8)),
    "NVIDIA_TESLA_P100": ("n1", (1, 2, 4)),
    "NVIDIA_TESLA_P4": ("n1", (1, 2, 4)),
    "NVIDIA_TESLA_A100": ("a2", None),
    "NVIDIA_A100_80GB": ("a2", None),
    "NVIDIA_H100_80GB": ("a3", None),
    "NVIDIA_L4": ("g2", None),
}
MACHINE_TYPE = re.compile(
    r"^(n1|n2|n2d|e2|c2|c2d|c3|n4)-(standard|highmem|highcpu)-\d+$|^(a2|a3)-(highgpu|megagpu|"
    r"ultragpu)-\d+g$|^g2-standard-\d+$"
)


def check_machine(
    what: str, machine_type: str, accelerator_type: str | None, accelerator_count: int
) -> None:
    """``ConfigError`` naming the problem and the fix for a pair Vertex AI would refuse."""
    if not isinstance(machine_type, str) or not MACHINE_TYPE.match(machine_type):
        raise ConfigError(
            f"{what}: machine_type {machine_type!r} is not a Vertex AI training machine type: "
            "write e.g. 'n1-standard-8', 'a2-highgpu-1g', 'g2-standard-8' or 'e2-standard-4'."
        )
    if isinstance(accelerator_count, bool) or not isinstance(accelerator_count, int):
        raise ConfigError(f"{what}: accelerator_count must be a whole number.")
    if (accelerator_type is None) != (accelerator_count == 0):
        raise ConfigError(
            f"{what}: accelerator_type and accelerator_count are set together or not at all "
            f"(got accelerator_type={accelerator_type!r}, accelerator_count="
            f"{accelerator_count}): e.g. accelerator_type='NVIDIA_TESLA_T4', "
            "accelerator_count=1."
        )
    carried = carried_gpus(machine_type)
    if accelerator_type is None:
        if carried:
            raise ConfigError(
                f"{what}: machine type {machine_type!r} comes with {carried} GPU(s): set "
                f"accelerator_type and accelerator_count={carried}."
            )
        return
    if accelerator_type not in ACCELERATORS:
        raise ConfigError(
            f"{what}: accelerator_type {accelerator_type!r} is not one Vertex AI trains on "
            f"(K80 is retired); choose one of {sorted(ACCELERATORS)}."
        )
    family, counts = ACCELERATORS[accelerator_type]
    if machine_type.split("-", 1)[0] != family:
        suggestion = {"n1": "n1-standard-8", "a2": "a2-highgpu-1g", "a3": "a3-highgpu-8g",
                      "g2": "g2-standard-8"}[family]  # fmt: skip
        raise ConfigError(
            f"{what}: {accelerator_type} is attached to {family.upper()} machines only, not "
            f"{machine_type!r}: use a {family}- machine type (e.g. {suggestion!r})."
        )
    allowed = (carried,) if counts is None else counts
    if accelerator_count not in allowed:
        raise ConfigError(
            f"{what}: {machine_type} takes accelerator_count in {list(allowed)} of "
            f"{accelerator_type}, not {accelerator_count}."
        )
