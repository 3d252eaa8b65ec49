"""Entry point of zenml-gcp: the hooks zenml-core calls to find this plugin's backends.

Kept light: classes are imported inside the hooks, and the Google libraries inside the
methods that use them. Provides the GCP VM orchestrator (``gcp``) and the gs:// artifact store.
"""

from zenml_core import hookimpl


@hookimpl
def register_orchestrators(register):  # type: ignore[no-untyped-def]
    from zenml_gcp.orchestrator import OrchestratorGCPBackend

    register("gcp", OrchestratorGCPBackend)


@hookimpl
def register_artifact_stores(register):  # type: ignore[no-untyped-def]
    from zenml_gcp.artifact_store import GCSArtifactStore

    register("gs", GCSArtifactStore)
