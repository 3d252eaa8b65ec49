"""StandardPreprocesser (a Beam job over Arrow batches) against the same computation in
single-process pandas, on generated data: 10 numeric columns, 1 categorical, a label.

The same split Parquet data feeds both; each reads it, fits on train (means, deviations, the
categorical vocabulary), transforms every split and writes Parquet. Ratio = ours / pandas.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

SIZES = (1_000_000, 3_000_000)
ROWS_PER_FILE = 1 << 18
ROW_GROUP = 1 << 16


def _make_data(folder: Path, rows: int) -> Path:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    columns = {f"x{i}": rng.normal(i, 1 + i, rows) for i in range(10)}
    columns["city"] = rng.choice([f"city-{i}" for i in range(20)], rows)
    columns["label"] = rng.integers(0, 2, rows)
    table = pa.table(columns)
    train_rows = int(rows * 0.8)
    for split, part in (("train", table.slice(0, train_rows)), ("eval", table.slice(train_rows))):
        (folder / split).mkdir(parents=True)
        for index, offset in enumerate(range(0, part.num_rows, ROWS_PER_FILE)):
            pq.write_table(
                part.slice(offset, ROWS_PER_FILE),
                folder / split / f"part-{index:04d}.parquet",
                row_group_size=ROW_GROUP,
            )
    return folder


def _pandas(data: Path, out: Path) -> None:
    import pandas as pd

    frames = {split: pd.read_parquet(data / split) for split in ("train", "eval")}
    train = frames["train"]
    numeric = [f"x{i}" for i in range(10)]
    means, stds = train[numeric].mean(), train[numeric].std(ddof=0)
    vocabulary = train["city"].value_counts().index[:100]
    for split, frame in frames.items():
        result = ((frame[numeric] - means) / stds).astype("float32")
        city = pd.Categorical(frame["city"], categories=vocabulary)
        dummies = pd.get_dummies(city, prefix="city", prefix_sep="=", dtype="float32")
        result = pd.concat([result, dummies.set_index(result.index), frame[["label"]]], axis=1)
        (out / split).mkdir(parents=True)
        # the same Parquet writer options as the step's, so only the computation differs
        result.to_parquet(out / split / "part.parquet", use_dictionary=False)


def _ours(data: Path, work: Path, backend: object) -> int:
    """Run the step; the rows it wrote."""
    from zenml_core.pipeline.context import StepContext
    from zenml_core.steps import Dataset, StandardPreprocesser

    context = StepContext("bench", "bench-run", "preprocess", backend, work / "tmp", work / "out")
    (work / "tmp").mkdir(parents=True)
    step = StandardPreprocesser(label="label")
    result = step.entrypoint(ctx=context, data=Dataset(data), label="label")
    transformed = result["transformed"]
    written = sum(transformed.num_rows(s) for s in transformed.splits)
    assert written > 0
    return written


def _seconds(action, *args) -> float:  # type: ignore[no-untyped-def]
    return _timed(action, *args)[0]


def _timed(action, *args) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = action(*args)
    return time.perf_counter() - start, result


def run() -> list[dict[str, object]]:
    import apache_beam  # noqa: F401  - imports are not part of the computation measured
    import pandas  # noqa: F401

    from zenml_core.backends import LocalProcessingBackend

    rows = []
    for size in SIZES:
        with tempfile.TemporaryDirectory(prefix="zenml-bench-prep-") as tmp:
            root = Path(tmp)
            data = _make_data(root / "data", size)
            pandas_s = _seconds(_pandas, data, root / "pandas")
            one = _seconds(_ours, data, root / "one", LocalProcessingBackend())
            two = _seconds(
                _ours,
                data,
                root / "two",
                LocalProcessingBackend(
                    running_mode="multi_processing", num_workers=2, listen_on_all_interfaces=True
                ),
            )
        label = f"{size // 1_000_000}M rows"
        target_one = "<= 2x pandas" if size == 1_000_000 else "(reported)"
        target_two = "(reported)" if size == 1_000_000 else "< 1x pandas (ahead)"
        rows.append(
            {
                "benchmark": f"preprocess {label}: in-process Beam / pandas ({pandas_s:.1f} s)",
                "value": f"{one / pandas_s:.2f}x ({one:.1f} s)",
                "target": target_one,
                "ok": one / pandas_s <= 2 if size == 1_000_000 else True,
                "heavy modules": [],
            }
        )
        rows.append(
            {
                "benchmark": f"preprocess {label}: Beam, 2 worker processes / pandas",
                "value": f"{two / pandas_s:.2f}x ({two:.1f} s)",
                "target": target_two,
                "ok": True if size == 1_000_000 else two < pandas_s,
                "heavy modules": [],
            }
        )
    return rows


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
