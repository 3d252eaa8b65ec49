"""The built-in local backends: the no-set-up defaults of every pipeline."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zenml_core.backends.base import BaseOrchestrator, BaseProcessingBackend, BaseTrainingBackend
from zenml_core.exceptions import ConfigError

if TYPE_CHECKING:
    from zenml_core.backends.request import RunRequest, RunResult, StepRequest

#: Beam runners that execute on this machine without downloading anything. Beam's default
#: DirectRunner first tries to fetch a Prism binary from the internet, so it is never implied.
LOCAL_BEAM_RUNNERS = ("FnApiRunner", "BundleBasedDirectRunner")
RUNNING_MODES = ("auto", "in_memory", "multi_processing")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS has one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


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
    #: "auto", "in_memory" or "multi_processing"; Beam's "multi_threading" is refused (it
    #: lost rows). "auto" runs ``num_workers`` worker processes only where they can be faster
    #: than this process (see ``chosen_mode``) and says which it chose.
    running_mode: str = "auto"
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
        if self.running_mode not in RUNNING_MODES:
            raise ConfigError(
                f"LocalProcessingBackend: running_mode {self.running_mode!r} is unknown; "
                f"use one of {list(RUNNING_MODES)}."
            )
        if self.num_workers < 1:
            raise ConfigError(
                f"LocalProcessingBackend: num_workers must be at least 1, got {self.num_workers}."
            )
        may_use_workers = self.running_mode == "multi_processing" or (
            self.running_mode == "auto" and self.num_workers > 1
        )
        if may_use_workers and not self.listen_on_all_interfaces:
            raise ConfigError(
                f"LocalProcessingBackend: worker processes (running_mode={self.running_mode!r}, "
                f"num_workers={self.num_workers}) make Beam open "
                "unauthenticated gRPC servers on every network interface of this machine "
                "(Beam binds them to '[::]' and offers no setting for 127.0.0.1). Use "
                "running_mode='in_memory', or, on a machine no one else can reach, accept it "
                "with listen_on_all_interfaces=True."
            )
        if self.running_mode == "in_memory" and self.num_workers != 1:
            raise ConfigError(
                "LocalProcessingBackend: num_workers > 1 needs running_mode='multi_processing' "
                "(or 'auto', which uses them where they are faster)."
            )

    def chosen_mode(self) -> tuple[str, str]:
        """The Beam running mode a job gets, and why. "auto" keeps a job in this process on
        a machine of at most 2 cores: the data steps' Arrow kernels already use both, and 2
        worker processes measured 1.5x slower than one process there (3M rows,
        bench/standard_path.py); each worker imports Beam and gets its data over gRPC."""
        if self.running_mode != "auto":
            return self.running_mode, f"running_mode={self.running_mode!r}"
        if self.num_workers == 1:
            return "in_memory", "num_workers=1"
        cores = usable_cores()
        if cores <= 2:
            return "in_memory", (
                f"running_mode='auto': this machine has {cores} cores, which one process's "
                f"Arrow threads already use; {self.num_workers} worker processes would be slower"
            )
        return "multi_processing", f"running_mode='auto': {cores} cores"

    def beam_args(self, job_name: str) -> list[str]:
        mode, reason = self.chosen_mode()
        if self.running_mode == "auto" and self.num_workers > 1:
            print(
                f"zenml: Beam job {job_name} runs "
                + ("in this process" if mode == "in_memory" else f"on {self.num_workers} workers")
                + f" ({reason})"
            )
        if mode == "multi_processing":
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
            f"--direct_running_mode={mode}",
            f"--direct_num_workers={self.num_workers if mode == 'multi_processing' else 1}",
        ]


@dataclass
class LocalTrainingBackend(BaseTrainingBackend):
    """Runs the trainer step in this Python process."""

    RUNS_IN_PROCESS = True

    def run_step(self, request: StepRequest) -> None:
        request.execute()
