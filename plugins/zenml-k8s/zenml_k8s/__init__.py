"""zenml-k8s: Kubernetes Job orchestrator for zenml-core."""

__version__ = "0.1.0"
