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
