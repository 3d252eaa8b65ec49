"""The built-in local backends: the no-set-up defaults of every pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from zenml_core.backends.base import BaseOrchestrator, BaseProcessingBackend, BaseTrainingBackend
from zenml_core.exceptions import ConfigError

if TYPE_CHECKING:
    from zenml_core.backends.request import RunRequest, RunResult, StepRequest

#: Beam runners that execute on this machine without downloading anything. Beam's default
#: DirectRunner first tries to fetch a Prism binary from the internet, so it is never implied.
LOCAL_BEAM_RUNNERS = ("FnApiRunner", "BundleBasedDirectRunner")


@dataclass
class LocalOrchestrator(BaseOrchestrator):
    """Runs the whole pipeline in this Python process.

    ``parallelism`` > 1 runs independent branches of the DAG at the same time (threads).
    """

    RUNS_IN_PROCESS = True

    parallelism: int = 1

    def validate(self) -> None:
        if self.parallelism < 1:
            raise ConfigError(
                f"LocalOrchestrator: parallelism must be at least 1, got {self.parallelism}."
            )

    def run(self, request: RunRequest) -> RunResult:
        return request.execute(parallelism=self.parallelism)


@dataclass
class LocalProcessingBackend(BaseProcessingBackend):
    """Runs a data step's Beam job on this machine with an explicitly chosen local runner."""

    runner: str = "FnApiRunner"
    #: "in_memory" or "multi_processing"; Beam's "multi_threading" is refused (it lost rows).
    running_mode: str = "in_memory"
    num_workers: int = 1
    #: multi_processing makes Beam's FnApiRunner serve its workers over gRPC on every network
    #: interface ('[::]', hard-coded in worker_handlers.py; Beam has no setting to bind them
    #: to 127.0.0.1: apache/beam#21087), unauthenticated. Only with this explicit consent.
    listen_on_all_interfaces: bool = False

    def validate(self) -> None:
        if self.runner not in LOCAL_BEAM_RUNNERS:
            raise ConfigError(
                f"LocalProcessingBackend: runner {self.runner!r} is not a local Beam runner; "
                f"use one of {list(LOCAL_BEAM_RUNNERS)}."
            )
        if self.running_mode == "multi_threading":
            raise ConfigError(
                "LocalProcessingBackend: running_mode 'multi_threading' silently loses rows in "
                "Beam's FnApiRunner; use 'multi_processing' for parallelism or 'in_memory'."
            )
        if self.running_mode not in ("in_memory", "multi_processing"):
            raise ConfigError(
                f"LocalProcessingBackend: running_mode {self.running_mode!r} is unknown; "
                "use 'in_memory' or 'multi_processing'."
            )
        if self.num_workers < 1:
            raise ConfigError(
                f"LocalProcessingBackend: num_workers must be at least 1, got {self.num_workers}."
            )
        if self.running_mode == "multi_processing" and not self.listen_on_all_interfaces:
            raise ConfigError(
                "LocalProcessingBackend: running_mode 'multi_processing' makes Beam open "
                "unauthenticated gRPC servers on every network interface of this machine "
                "(Beam binds them to '[::]' and offers no setting for 127.0.0.1). Use "
                "running_mode='in_memory', or, on a machine no one else can reach, accept it "
                "with listen_on_all_interfaces=True."
            )
        if self.running_mode == "in_memory" and self.num_workers != 1:
            raise ConfigError(
                "LocalProcessingBackend: num_workers > 1 needs running_mode='multi_processing'."
            )

    def beam_args(self, job_name: str) -> list[str]:
        if self.running_mode == "multi_processing":
            import warnings

            warnings.warn(
                f"Beam job {job_name}: its {self.num_workers} worker processes are served "
                "over unauthenticated gRPC on every network interface "
                "(listen_on_all_interfaces=True)",
                RuntimeWarning,
                stacklevel=2,
            )
        return [
            f"--runner={self.runner}",
            f"--job_name={job_name}",
            f"--direct_running_mode={self.running_mode}",
            f"--direct_num_workers={self.num_workers}",
        ]


@dataclass
class LocalTrainingBackend(BaseTrainingBackend):
    """Runs the trainer step in this Python process."""

    RUNS_IN_PROCESS = True

    def run_step(self, request: StepRequest) -> None:
        request.execute()
