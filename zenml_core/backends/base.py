"""Base classes of the three backend kinds, and what the engine hands them."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

from zenml_core.component import BaseComponent

if TYPE_CHECKING:
    from zenml_core.backends.request import RunRequest, RunResult, StepRequest


class BaseOrchestrator(BaseComponent, abc.ABC):
    """Decides where a whole pipeline run lives (local process, a VM, a Kubernetes Job...)."""

    KIND = "orchestrator"
    #: True for backends that run every step in this very process: no code package is made.
    #: A backend that runs steps in any other process must leave it False.
    RUNS_IN_PROCESS: ClassVar[bool] = False

    def preflight(self, request: RunRequest) -> None:
        """Refuse a run this backend cannot carry out (stores it cannot reach, credentials
        that are missing), before anything is written or created: the code package, the run
        record, any cloud resource. Raise ``ConfigError`` naming the problem and the fix."""

    @abc.abstractmethod
    def run(self, request: RunRequest) -> RunResult:
        """Make the run happen and return its result.

        In-process orchestrators call ``request.execute()``. Remote ones ship
        ``request.spec`` (with its code package) and run ``request.command()`` there: the same
        engine, elsewhere. Validate everything before creating any resource.
        """


class BaseProcessingBackend(BaseComponent, abc.ABC):
    """Decides where a data step's Beam job runs (local runner, Dataflow...)."""

    KIND = "processing"

    @abc.abstractmethod
    def beam_args(self, job_name: str) -> list[str]:
        """Beam pipeline arguments for one step's job (runner, project, workers...)."""


class BaseTrainingBackend(BaseComponent, abc.ABC):
    """Decides where a trainer step runs (in-process, a Vertex AI custom job...)."""

    KIND = "training"
    #: as for orchestrators: True only for backends that run the step in this process
    RUNS_IN_PROCESS: ClassVar[bool] = False

    def preflight(self, request: RunRequest) -> None:
        """As ``BaseOrchestrator.preflight``: called before the run writes anything."""

    @abc.abstractmethod
    def run_step(self, request: StepRequest) -> None:
        """Run one step and wait for it.

        In-process: ``request.execute()``. Elsewhere: run ``request.command()`` in the
        backend's container; that process executes the step and records its outputs.
        """
