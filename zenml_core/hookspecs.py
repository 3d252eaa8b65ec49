"""The plugin contract: every hook a zenml-core plugin may implement.

A plugin is a module named by an entry point in the ``zenml_core.plugins`` group. It implements
any of these hooks with ``@zenml_core.hookimpl``; each hook hands it a ``register(name, cls)``
callback, and ``name`` is the short word users write in Python or YAML (``kubernetes``,
``dataflow``). An implementation may accept fewer arguments than its spec (pluggy passes only
the ones it names), so arguments added here later break no plugin.

Keep the plugin module light: register classes whose modules import their cloud SDKs inside
the methods that need them, so finding a plugin never imports its SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "zenml_core"
ENTRY_POINT_GROUP = "zenml_core.plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[[str, type[Any]], None]


@hookspec
def register_orchestrators(register: Register) -> None:
    """Register orchestrator backends: where a whole pipeline run lives.

    Call ``register("kubernetes", KubernetesOrchestrator)`` for each; the class must subclass
    ``zenml_core.backends.BaseOrchestrator``.
    """


@hookspec
def register_processing_backends(register: Register) -> None:
    """Register processing backends: where a data step's Beam job runs.

    Call ``register("dataflow", DataflowProcessingBackend)`` for each; the class must subclass
    ``zenml_core.backends.BaseProcessingBackend``.
    """


@hookspec
def register_training_backends(register: Register) -> None:
    """Register training backends: where a trainer step runs.

    Call ``register("gcaip", GCAIPTrainingBackend)`` for each; the class must subclass
    ``zenml_core.backends.BaseTrainingBackend``.
    """


@hookspec
def register_artifact_stores(register: Register) -> None:
    """Register artifact stores by the URI scheme they serve.

    Call ``register("gs", GCSArtifactStore)`` so that ``gs://bucket/path`` URIs are handled by
    that class; it must subclass ``zenml_core.artifacts.BaseArtifactStore``.
    """


@hookspec
def register_metadata_stores(register: Register) -> None:
    """Register metadata-store kinds.

    Call ``register("mysql", MySQLMetadataStore)`` for each; the class must subclass
    ``zenml_core.metadata.BaseMetadataStore``.
    """
