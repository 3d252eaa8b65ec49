"""Entry point of zenml-gcp: the hooks zenml-core calls to find this plugin's backends.

Kept light: classes are imported inside the hooks, and google-cloud-storage inside the methods
that use it. Provides the gs:// artifact store; the GCP VM orchestrator is not built yet.
"""

from zenml_core import hookimpl


@hookimpl
def register_artifact_stores(register):  # type: ignore[no-untyped-def]
    from zenml_gcp.artifact_store import GCSArtifactStore

    register("gs", GCSArtifactStore)
