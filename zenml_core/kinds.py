"""The kinds of component plugins can register: the hook for each and its base class."""

from __future__ import annotations

from zenml_core.artifacts.base import BaseArtifactStore
from zenml_core.backends.base import BaseOrchestrator, BaseProcessingBackend, BaseTrainingBackend
from zenml_core.component import BaseComponent
from zenml_core.metadata.base import BaseMetadataStore

#: kind -> (the hook that registers it, the base class a registered class must subclass)
KINDS: dict[str, tuple[str, type[BaseComponent]]] = {
    "orchestrator": ("register_orchestrators", BaseOrchestrator),
    "processing": ("register_processing_backends", BaseProcessingBackend),
    "training": ("register_training_backends", BaseTrainingBackend),
    "artifact_store": ("register_artifact_stores", BaseArtifactStore),
    "metadata_store": ("register_metadata_stores", BaseMetadataStore),
}
