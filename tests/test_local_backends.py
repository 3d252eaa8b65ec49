"""The built-in local backends pass the same conformance suites as every plugin."""

from zenml_core.backends import LocalOrchestrator, LocalProcessingBackend, LocalTrainingBackend
from zenml_core.testing.conformance import (
    OrchestratorConformance,
    ProcessingBackendConformance,
    TrainingBackendConformance,
)


class TestLocalOrchestrator(OrchestratorConformance):
    backend_class = LocalOrchestrator
    name = "local"
    bad_params = [({"parallelism": 0}, "parallelism")]


class TestLocalProcessingBackend(ProcessingBackendConformance):
    backend_class = LocalProcessingBackend
    name = "local"
    params = {
        "running_mode": "multi_processing",
        "num_workers": 2,
        "listen_on_all_interfaces": True,
    }
    bad_params = [
        ({"running_mode": "multi_threading"}, "multi_threading"),
        ({"listen_on_all_interfaces": False}, "every network interface"),
        ({"num_workers": 0}, "num_workers"),
    ]


class TestLocalTrainingBackend(TrainingBackendConformance):
    backend_class = LocalTrainingBackend
    name = "local"
