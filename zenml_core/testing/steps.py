"""Tiny steps the conformance suites run through a backend (importable anywhere)."""

from __future__ import annotations

import os

from zenml_core.pipeline.step import step


@step
def numbers(count: int = 4) -> list[int]:
    return list(range(count))


@step(kind="training")  # type: ignore[untyped-decorator]  # mypy reads Callable[..., Any] so
def mean_and_pid(values: list[int]) -> dict[str, float]:
    """Says which process ran it, so a suite can tell where a backend ran the step."""
    return {"mean": sum(values) / len(values), "pid": os.getpid()}
