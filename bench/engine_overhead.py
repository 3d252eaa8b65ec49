"""Engine overhead: a chain of N no-op steps as a whole process, SQLite ml-metadata lineage on.

fixed cost = the N=1 first run's process time; per-step cost = slope between N=1 and N=50,
first run (every step executes and is recorded) and fully cached (every step is a cache hit).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SIZES = (1, 10, 50)
REPEATS = 7

SCRIPT = textwrap.dedent("""
    import sys
    from zenml_core import Pipeline, step

    @step
    def noop(x: int) -> int:
        return x

    n = int(sys.argv[1])
    pipeline = Pipeline("chain")
    previous = pipeline.add_step(noop(x=0).with_name("s0"))
    for i in range(1, n):
        previous = pipeline.add_step(noop(x=previous).with_name(f"s{i}"))
    result = pipeline.run()
    assert result.status == "completed", result.status
""")


def _timed_run(folder: Path, n: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "chain.py", str(n)], cwd=folder, check=True)
    return time.perf_counter() - start


def run() -> list[dict[str, object]]:
    first: dict[int, list[float]] = {n: [] for n in SIZES}
    cached: dict[int, list[float]] = {n: [] for n in SIZES}
    for _ in range(REPEATS):
        for n in SIZES:
            with tempfile.TemporaryDirectory(prefix="zenml-bench-") as tmp:
                folder = Path(tmp)
                (folder / ".zenml").mkdir()  # the project's embedded defaults live here
                (folder / "chain.py").write_text(SCRIPT)
                first[n].append(_timed_run(folder, n))
                cached[n].append(_timed_run(folder, n))
    t1 = {n: statistics.median(v) for n, v in first.items()}
    tc = {n: statistics.median(v) for n, v in cached.items()}
    # slopes from the runs of one repetition, then the median: drift between repetitions
    # (other load on the machine) cancels out
    per_step_first = statistics.median(
        (b - a) / 49 for a, b in zip(first[1], first[50], strict=True)
    )
    per_step_cached = statistics.median(
        (b - a) / 49 for a, b in zip(cached[1], cached[50], strict=True)
    )
    detail = ", ".join(f"N={n}: {t1[n]:.2f}/{tc[n]:.2f} s" for n in SIZES)
    return [
        {
            "benchmark": f"engine fixed cost (N=1 process, first run) [{detail}]",
            "value": f"{t1[1]:.3f} s",
            "target": "<= 0.6 s",
            "ok": t1[1] <= 0.6,
            "heavy modules": [],
        },
        {
            "benchmark": "engine per-step cost, first run (SQLite lineage)",
            "value": f"{per_step_first * 1000:.2f} ms",
            "target": "<= 3 ms",
            "ok": per_step_first <= 0.003,
            "heavy modules": [],
        },
        {
            "benchmark": "engine per-step cost, fully cached",
            "value": f"{per_step_cached * 1000:.2f} ms",
            "target": "<= 0.5 ms",
            "ok": per_step_cached <= 0.0005,
            "heavy modules": [],
        },
    ]
