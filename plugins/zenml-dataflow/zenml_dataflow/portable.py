"""Data steps' Beam jobs on a portable job service (``PortableProcessingBackend``, registered
as ``portable``): Flink's or Spark's job server, or Beam's own.

Beam's ``PortableRunner`` submits the step's pipeline to ``job_endpoint``; the engine runs it
with SDK workers of ``environment_type``: ``DOCKER`` (containers of ``environment_config``, an
image; our base image by default), ``EXTERNAL`` (a worker pool already running at
``environment_config``, host:port: ``python -m apache_beam.runners.worker.worker_pool_main``)
or ``LOOPBACK`` (this process itself; for a job server on this machine).

User code: with DOCKER the project's code goes as a wheel (``--extra_package``, installed by
the SDK container's boot, as on Dataflow); an EXTERNAL pool and LOOPBACK run the code their
own environment has, so start the pool where the project is installed or importable.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any

from zenml_core.backends.base import BaseProcessingBackend
from zenml_core.exceptions import BeamJobError, ConfigError
from zenml_dataflow.code import code_packages
from zenml_dataflow.images import check_sdk_image

_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[-A-Za-z0-9.]+):\d{1,5}$")
ENVIRONMENTS = ("DOCKER", "EXTERNAL", "LOOPBACK")


@dataclass
class PortableProcessingBackend(BaseProcessingBackend):
    """Run a data step's Beam job through a portable job service.

    ``shared_data_location`` is a folder URI every worker reads and writes (``s3://``,
    ``gs://``, ``hdfs://``); leave it None when they see this machine's files (a job server
    and workers on this machine).
    """

    job_endpoint: str = "localhost:8099"
    environment_type: str = "DOCKER"
    #: DOCKER: the workers' image (None: this version's base image); EXTERNAL: the worker
    #: pool's host:port; LOOPBACK: None
    environment_config: str | None = None
    #: the engine's parallelism for the job (Flink's and Spark's default when None)
    parallelism: int | None = None
    shared_data_location: str | None = None
    save_main_session: bool = False
    #: further Beam options for the engine, e.g. ["--flink_master=host:8081"]
    extra_args: list[str] = field(default_factory=list)

    def validate(self) -> None:
        what = "PortableProcessingBackend"
        if not _HOST_PORT.match(str(self.job_endpoint)):
            raise ConfigError(
                f"{what}: job_endpoint {self.job_endpoint!r} is not HOST:PORT, e.g. "
                "'localhost:8099' (Flink's and Spark's job servers listen there by default)."
            )
        if self.environment_type not in ENVIRONMENTS:
            hint = (
                " PROCESS needs Beam's boot binary on every worker host, which a Python "
                "install does not have; use EXTERNAL with a worker pool instead."
                if self.environment_type == "PROCESS"
                else ""
            )
            raise ConfigError(
                f"{what}: environment_type {self.environment_type!r} is not one of "
                f"{list(ENVIRONMENTS)}.{hint}"
            )
        if self.environment_type == "EXTERNAL" and not _HOST_PORT.match(
            str(self.environment_config or "")
        ):
            raise ConfigError(
                f"{what}: EXTERNAL needs environment_config='HOST:PORT' of a worker pool "
                "(python -m apache_beam.runners.worker.worker_pool_main --service_port PORT)."
            )
        if self.environment_type == "DOCKER":
            check_sdk_image(what, self.image)
        if self.environment_type == "LOOPBACK" and self.environment_config is not None:
            raise ConfigError(f"{what}: LOOPBACK takes no environment_config.")
        if self.parallelism is not None and self.parallelism < 1:
            raise ConfigError(f"{what}: parallelism must be at least 1, got {self.parallelism}.")
        if self.shared_data_location is not None and "://" not in self.shared_data_location:
            raise ConfigError(
                f"{what}: shared_data_location {self.shared_data_location!r} must be a URI "
                "every worker can reach (s3://, gs://, hdfs://); leave it unset when the "
                "workers see this machine's files."
            )
        for argument in self.extra_args:
            if not str(argument).startswith("--") or str(argument).startswith(
                ("--runner", "--job_endpoint", "--environment_")
            ):
                raise ConfigError(
                    f"{what}: extra_args entry {argument!r} must be a --option, and not one "
                    "this backend sets (runner, job_endpoint, environment)."
                )

    @property
    def image(self) -> str:
        from zenml_core.docker import base_image

        return self.environment_config or base_image()

    def beam_args(self, job_name: str) -> list[str]:
        args = [
            "--runner=PortableRunner",
            f"--job_endpoint={self.job_endpoint}",
            f"--job_name={job_name}",
            f"--environment_type={self.environment_type}",
            "--save_main_session" if self.save_main_session else "--no_save_main_session",
        ]
        if self.environment_type == "DOCKER":
            args.append(f"--environment_config={self.image}")
        elif self.environment_type == "EXTERNAL":
            args.append(f"--environment_config={self.environment_config}")
        if self.parallelism is not None:
            args.append(f"--parallelism={self.parallelism}")
        if self.environment_type == "DOCKER":
            args += [f"--extra_package={package}" for package in code_packages()]
        return [*args, *self.extra_args]

    def data_location(self, job_name: str) -> str | None:
        if self.shared_data_location is None:
            return None
        return f"{self.shared_data_location.rstrip('/')}/zenml-data/{job_name}"

    def run_pipeline(self, pipeline: Any, job_name: str) -> None:
        self._check_reachable(job_name)
        try:
            result = pipeline.run()
        except Exception as error:
            raise BeamJobError(
                f"Beam job {job_name}: the job service at {self.job_endpoint} did not take "
                f"it: {_first_line(error)}. Is a Flink or Spark job server (or Beam's "
                "local_job_service_main) listening there?"
            ) from error
        try:
            result.wait_until_finish()
        except (KeyboardInterrupt, SystemExit):
            result.cancel()
            print(f"Beam job {job_name} cancelled at {self.job_endpoint}.", file=sys.stderr)
            raise
        except Exception as error:
            raise BeamJobError(
                f"Beam job {job_name} failed on the job service at {self.job_endpoint}: {error}"
            ) from error
        if str(result.state) != "DONE":
            raise BeamJobError(
                f"Beam job {job_name} ended {result.state} on the job service at "
                f"{self.job_endpoint}, not DONE."
            )

    def _check_reachable(self, job_name: str) -> None:
        """Beam waits minutes for a job service that is not there; say so at once."""
        import socket

        host, _, port = self.job_endpoint.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=10):
                return
        except OSError as error:
            raise BeamJobError(
                f"Beam job {job_name}: no job service answers at {self.job_endpoint} "
                f"({error}), so it did not take it. Start the Flink or Spark job server "
                "(or Beam's local_job_service_main) there, or point job_endpoint at it."
            ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
