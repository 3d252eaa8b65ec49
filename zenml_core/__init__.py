"""zenml-core: ML pipelines written once, run on pluggable backends.

Importing this package is cheap on purpose: the pipeline API loads on first use, and heavy
libraries load inside the functions that need them.
"""

from typing import Any

from zenml_core._version import __version__
from zenml_core.hookspecs import hookimpl

_LAZY = {
    "Pipeline": "zenml_core.pipeline",
    "Step": "zenml_core.pipeline",
    "StepContext": "zenml_core.pipeline",
    "Outputs": "zenml_core.pipeline",
    "step": "zenml_core.pipeline",
    "ArtifactStore": "zenml_core.artifacts",
    "TrainingPipeline": "zenml_core.steps",
    "SQLiteMetadataStore": "zenml_core.metadata.mlmd",
    "MySQLMetadataStore": "zenml_core.metadata.mlmd",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zenml_core' has no attribute {name!r}")


__all__ = ["__version__", "hookimpl", *_LAZY]
