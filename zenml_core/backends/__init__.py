"""Backend and store base classes, and the built-in local backends."""

from zenml_core.backends.base import (
    KINDS,
    BaseArtifactStore,
    BaseComponent,
    BaseMetadataStore,
    BaseOrchestrator,
    BaseProcessingBackend,
    BaseTrainingBackend,
)
from zenml_core.backends.local import (
    LocalOrchestrator,
    LocalProcessingBackend,
    LocalTrainingBackend,
)

__all__ = [
    "KINDS",
    "BaseArtifactStore",
    "BaseComponent",
    "BaseMetadataStore",
    "BaseOrchestrator",
    "BaseProcessingBackend",
    "BaseTrainingBackend",
    "LocalOrchestrator",
    "LocalProcessingBackend",
    "LocalTrainingBackend",
]
