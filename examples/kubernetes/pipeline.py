"""The quickstart on Kubernetes: the same pipeline, run as one Job on your cluster.

The pod needs what this machine has: the data (uploaded next to the artifacts in GCS), the
artifact store (gs://), and the metadata store (a MySQL server both can reach). The MySQL
password travels to the pod in a Kubernetes Secret, from ZENML_MYSQL_PASSWORD here.

    pip install zenml-core zenml-k8s zenml-gcp
    export ZENML_MYSQL_PASSWORD=...
    python examples/kubernetes/pipeline.py --artifact-store gs://BUCKET/zenml \\
        --mysql-host 10.0.0.5 --mysql-user zenml --namespace ml [--context my-cluster] \\
        [--image REGISTRY/zenml-gcp-image:TAG]

The image must contain zenml-gcp (for gs://): build one FROM the base image with
``zenml docker build REGISTRY/IMAGE:TAG -p zenml-gcp --push`` (see docs/kubernetes.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

from zenml_core.artifacts import ArtifactStore
from zenml_core.metadata import MySQLMetadataStore
from zenml_k8s.orchestrator import KubernetesOrchestrator

QUICKSTART = Path(__file__).resolve().parents[1] / "quickstart"


def quickstart() -> object:
    spec = importlib.util.spec_from_file_location("quickstart", QUICKSTART / "pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upload_data(artifact_store: str) -> str:
    """Put the bundled CSV in the bucket (once) so that the pod can read it."""
    from google.cloud import storage

    uri = f"{artifact_store.rstrip('/')}/data/churn.csv"
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    blob = storage.Client().bucket(bucket).blob(name)
    if not blob.exists():
        blob.upload_from_filename(str(QUICKSTART / "churn.csv"))
    return uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifact-store", required=True, help="gs://BUCKET/PREFIX")
    parser.add_argument("--mysql-host", required=True)
    parser.add_argument("--mysql-port", type=int, default=3306)
    parser.add_argument("--mysql-user", default="zenml")
    parser.add_argument("--mysql-database", default="zenml")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG or ~/.kube/config")
    parser.add_argument("--image", help="default: zenml-core's base image of this version")
    parser.add_argument("--memory-limit", default="4Gi")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the pod (repeatable)"
    )
    args = parser.parse_args()

    if not os.environ.get("ZENML_MYSQL_PASSWORD"):
        parser.error("set ZENML_MYSQL_PASSWORD: it reaches the pod through a Kubernetes Secret")
    orchestrator = KubernetesOrchestrator(
        namespace=args.namespace,
        context=args.context,
        kubeconfig=args.kubeconfig,
        image=args.image,
        memory_limit=args.memory_limit,
        env=dict(item.split("=", 1) for item in args.env),
    )
    metadata = MySQLMetadataStore(
        host=args.mysql_host,
        port=args.mysql_port,
        username=args.mysql_user,
        database=args.mysql_database,
    )
    pipeline = quickstart().build(csv_path=upload_data(args.artifact_store))  # type: ignore[attr-defined]
    result = pipeline.run(
        backend=orchestrator,
        metadata_store=metadata,
        artifact_store=ArtifactStore(args.artifact_store),
    )
    metrics = result.load("evaluator")
    print(f"run {result.run_id}: {result.status}")
    print(f"  eval: {json.dumps(metrics['overall'])}")


if __name__ == "__main__":
    main()
