"""Base classes of the three backend kinds, and what the engine hands them."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

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

    def data_location(self, job_name: str) -> str | None:
        """Where this job's workers read a step's inputs and write its outputs: None when they
        see this machine's files (in-process, a worker pool on this machine or a shared file
        system); otherwise a folder URI (``gs://bucket/tmp/JOB``) that the step's inputs are
        copied to and its outputs copied back from (``StepContext.beam_job``)."""
        return None

    def run_pipeline(self, pipeline: Any, job_name: str) -> None:
        """Run one step's Beam pipeline and wait for it; raise ``BeamJobError`` unless it
        ended DONE. Remote backends override it to watch the job (and cancel it on Ctrl-C)."""
        result = pipeline.run()
        result.wait_until_finish()
        if str(result.state) != "DONE":
            from zenml_core.exceptions import BeamJobError

            raise BeamJobError(f"Beam job {job_name} ended {result.state}, not DONE.")


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
