"""zenml-core's own backends, registered through the same hooks as any external plugin."""

from __future__ import annotations

from zenml_core.hookspecs import Register, hookimpl


@hookimpl
def register_orchestrators(register: Register) -> None:
    from zenml_core.backends.local import LocalOrchestrator

    register("local", LocalOrchestrator)


@hookimpl
def register_processing_backends(register: Register) -> None:
    from zenml_core.backends.local import LocalProcessingBackend

    register("local", LocalProcessingBackend)


@hookimpl
def register_training_backends(register: Register) -> None:
    from zenml_core.backends.local import LocalTrainingBackend

    register("local", LocalTrainingBackend)


@hookimpl
def register_artifact_stores(register: Register) -> None:
    from zenml_core.artifacts.local import LocalArtifactStore

    register("file", LocalArtifactStore)


@hookimpl
def register_metadata_stores(register: Register) -> None:
    from zenml_core.metadata.mlmd import MySQLMetadataStore, SQLiteMetadataStore

    register("sqlite", SQLiteMetadataStore)
    register("mysql", MySQLMetadataStore)
