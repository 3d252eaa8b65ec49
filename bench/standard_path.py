"""The whole standard data path against a plain pandas script doing the same work, on 2 cores:
CSV -> 80/20 split by a hash of each row -> standardise the numeric columns and one-hot encode
the categorical one (fitted on train) -> Parquet per split.

Ours is a pipeline of CSVSource, RandomSplit and StandardPreprocesser on the local processing
backend (in process, in 2 worker processes, and running_mode="auto" choosing between them),
lineage on, cache off. Pandas reads the CSV with its pyarrow engine (its fastest). Each side
runs in a process of its own, timed from inside (imports are not the work) with its peak memory
(its own and its children's), 3 times interleaved. Ratio = ours / pandas, medians. The last
row runs ours alone over 30M rows: memory must not grow with the data.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

SIZES = (1_000_000, 3_000_000)
#: runs of each side per size, interleaved; rows give medians (single runs of the pandas
#: script varied from 6.3 s to 8.8 s at 3M rows on one machine)
REPEATS = 3
LARGE = 30_000_000
NUMERIC = 10
CITIES = 20

GENERATE = (
    textwrap.dedent("""
    import sys
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path, rows = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(0)
    with pacsv.CSVWriter(path, pa.schema(
        [(f"x{i}", pa.float64()) for i in range(NUMERIC)]
        + [("city", pa.string()), ("label", pa.int64())]
    )) as writer:
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            columns = {f"x{i}": np.round(rng.normal(i, 1 + i, n), 6) for i in range(NUMERIC)}
            columns["city"] = rng.choice([f"city-{i}" for i in range(CITIES)], n)
            columns["label"] = rng.integers(0, 2, n)
            writer.write_table(pa.table(columns))
""")
    .replace("NUMERIC", str(NUMERIC))
    .replace("CITIES", str(CITIES))
)

PEAK = textwrap.dedent("""
    def peak_mib():
        import resource
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return max(own, children) / 1024
""")

PANDAS = PEAK + textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import pandas as pd

    csv, out = sys.argv[1], Path(sys.argv[2])
    start = time.perf_counter()
    frame = pd.read_csv(csv, engine="pyarrow")
    position = pd.util.hash_pandas_object(frame, index=False).to_numpy() / 2.0**64
    splits = {"train": frame[position < 0.8], "eval": frame[position >= 0.8]}
    numeric = [c for c in frame.columns if c.startswith("x")]
    train = splits["train"]
    means, stds = train[numeric].mean(), train[numeric].std(ddof=0)
    vocabulary = train["city"].value_counts().index[:100]
    for split, part in splits.items():
        result = ((part[numeric] - means) / stds).astype("float32")
        city = pd.Categorical(part["city"], categories=vocabulary)
        dummies = pd.get_dummies(city, prefix="city", prefix_sep="=", dtype="float32")
        result = pd.concat([result, dummies.set_index(result.index), part[["label"]]], axis=1)
        (out / split).mkdir(parents=True)
        result.to_parquet(out / split / "part.parquet")
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rows": len(frame), "peak_mib": peak_mib()}))
""")

OURS = PEAK + textwrap.dedent("""
    import json, sys, time
    from zenml_core import Pipeline
    from zenml_core.backends import LocalProcessingBackend
    from zenml_core.steps import CSVSource, RandomSplit, StandardPreprocesser
    import apache_beam, pandas, pyarrow.parquet  # imports are not the work

    # its worker servers are kept on 127.0.0.1 by bind_loopback.so (see _measure)
    csv, mode = sys.argv[1], sys.argv[2]
    backend = {
        "in_memory": LocalProcessingBackend(running_mode="in_memory"),
        "multi_processing": LocalProcessingBackend(
            running_mode="multi_processing", num_workers=2, listen_on_all_interfaces=True
        ),
        # the default mode, given workers: it chooses between the two and says which
        "auto": LocalProcessingBackend(num_workers=2, listen_on_all_interfaces=True),
    }[mode]
    pipeline = Pipeline("standard-path")
    source = pipeline.add_step(CSVSource(path=csv, label="label"))
    split = pipeline.add_step(
        RandomSplit(split_map={"train": 0.8, "eval": 0.2}).connect(data=source)
    )
    pipeline.add_step(StandardPreprocesser().connect(data=split).with_name("preprocess"))
    start = time.perf_counter()
    result = pipeline.run(backend, enable_cache=False)
    seconds = time.perf_counter() - start
    transformed = result.load("preprocess", "transformed")
    rows = sum(transformed.num_rows(s) for s in transformed.splits)
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_mib": peak_mib()}))
""")

CHOSEN = re.compile(r"zenml: Beam job \S+ runs (in this process|on \d+ workers)")


def _measure(script: str, *args: str, cwd: Path) -> dict[str, Any]:
    from zenml_loopback.listeners import preload_library

    (cwd / "measured.py").write_text(script)
    # Beam's worker processes bind '[::]'; the preloaded library keeps them on 127.0.0.1
    env = {**os.environ, "LD_PRELOAD": preload_library()}
    done = subprocess.run(
        [sys.executable, "measured.py", *args], cwd=cwd, capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script.splitlines()[-1]} failed:\n{done.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    measured["chosen"] = sorted({m.group(1) for m in CHOSEN.finditer(done.stdout)})
    return measured


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's runs as one: the median time, the largest peak, every mode it said."""
    assert len({r["rows"] for r in runs}) == 1, runs
    return {
        "rows": runs[0]["rows"],
        "seconds": statistics.median(r["seconds"] for r in runs),
        "peak_mib": max(r["peak_mib"] for r in runs),
        "chosen": sorted({mode for r in runs for mode in r.get("chosen", [])}),
    }


def _generate(path: Path, rows: int) -> None:
    subprocess.run([sys.executable, "-c", GENERATE, str(path), str(rows)], check=True)


def _project(root: Path, name: str) -> Path:
    project = root / name
    (project / ".zenml").mkdir(parents=True)
    return project


def run() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for size in SIZES:
        with tempfile.TemporaryDirectory(prefix="zenml-bench-path-") as tmp:
            root = Path(tmp)
            csv = root / "data.csv"
            _generate(csv, size)
            modes = ["in_memory", "multi_processing"] + (["auto"] if size == SIZES[-1] else [])
            runs: dict[str, list[dict[str, Any]]] = {"pandas": [], **{m: [] for m in modes}}
            for repeat in range(REPEATS):  # interleaved: the machine's drift hits every side
                out = root / f"pandas-{repeat}"
                runs["pandas"].append(_measure(PANDAS, str(csv), str(out), cwd=root))
                for mode in modes:
                    project = _project(root, f"{mode}-{repeat}")
                    runs[mode].append(_measure(OURS, str(csv), mode, cwd=project))
        pandas, one, two = (_medians(runs[m]) for m in ("pandas", "in_memory", "multi_processing"))
        assert one["rows"] == two["rows"] == pandas["rows"], (one, two, pandas)
        if size == SIZES[-1]:
            auto = _medians(runs["auto"])
            assert auto["rows"] == pandas["rows"], (auto, pandas)
        label = f"{size // 1_000_000}M rows"
        target = 1.5 if size == 1_000_000 else 1.0
        for name, ours in (("in process", one), ("2 worker processes", two)):
            ratio = ours["seconds"] / pandas["seconds"]
            rows.append(
                {
                    "benchmark": (
                        f"standard path {label}, {name} / pandas ({ours['seconds']:.1f} s / "
                        f"{pandas['seconds']:.1f} s; peak {ours['peak_mib']:.0f} / "
                        f"{pandas['peak_mib']:.0f} MiB)"
                    ),
                    "value": f"{ratio:.2f}x",
                    "target": f"<= {target:g}x",
                    "ok": ratio <= target,
                    "heavy modules": [],
                }
            )
        if size == SIZES[-1]:
            rows.append(
                {
                    "benchmark": f"standard path {label}: 2 worker processes / in process",
                    "value": f"{two['seconds'] / one['seconds']:.2f}x",
                    "target": "< 1x",
                    "ok": two["seconds"] < one["seconds"],
                    "heavy modules": [],
                }
            )
            # what running_mode='auto' chose, from the line each job prints, against the
            # mode measured faster just above
            faster = "on 2 workers" if two["seconds"] < one["seconds"] else "in this process"
            chosen = auto["chosen"]
            rows.append(
                {
                    "benchmark": (
                        f"standard path {label}: running_mode='auto' with 2 workers ran "
                        f"{' / '.join(chosen) or 'without saying'} ({auto['seconds']:.1f} s)"
                    ),
                    "value": ", ".join(chosen) or "nothing said",
                    "target": f"{faster} (faster above)",
                    "ok": chosen == [faster],
                    "heavy modules": [],
                }
            )
    if os.environ.get("ZENML_BENCH_LARGE", "1") != "0":
        with tempfile.TemporaryDirectory(prefix="zenml-bench-path-") as tmp:
            root = Path(tmp)
            csv = root / "data.csv"
            _generate(csv, LARGE)
            large = _measure(OURS, str(csv), "in_memory", cwd=_project(root, "large"))
        rows.append(
            {
                "benchmark": (
                    f"standard path {LARGE // 1_000_000}M rows, in process: peak memory "
                    f"({large['rows'] / large['seconds'] / 1e6:.2f}M rows/s, "
                    f"{large['seconds']:.0f} s)"
                ),
                "value": f"{large['peak_mib']:.0f} MiB",
                "target": "< 1536 MiB",
                "ok": large["peak_mib"] < 1536,
                "heavy modules": [],
            }
        )
    return rows


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
