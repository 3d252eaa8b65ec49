"""zenml-gcp: GCP VM orchestrator and the gs:// artifact store for zenml-core."""

__version__ = "0.1.0"
