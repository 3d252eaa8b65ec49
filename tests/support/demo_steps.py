"""Steps used by the engine tests (a real module, importable by child processes too)."""

from __future__ import annotations

import threading
from pathlib import Path

from zenml_core import Outputs, Pipeline, Step, StepContext, step
from zenml_core.backends import LocalTrainingBackend


@step
def produce(n: int = 3) -> list:
    return list(range(n))


@step
def double(x: list, factor: int = 2) -> Outputs(doubled=list, total=int):
    return {"doubled": [v * factor for v in x], "total": sum(x) * factor}


@step
def describe(total: int, ctx: StepContext) -> str:
    return f"{ctx.step} saw {total}"


@step
def fragile(x: list, fail_if_exists: str) -> list:
    """Fails while the flag file exists: lets a test fail a run and then resume it."""
    if Path(fail_if_exists).exists():
        raise RuntimeError(f"flag {fail_if_exists} is set")
    return [v + 1 for v in x]


@step
def passthrough(x: list) -> list:
    return x


@step
def press_ctrl_c(x: list) -> list:
    raise KeyboardInterrupt


@step
def total(x: list) -> int:
    return sum(x)


@step
def pair(x: list) -> Outputs(first=int, rest=list):
    return x[0], x[1:]


@step
def bad_outputs(x: list) -> Outputs(a=int, b=int):
    return {"a": 1}


@step
def write_file(text: str) -> Path:
    import tempfile

    folder = Path(tempfile.mkdtemp())
    (folder / "model.txt").write_text(text)
    return folder


@step
def read_file(model: Path) -> str:
    return (model / "model.txt").read_text()


@step(kind="training")
def fit(x: list, epochs: int = 1) -> float:
    return sum(x) / len(x) * epochs


# Both branch steps must be running at once for the barrier to open.
BARRIER = threading.Barrier(2, timeout=20)


@step
def left(x: list) -> int:
    BARRIER.wait()
    return 1


@step
def right(x: list) -> int:
    BARRIER.wait()
    return 2


class Scale(Step):
    """A class-based step, as the standard steps are written."""

    def entrypoint(self, x: list, by: float = 1.0) -> list:
        return [v * by for v in x]


def chain(name: str = "chain") -> Pipeline:
    pipeline = Pipeline(name)
    a = pipeline.add_step(produce(n=4))
    b = pipeline.add_step(double(x=a, factor=3))
    pipeline.add_step(describe(total=b["total"]))
    return pipeline


def resumable(flag: str) -> Pipeline:
    pipeline = Pipeline("resumable")
    a = pipeline.add_step(produce(n=3))
    f = pipeline.add_step(fragile(x=a, fail_if_exists=flag))
    pipeline.add_step(total(x=f))
    return pipeline


def trainer_pipeline() -> Pipeline:
    pipeline = Pipeline("trainer")
    a = pipeline.add_step(produce(n=5))
    pipeline.add_step(fit(x=a, epochs=2).with_backend(LocalTrainingBackend()))
    return pipeline


@step
def score(x: list, boost: float = 0.0) -> dict:
    # shaped like the Evaluator's result, so listings show its metrics
    return {"task": "classification", "overall": {"accuracy": 0.5 + boost, "examples": len(x)}}


def scored(boost: float) -> Pipeline:
    pipeline = Pipeline("scored")
    a = pipeline.add_step(produce(n=4))
    pipeline.add_step(score(x=a, boost=boost))
    return pipeline
