"""The backend contract, in one place: the three kinds' base classes, what a backend receives
(``RunRequest``, ``StepRequest``) and returns (``RunResult``), the states runs and steps go
through, and the built-in local backends. The remote-run layer every cloud backend is written
on is ``zenml_core.backends.remote``."""

from zenml_core.backends.base import BaseOrchestrator, BaseProcessingBackend, BaseTrainingBackend
from zenml_core.backends.local import (
    LocalOrchestrator,
    LocalProcessingBackend,
    LocalTrainingBackend,
)
from zenml_core.backends.request import (
    Components,
    RunRequest,
    RunResult,
    StepRequest,
    StepResult,
)
from zenml_core.backends.states import State

__all__ = [
    "BaseOrchestrator",
    "BaseProcessingBackend",
    "BaseTrainingBackend",
    "Components",
    "LocalOrchestrator",
    "LocalProcessingBackend",
    "LocalTrainingBackend",
    "RunRequest",
    "RunResult",
    "State",
    "StepRequest",
    "StepResult",
]
