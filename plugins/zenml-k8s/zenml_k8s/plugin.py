"""Entry point of zenml-k8s: the hooks zenml-core calls to find this plugin's backends.

Kept light: the backend class is imported inside the hook, and the kubernetes client inside the
methods that talk to a cluster.
"""

from zenml_core import hookimpl


@hookimpl
def register_orchestrators(register):  # type: ignore[no-untyped-def]
    from zenml_k8s.orchestrator import KubernetesOrchestrator

    register("kubernetes", KubernetesOrchestrator)
