"""Steps that take long enough to be killed in the middle of writing their outputs."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from zenml_core import step


@step
def make(n: int = 200) -> list:
    return list(range(n))


@step
def write_shards(x: list, shards: int = 40, delay: float = 0.01) -> Path:
    folder = Path(tempfile.mkdtemp())
    for i in range(shards):
        (folder / f"shard-{i:03d}.txt").write_text("\n".join(map(str, x)) * 50)
        time.sleep(delay)
    return folder


@step
def count(shards: Path) -> int:
    return sum(1 for _ in shards.iterdir())


def _wait_for(path: Path, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} never appeared")
        time.sleep(0.05)


@step
def gate(tag: str, folder: str) -> list:
    """Waits for ``folder/go-TAG``; the same output whatever the tag."""
    _wait_for(Path(folder) / f"go-{tag}")
    return [1, 2, 3]


@step
def counted(x: list) -> int:
    """Waits for ``$ZENML_TEST_GATES/work-go``, then counts that it ran."""
    import os

    folder = Path(os.environ["ZENML_TEST_GATES"])
    _wait_for(folder / "work-go")
    with (folder / "executions").open("a") as log:
        log.write("ran\n")
    return sum(x)
