"""Engine overhead: N no-op steps as a whole process, SQLite ml-metadata lineage on, as a
chain and as a wide DAG (one step feeding N-1 others).

fixed cost = the N=1 first run's process time; per-step cost = slope between N=1 and N=50,
first run (every step executes and is recorded) and fully cached (every step is a cache hit).
Each step has its own parameter, as the steps of a pipeline differ: the same code on the same
input content has one cache key, and a step would reuse the one before it.
The same pipelines in Kedro (its SequentialRunner, in-memory datasets; it has no cache), in the
venv of its own that ``./dev bench`` makes (``ZENML_BENCH_KEDRO_PYTHON``), run interleaved
with ours: the rows give both and their ratio.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SIZES = (1, 10, 50)
REPEATS = 7
SHAPES = ("chain", "wide")
#: seconds of each run, by shape and number of steps
Runs = dict[str, dict[int, list[float]]]

SCRIPT = textwrap.dedent("""
    import sys
    from zenml_core import Pipeline, step

    @step
    def noop(x: int, index: int) -> int:
        return x

    n, shape = int(sys.argv[1]), sys.argv[2]
    pipeline = Pipeline(shape)
    root = previous = pipeline.add_step(noop(x=0, index=0).with_name("s0"))
    for i in range(1, n):
        upstream = previous if shape == "chain" else root
        previous = pipeline.add_step(noop(x=upstream, index=i).with_name(f"s{i}"))
    result = pipeline.run()
    assert result.status == "completed", result.status
""")


KEDRO_SCRIPT = textwrap.dedent("""
    import logging
    import sys

    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import node, pipeline
    from kedro.runner import SequentialRunner

    logging.getLogger("kedro").setLevel(logging.WARNING)  # a line per node otherwise

    def noop(x):
        return x

    n, shape = int(sys.argv[1]), sys.argv[2]
    nodes = [node(noop, "x0", "x1", name="s0")]
    for i in range(1, n):
        upstream = f"x{i}" if shape == "chain" else "x1"
        nodes.append(node(noop, upstream, f"x{i + 1}", name=f"s{i}"))
    SequentialRunner().run(pipeline(nodes), DataCatalog(datasets={"x0": MemoryDataset(0)}))
""")


def _timed_run(folder: Path, n: int, shape: str, python: str = sys.executable) -> float:
    script = "pipeline.py" if python == sys.executable else "kedro_pipeline.py"
    start = time.perf_counter()
    subprocess.run([python, script, str(n), shape], cwd=folder, check=True)
    return time.perf_counter() - start


def _slope(runs: dict[int, list[float]]) -> float:
    # slopes from the runs of one repetition, then the median: drift between repetitions
    # (other load on the machine) cancels out
    return statistics.median((b - a) / 49 for a, b in zip(runs[1], runs[50], strict=True))


def _against_kedro(what: str, ours: float, theirs: float, unit: str) -> dict[str, object]:
    scale = 1000 if unit == "ms" else 1
    return {
        "benchmark": (
            f"engine {what}: ours / Kedro's ({ours * scale:.2f} / {theirs * scale:.2f} {unit})"
        ),
        "value": f"{ours / theirs:.2f}x",
        "target": "< 1x (ahead)",
        "ok": ours < theirs,
        "heavy modules": [],
    }


def run() -> list[dict[str, object]]:
    first: Runs = {shape: {n: [] for n in SIZES} for shape in SHAPES}
    cached: Runs = {shape: {n: [] for n in SIZES} for shape in SHAPES}
    kedro_python = os.environ.get("ZENML_BENCH_KEDRO_PYTHON", "")
    kedro: Runs = {shape: {n: [] for n in SIZES} for shape in SHAPES}
    for _ in range(REPEATS):
        for shape in SHAPES:
            for n in SIZES:
                with tempfile.TemporaryDirectory(prefix="zenml-bench-") as tmp:
                    folder = Path(tmp)
                    (folder / ".zenml").mkdir()  # the project's embedded defaults live here
                    (folder / "pipeline.py").write_text(SCRIPT)
                    (folder / "kedro_pipeline.py").write_text(KEDRO_SCRIPT)
                    first[shape][n].append(_timed_run(folder, n, shape))
                    cached[shape][n].append(_timed_run(folder, n, shape))
                    if kedro_python:
                        kedro[shape][n].append(_timed_run(folder, n, shape, kedro_python))
    fixed = statistics.median(first["chain"][1])
    detail = ", ".join(
        f"N={n}: {statistics.median(first['chain'][n]):.2f}/"
        f"{statistics.median(cached['chain'][n]):.2f} s"
        for n in SIZES
    )
    rows: list[dict[str, object]] = [
        {
            "benchmark": f"engine fixed cost (N=1 process, first run) [chain {detail}]",
            "value": f"{fixed:.3f} s",
            "target": "<= 0.25 s",
            "ok": fixed <= 0.25,
            "heavy modules": [],
        }
    ]
    if kedro_python:
        kedro_fixed = statistics.median(kedro["chain"][1])
        rows.append(_against_kedro("fixed cost (N=1 process)", fixed, kedro_fixed, "s"))
    else:
        rows.append(
            {
                "benchmark": "engine against Kedro",
                "value": "not run",
                "target": "ZENML_BENCH_KEDRO_PYTHON (./dev bench sets it)",
                "ok": False,
                "heavy modules": [],
            }
        )
    for shape in SHAPES:
        per_step_first, per_step_cached = _slope(first[shape]), _slope(cached[shape])
        if kedro_python:
            rows.append(
                _against_kedro(
                    f"per-step cost, first run, {shape}", per_step_first, _slope(kedro[shape]), "ms"
                )
            )
        rows += [
            {
                "benchmark": f"engine per-step cost, first run, {shape} (SQLite lineage)",
                "value": f"{per_step_first * 1000:.2f} ms",
                "target": "<= 1.5 ms",
                "ok": per_step_first <= 0.0015,
                "heavy modules": [],
            },
            {
                "benchmark": f"engine per-step cost, fully cached, {shape}",
                "value": f"{per_step_cached * 1000:.2f} ms",
                "target": "<= 0.3 ms",
                "ok": per_step_cached <= 0.0003,
                "heavy modules": [],
            },
        ]
    return rows
