"""The quickstart: predict customer churn from a bundled CSV on the embedded defaults.

CSV -> split -> preprocess -> train (Keras) -> evaluate, with lineage in SQLite and artifacts
in .zenml/; then an HTML report of the run. Run it again: every step comes from the cache.

    python examples/quickstart/pipeline.py
"""

from __future__ import annotations

import json
from pathlib import Path

from zenml_core.progress import Printer
from zenml_core.report import REPORT_FILE, write_report
from zenml_core.runlog import log_path
from zenml_core.steps import (
    CSVSource,
    Evaluator,
    RandomSplit,
    StandardPreprocesser,
    TFFeedForwardTrainer,
    TrainingPipeline,
)

HERE = Path(__file__).parent


def build(
    csv_path: str = str(HERE / "churn.csv"), trainer_backend: object | None = None
) -> TrainingPipeline:
    """The pipeline; ``csv_path`` may be a URI of an object store (a run elsewhere reads it);
    ``trainer_backend`` runs the trainer elsewhere (e.g. on Vertex AI, examples/vertex)."""
    pipeline = TrainingPipeline("quickstart")
    pipeline.add_datasource(
        CSVSource(
            path=csv_path,
            label="churned",
            columns={"tenure_months": "int", "monthly_charges": "float", "plan": "string"},
        )
    )
    pipeline.add_split(RandomSplit(split_map={"train": 0.7, "eval": 0.3}, seed=42))
    pipeline.add_preprocesser(StandardPreprocesser(label="churned"))
    trainer = TFFeedForwardTrainer(layers=[32, 16], epochs=15, batch_size=32)
    pipeline.add_trainer(
        trainer if trainer_backend is None else trainer.with_backend(trainer_backend)
    )
    pipeline.add_evaluator(Evaluator(slices=["plan"]))
    return pipeline


def main() -> None:
    result = build().run(progress=Printer())  # the look of `zenml run`
    report = write_report(result.run_id, result.metadata_store, result.artifact_store)
    metrics = result.load("evaluator")
    print(f"run {result.run_id}: {result.status}")
    print(f"  metadata:  {result.metadata_store.path}")  # type: ignore[attr-defined]
    print(f"  artifacts: {result.artifact_store.root}")
    print(f"  report:    {report}/{REPORT_FILE}")
    print(f"  log:       {log_path(result.run_id)}")  # what the libraries said
    print(f"  eval:      {json.dumps(metrics['overall'])}")
    for plan, values in metrics["slices"]["plan"].items():
        print(f"    plan={plan:<9} {json.dumps(values)}")


if __name__ == "__main__":
    main()
