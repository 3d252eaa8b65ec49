"""zenml-core: ML pipelines written once, run on pluggable backends.

Importing this package is cheap on purpose; heavy libraries load inside the functions that
need them.
"""

from zenml_core._version import __version__
from zenml_core.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]
