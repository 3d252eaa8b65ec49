"""The quickstart with its trainer on Vertex AI: the same pipeline, one step moved.

The data steps run here; the trainer step runs as a Vertex AI custom job (a GPU with --gpu,
several machines training one model with --replicas N). The job reads its inputs from and
writes the model to the artifact store (gs://), and records the step in the metadata store (a
MySQL server both this machine and the job reach, e.g. Cloud SQL with a public IP or a private
network). The MySQL password travels to the job through Secret Manager, from
ZENML_MYSQL_PASSWORD here.

    pip install zenml-core zenml-gcaip zenml-gcp
    export ZENML_MYSQL_PASSWORD=...
    python examples/vertex/pipeline.py --project my-project --region europe-west4 \\
        --artifact-store gs://BUCKET/zenml --mysql-host 10.0.0.5 \\
        --image europe-docker.pkg.dev/my-project/ml/zenml-vertex:0.1.0 [--gpu] [--replicas 2]

The image must contain zenml-gcp (gs://) and zenml-gcaip (its secrets): build one FROM the
base image with ``zenml docker build IMAGE -p zenml-gcp -p zenml-gcaip --push`` (with --gpu,
``--base zenmlcore/zenml-core:VERSION-gpu``); see docs/vertex.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from typing import Any

from zenml_core.metadata import MySQLMetadataStore
from zenml_gcaip.training import VertexTrainingBackend

QUICKSTART = Path(__file__).resolve().parents[1] / "quickstart"


def quickstart() -> Any:
    spec = importlib.util.spec_from_file_location("quickstart", QUICKSTART / "pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def backend(project: str, region: str, job_dir: str, gpu: bool = False, replicas: int = 1,
            **more: Any) -> VertexTrainingBackend:  # fmt: skip
    """One n1-standard-4 per replica; with ``gpu``, an n1-standard-8 with a T4 each."""
    machine: dict[str, Any] = {"machine_type": "n1-standard-4"}
    if gpu:
        machine = {"machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_TESLA_T4",
                   "accelerator_count": 1}  # fmt: skip
    return VertexTrainingBackend(
        project=project, region=region, job_dir=job_dir, replica_count=replicas, **machine, **more
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", default="us-central1")
    parser.add_argument("--artifact-store", required=True, help="gs://BUCKET/PREFIX")
    parser.add_argument("--job-dir", help="gs:// output folder of the job (default: beside)")
    parser.add_argument("--image", help="default: zenml-core's base image (it lacks zenml-gcp)")
    parser.add_argument("--gpu", action="store_true", help="one NVIDIA T4 per replica")
    parser.add_argument("--replicas", type=int, default=1, help="machines training together")
    parser.add_argument("--service-account", help="the job's identity")
    parser.add_argument("--mysql-host", required=True)
    parser.add_argument("--mysql-port", type=int, default=3306)
    parser.add_argument("--mysql-user", default="zenml")
    parser.add_argument("--mysql-database", default="zenml")
    args = parser.parse_args()

    trainer_backend = backend(
        args.project,
        args.region,
        args.job_dir or f"{args.artifact_store.rstrip('/')}/vertex",
        gpu=args.gpu,
        replicas=args.replicas,
        image=args.image,
        service_account=args.service_account,
    )
    store = MySQLMetadataStore(  # the password comes from $ZENML_MYSQL_PASSWORD
        host=args.mysql_host,
        port=args.mysql_port,
        username=args.mysql_user,
        database=args.mysql_database,
    )
    pipeline = quickstart().build(trainer_backend=trainer_backend)
    result = pipeline.run(artifact_store=args.artifact_store, metadata_store=store)
    print(f"run {result.run_id}: {result.status}")
    print(f"  eval: {json.dumps(result.load('evaluator')['overall'])}")


if __name__ == "__main__":
    main()
