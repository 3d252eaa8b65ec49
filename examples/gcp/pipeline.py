"""The quickstart on a Google Cloud VM: the same pipeline, run on a Spot VM in your project.

The VM needs what this machine has: the data (uploaded next to the artifacts in GCS), the
artifact store (gs://), and the metadata store: a Cloud SQL for MySQL instance, reached here
and on the VM through the Cloud SQL Auth Proxy on 127.0.0.1:3306 (run it here with
``cloud-sql-proxy --port 3306 PROJECT:REGION:INSTANCE``), or any MySQL server both reach. The
MySQL password travels to the VM through Secret Manager, from ZENML_MYSQL_PASSWORD here.

    pip install zenml-core zenml-gcp
    export ZENML_MYSQL_PASSWORD=...
    python examples/gcp/pipeline.py --project my-project --zone europe-west1-b \\
        --artifact-store gs://BUCKET/zenml --cloudsql my-project:europe-west1:zenml \\
        [--image REGION-docker.pkg.dev/my-project/ml/zenml-gcp:TAG] [--fallback-zone ZONE]

The image must contain zenml-gcp: build one FROM the base image with
``zenml docker build IMAGE -p zenml-gcp --push`` (see docs/gcp.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from zenml_core.metadata import MySQLMetadataStore
from zenml_gcp.orchestrator import OrchestratorGCPBackend

QUICKSTART = Path(__file__).resolve().parents[1] / "quickstart"


def quickstart() -> Any:
    spec = importlib.util.spec_from_file_location("quickstart", QUICKSTART / "pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upload_data(artifact_store: str) -> str:
    """Put the bundled CSV in the bucket (once) so that the VM can read it."""
    from google.cloud import storage

    uri = f"{artifact_store.rstrip('/')}/data/churn.csv"
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    blob = storage.Client().bucket(bucket).blob(name)
    if not blob.exists():
        blob.upload_from_filename(str(QUICKSTART / "churn.csv"))
    return uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--zone", default="us-central1-a")
    parser.add_argument("--fallback-zone", action="append", default=[], dest="fallback_zones")
    parser.add_argument("--artifact-store", required=True, help="gs://BUCKET/PREFIX")
    parser.add_argument("--cloudsql", help="PROJECT:REGION:INSTANCE (the proxy runs on the VM)")
    parser.add_argument("--mysql-host", default="127.0.0.1")
    parser.add_argument("--mysql-port", type=int, default=3306)
    parser.add_argument("--mysql-user", default="zenml")
    parser.add_argument("--mysql-database", default="zenml")
    parser.add_argument("--image", help="default: zenml-core's base image (it lacks zenml-gcp)")
    parser.add_argument("--machine-type", default="e2-standard-4")
    parser.add_argument("--standard", action="store_true", help="not Spot: standard capacity")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the run")
    parser.add_argument("--api-endpoint", help=argparse.SUPPRESS)  # the tests' emulator
    args = parser.parse_args()

    if not os.environ.get("ZENML_MYSQL_PASSWORD"):
        parser.error("set ZENML_MYSQL_PASSWORD: it reaches the VM through Secret Manager")
    endpoints = {"api_endpoint": args.api_endpoint,
                 "secret_manager_endpoint": args.api_endpoint}  # fmt: skip
    orchestrator = OrchestratorGCPBackend(
        project=args.project,
        zone=args.zone,
        fallback_zones=args.fallback_zones,
        machine_type=args.machine_type,
        image=args.image,
        spot=not args.standard,
        cloudsql_connection_name=args.cloudsql,
        env=dict(item.split("=", 1) for item in args.env),
        **{k: v for k, v in endpoints.items() if v},
    )
    metadata = MySQLMetadataStore(
        host=args.mysql_host,
        port=args.mysql_port,
        username=args.mysql_user,
        database=args.mysql_database,
    )
    pipeline = quickstart().build(csv_path=upload_data(args.artifact_store))
    result = pipeline.run(
        backend=orchestrator, metadata_store=metadata, artifact_store=args.artifact_store
    )
    print(f"run {result.run_id}: {result.status}")
    print(f"  eval: {json.dumps(result.load('evaluator')['overall'])}")


if __name__ == "__main__":
    main()
