"""Backends the conformance suites give single steps, to see that an orchestrator keeps each
step's own processing and training backend wherever it runs the step.

They behave as the local ones under a name of their own. The suites load this module as a
plugin through ``ZENML_PLUGIN_MODULES``, which remote runs inherit (see
``RunRequest.plain_environment``), so a run elsewhere finds them too.
"""

from __future__ import annotations

from dataclasses import dataclass

from zenml_core.backends.local import LocalProcessingBackend, LocalTrainingBackend
from zenml_core.hookspecs import Register, hookimpl

NAME = "conformance-probe"


@dataclass
class ProbeProcessingBackend(LocalProcessingBackend):
    """The local processing backend, recorded as ``processing:conformance-probe``."""


@dataclass
class ProbeTrainingBackend(LocalTrainingBackend):
    """The local training backend, recorded as ``training:conformance-probe``."""


@hookimpl
def register_processing_backends(register: Register) -> None:
    register(NAME, ProbeProcessingBackend)


@hookimpl
def register_training_backends(register: Register) -> None:
    register(NAME, ProbeTrainingBackend)
