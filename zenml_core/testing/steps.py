"""Tiny steps the conformance suites run through a backend (importable anywhere)."""

from __future__ import annotations

import os
import time

from zenml_core.pipeline.step import step


@step
def numbers(count: int = 4) -> list[int]:
    return list(range(count))


@step(kind="training")  # type: ignore[untyped-decorator]  # mypy reads Callable[..., Any] so
def mean_and_pid(values: list[int], pause: float = 0.0) -> dict[str, float]:
    """Says which process ran it, so a suite can tell where a backend ran the step; ``pause``
    keeps it busy, so a backend that returns before the step ends is caught doing so."""
    time.sleep(pause)
    return {"mean": sum(values) / len(values), "pid": os.getpid()}


FAILURE = "conformance: this step fails on purpose"


@step
def fails(values: list[int]) -> int:
    raise RuntimeError(FAILURE)


@step(kind="training")  # type: ignore[untyped-decorator]
def fails_training(values: list[int]) -> dict[str, float]:
    raise RuntimeError(FAILURE)
