"""The quickstart's data steps on Google Dataflow, or on a Flink or Spark job server: the same
steps, another processing backend. CSV -> RandomSplit -> StandardPreprocesser; the split and
the preprocessing run as Dataflow jobs (or portable Beam jobs), the rest here.

    pip install zenml-core zenml-dataflow
    python examples/dataflow/pipeline.py dataflow --project my-project \\
        --region europe-west1 --staging-location gs://BUCKET/dataflow
    python examples/dataflow/pipeline.py portable --job-endpoint localhost:8099 \\
        [--worker-pool localhost:50000]   # EXTERNAL workers; DOCKER (our image) without it

Dataflow's workers run this version's base image unless --image names one built FROM it; its
Beam, Python and protobuf must match this environment's (checked before submitting). The CSV
is read here and the steps' data travels through the staging bucket (see docs/dataflow.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zenml_core import Pipeline
from zenml_core.steps import CSVSource, RandomSplit, StandardPreprocesser

CSV = Path(__file__).resolve().parents[1] / "quickstart" / "churn.csv"


def build(backend: object) -> Pipeline:
    pipeline = Pipeline("quickstart-data")
    source = pipeline.add_step(
        CSVSource(
            path=str(CSV),
            label="churned",
            columns={"tenure_months": "int", "monthly_charges": "float", "plan": "string"},
        )
    )
    split = pipeline.add_step(
        RandomSplit(data=source, split_map={"train": 0.7, "eval": 0.3}, seed=42).with_backend(
            backend
        )
    )
    pipeline.add_step(StandardPreprocesser(data=split, label="churned").with_backend(backend))
    return pipeline


def backend_from(args: argparse.Namespace) -> object:
    if args.where == "dataflow":
        from zenml_dataflow.dataflow import ProcessingDataFlowBackend

        return ProcessingDataFlowBackend(
            project=args.project,
            region=args.region,
            staging_location=args.staging_location,
            sdk_container_image=args.image,
            dataflow_endpoint=args.dataflow_endpoint,
        )
    from zenml_dataflow.portable import PortableProcessingBackend

    if args.worker_pool:
        return PortableProcessingBackend(
            job_endpoint=args.job_endpoint,
            environment_type="EXTERNAL",
            environment_config=args.worker_pool,
        )
    return PortableProcessingBackend(job_endpoint=args.job_endpoint, environment_config=args.image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_subparsers(dest="where", required=True)
    dataflow = where.add_parser("dataflow")
    dataflow.add_argument("--project", required=True)
    dataflow.add_argument("--region", default="us-central1")
    dataflow.add_argument("--staging-location", required=True, help="gs://BUCKET/PREFIX")
    dataflow.add_argument("--image", help="the workers' image (default: our base image)")
    dataflow.add_argument("--dataflow-endpoint", help=argparse.SUPPRESS)  # tests: loopback
    portable = where.add_parser("portable")
    portable.add_argument("--job-endpoint", default="localhost:8099")
    portable.add_argument("--worker-pool", help="HOST:PORT of an EXTERNAL worker pool")
    portable.add_argument("--image", help="DOCKER workers' image (default: our base image)")
    args = parser.parse_args()

    result = build(backend_from(args)).run()
    transformed = result.load("standard_preprocesser", "transformed")
    print(f"run {result.run_id}: {result.status}")
    for split in transformed.splits:
        print(f"  {split}: {transformed.num_rows(split)} rows, preprocessed on {args.where}")


if __name__ == "__main__":
    main()
