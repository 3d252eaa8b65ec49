"""A pipeline of user-defined steps on the embedded defaults (SQLite metadata, local artifacts).

CSV -> deterministic split -> feature statistics -> nearest-centroid classifier -> accuracy.
Plain Python on purpose: it shows the step decorator, typed inputs and outputs, lineage and
caching without Beam or TensorFlow. Run it twice: the second run is fully cached.

    python examples/custom_steps/pipeline.py
"""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path

from zenml_core import Outputs, Pipeline, step

HERE = Path(__file__).parent
FEATURES = ["sepal", "petal"]


@step
def load_csv(path: str) -> list:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path} has no rows")
    missing = [c for c in [*FEATURES, "label"] if c not in rows[0]]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}")
    return [{**{f: float(r[f]) for f in FEATURES}, "label": int(r["label"])} for r in rows]


@step
def split(rows: list, eval_share: float = 0.3) -> Outputs(train=list, eval=list):
    """Each row goes to eval by a hash of its content: the same rows always split the same way."""

    def bucket(row: dict) -> float:
        digest = hashlib.sha256(repr(sorted(row.items())).encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    return {
        "train": [r for r in rows if bucket(r) >= eval_share],
        "eval": [r for r in rows if bucket(r) < eval_share],
    }


@step
def statistics(rows: list) -> dict:
    stats = {}
    for feature in FEATURES:
        values = [r[feature] for r in rows]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0
        stats[feature] = {"mean": mean, "std": std}
    return stats


@step(kind="training")
def train_centroids(rows: list, stats: dict) -> dict:
    """Nearest-centroid classifier on standardised features."""
    centroids: dict[str, list[float]] = {}
    for label in sorted({r["label"] for r in rows}):
        members = [r for r in rows if r["label"] == label]
        centroids[str(label)] = [
            sum((r[f] - stats[f]["mean"]) / stats[f]["std"] for r in members) / len(members)
            for f in FEATURES
        ]
    return centroids


@step
def evaluate(rows: list, stats: dict, model: dict) -> dict:
    def predict(row: dict) -> int:
        x = [(row[f] - stats[f]["mean"]) / stats[f]["std"] for f in FEATURES]
        return int(min(model, key=lambda label: math.dist(x, model[label])))

    correct = sum(predict(r) == r["label"] for r in rows)
    return {"accuracy": correct / len(rows), "examples": len(rows)}


def build() -> Pipeline:
    pipeline = Pipeline("custom-steps")
    data = pipeline.add_step(load_csv(path=str(HERE / "flowers.csv")))
    parts = pipeline.add_step(split(rows=data))
    stats = pipeline.add_step(statistics(rows=parts["train"]))
    model = pipeline.add_step(train_centroids(rows=parts["train"], stats=stats))
    pipeline.add_step(evaluate(rows=parts["eval"], stats=stats, model=model))
    return pipeline


if __name__ == "__main__":
    import sys

    def show(event: str, name: str, detail: str) -> None:
        print(f"  [{event:>9}] {name:<16} {detail}", file=sys.stderr)

    result = build().run(progress=show)
    print(f"run {result.run_id}: {result.status}")
    print(f"  metadata:  {result.metadata_store.path}")  # type: ignore[attr-defined]
    print(f"  artifacts: {result.artifact_store.root}")
    print(f"  eval:      {result.load('evaluate')}")
