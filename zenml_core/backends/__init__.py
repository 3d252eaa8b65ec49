"""The three backend kinds' base classes, and the built-in local backends."""

from zenml_core.backends.base import BaseOrchestrator, BaseProcessingBackend, BaseTrainingBackend
from zenml_core.backends.local import (
    LocalOrchestrator,
    LocalProcessingBackend,
    LocalTrainingBackend,
)

__all__ = [
    "BaseOrchestrator",
    "BaseProcessingBackend",
    "BaseTrainingBackend",
    "LocalOrchestrator",
    "LocalProcessingBackend",
    "LocalTrainingBackend",
]
