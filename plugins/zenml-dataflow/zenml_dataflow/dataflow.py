"""Data steps' Beam jobs on Google Dataflow (``ProcessingDataFlowBackend``, registered as
``dataflow``).

The step's process builds the job with Beam's own ``DataflowRunner`` and waits for it here:
the job's messages are read as it runs, a failure names the job, its console page and its last
error, Ctrl-C cancels it, and workers that never start (a stockout, a quota, an image that does
not pull) fail the step within ``worker_start_timeout_seconds`` instead of Dataflow's hour of
"no worker activity". The step's data goes to the workers through ``temp_location`` (gs://)
and comes back from it (``data_location``); its code goes as a wheel (``zenml_dataflow.code``)
or in the image.

Beam's Dataflow modules and the Google clients are imported only when a job starts.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from zenml_core.backends.base import BaseProcessingBackend
from zenml_core.exceptions import BeamJobError, ConfigError
from zenml_dataflow.code import code_packages
from zenml_dataflow.images import check_sdk_image
from zenml_gcp.google import (
    REGION,
    SERVICE_ACCOUNT,
    ZONE,
    check_endpoint,
    check_labels,
    check_project,
    label_value,
)

_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_GCS = re.compile(r"^gs://[a-z0-9][-_.a-z0-9]{1,221}(/.*)?$")
_MACHINE = re.compile(r"^[a-z][a-z0-9]*-[a-z0-9-]+$")
_SERVICE_OPTION = re.compile(r"^[a-z_][a-z0-9_]*(=.+)?$")
_ACCELERATOR = re.compile(r"^type:nvidia-[-a-z0-9]+;count:[1-9]\d*(;[-a-z_:0-9]+)*$")
#: what Dataflow ends jobs in besides DONE: each fails the step
FAILED_STATES = ("FAILED", "CANCELLED", "DRAINED", "UPDATED", "STOPPED")
#: Dataflow's own line once the workers run the SDK harness and take work
WORKERS_READY = "began to receive work requests"
#: job messages that mean the workers will not come (Dataflow retries for up to an hour)
_STARTUP_FAILURE = re.compile(
    r"ZONE_RESOURCE_POOL_EXHAUSTED|QUOTA_EXCEEDED|failed to bring up any of the desired"
)
#: how long a failed job's error message may lag its state (Beam waits 50 s for it too)
ERROR_MESSAGE_WAIT_SECONDS = 50.0


def dataflow_job_name(job_name: str) -> str:
    """``job_name`` (``RUNID-STEP``: pipeline, run and step) as Dataflow names jobs: at most
    63 lowercase letters, digits and '-', starting with a letter; a hash of the whole name
    keeps shortened names unique per run."""
    name = re.sub(r"[^-a-z0-9]+", "-", job_name.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if not name or not name[0].isalpha():
        name = f"z-{name}"
    if len(name) > 63 or name != job_name:
        digest = hashlib.sha256(job_name.encode()).hexdigest()[:8]
        name = f"{name[: 63 - 9].rstrip('-')}-{digest}"
    assert _NAME.match(name) and len(name) <= 63, name
    return name


def console_url(project: str, region: str, job_id: str) -> str:
    return f"https://console.cloud.google.com/dataflow/jobs/{region}/{job_id}?project={project}"


@dataclass
class ProcessingDataFlowBackend(BaseProcessingBackend):
    """Run a data step's Beam job on Google Dataflow.

    ``staging_location`` (gs://) receives the staged pipeline and packages; ``temp_location``
    (default: its ``/temp`` folder) the job's temporary files and the step's data on its way to
    and from the workers. The workers run ``sdk_container_image``: our base image of this
    version by default, whose Beam, Python and protobuf must match this environment's (checked
    here), or an image of your own built FROM it.
    """

    project: str = ""
    staging_location: str = ""
    region: str = "us-central1"
    temp_location: str | None = None
    #: the workers' image; None is this version's base image
    sdk_container_image: str | None = None
    machine_type: str | None = None
    num_workers: int | None = None
    max_num_workers: int | None = None
    #: False pins the worker count at num_workers (autoscaling_algorithm NONE)
    autoscaling: bool = True
    service_account: str | None = None
    network: str | None = None
    subnetwork: str | None = None
    #: False gives the workers no public IPs (they then need Private Google Access)
    use_public_ips: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    #: e.g. ["worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver"]
    dataflow_service_options: list[str] = field(default_factory=list)
    #: pickle the submitting script's globals for the workers; explicit, because Beam's
    #: default depends on the pickler (True on Dataflow with cloudpickle)
    save_main_session: bool = False
    #: ship the project's code to the workers as a wheel; False when it is in the image
    ship_code: bool = True
    #: your own wheels or sdists for the workers (local paths)
    extra_packages: list[str] = field(default_factory=list)
    #: fail (and cancel) a job whose workers have not begun work by then (Dataflow's "began
    #: to receive work requests" message); None leaves it to Dataflow's own hour
    worker_start_timeout_seconds: float | None = 900.0
    poll_seconds: float = 10.0
    #: Dataflow's API endpoint; set only for a regional endpoint or an emulator
    dataflow_endpoint: str | None = None

    def validate(self) -> None:
        what = "ProcessingDataFlowBackend"
        check_project(what, self.project)
        if not isinstance(self.region, str) or ZONE.match(self.region):
            raise ConfigError(
                f"{what}: region {self.region!r} is a zone; Dataflow runs jobs in a region, "
                f"e.g. {self.region.rsplit('-', 1)[0]!r}."
            )
        if not REGION.match(self.region):
            raise ConfigError(
                f"{what}: region {self.region!r} is not a region like 'europe-west1'."
            )
        for name in ("staging_location", "temp_location"):
            value = getattr(self, name)
            if (value is not None or name == "staging_location") and not _GCS.match(
                str(value or "")
            ):
                raise ConfigError(
                    f"{what}: {name} {value!r} must be a Cloud Storage folder the workers can "
                    "read and write, e.g. 'gs://my-bucket/dataflow'."
                )
        check_sdk_image(what, self.image)
        if self.machine_type is not None and not _MACHINE.match(self.machine_type):
            raise ConfigError(
                f"{what}: machine_type {self.machine_type!r} is not a machine type like "
                "'n2-standard-4'."
            )
        for name in ("num_workers", "max_num_workers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{what}: {name} must be at least 1, got {value}.")
        if self.num_workers and self.max_num_workers and self.max_num_workers < self.num_workers:
            raise ConfigError(
                f"{what}: max_num_workers ({self.max_num_workers}) is below num_workers "
                f"({self.num_workers})."
            )
        if self.service_account is not None and not SERVICE_ACCOUNT.match(self.service_account):
            raise ConfigError(
                f"{what}: service_account {self.service_account!r} is not a service account "
                "email (NAME@PROJECT.iam.gserviceaccount.com)."
            )
        check_labels(what, self.labels)
        for option in self.dataflow_service_options:
            if not isinstance(option, str) or not _SERVICE_OPTION.match(option):
                raise ConfigError(
                    f"{what}: dataflow_service_options entry {option!r} is not NAME or NAME=VALUE."
                )
            if option.startswith("worker_accelerator=") and not _ACCELERATOR.match(
                option.partition("=")[2]
            ):
                raise ConfigError(
                    f"{what}: {option!r}: write worker_accelerator=type:nvidia-l4;count:1"
                    ";install-nvidia-driver (type and count, then options)."
                )
        for package in self.extra_packages:
            if not str(package).endswith((".whl", ".tar.gz", ".zip")):
                raise ConfigError(
                    f"{what}: extra package {package!r} is not a wheel or sdist (.whl, .tar.gz)."
                )
        timeout = self.worker_start_timeout_seconds
        if (timeout is not None and timeout <= 0) or self.poll_seconds <= 0:
            raise ConfigError(
                f"{what}: worker_start_timeout_seconds and poll_seconds must be above 0."
            )
        check_endpoint(what, "dataflow_endpoint", self.dataflow_endpoint)

    @property
    def image(self) -> str:
        from zenml_core.docker import base_image

        return self.sdk_container_image or base_image()

    @property
    def temp(self) -> str:
        return self.temp_location or f"{self.staging_location.rstrip('/')}/temp"

    def data_location(self, job_name: str) -> str:
        return f"{self.temp.rstrip('/')}/zenml-data/{dataflow_job_name(job_name)}"

    def beam_args(self, job_name: str) -> list[str]:
        args = [
            "--runner=DataflowRunner",
            f"--project={self.project}",
            f"--region={self.region}",
            f"--job_name={dataflow_job_name(job_name)}",
            f"--staging_location={self.staging_location}",
            f"--temp_location={self.temp}",
            f"--sdk_container_image={self.image}",
            "--sdk_location=container",  # the image holds the SDK (Beam >= 2.50 stages none)
            "--save_main_session" if self.save_main_session else "--no_save_main_session",
            "--use_public_ips" if self.use_public_ips else "--no_use_public_ips",
            f"--labels=zenml-job={label_value(job_name)}",
            *(f"--labels={key}={value}" for key, value in self.labels.items()),
            *(f"--dataflow_service_options={option}" for option in self.dataflow_service_options),
        ]
        optional = {
            "machine_type": self.machine_type,
            "num_workers": self.num_workers,
            "max_num_workers": self.max_num_workers,
            "service_account_email": self.service_account,
            "network": self.network,
            "subnetwork": self.subnetwork,
            "dataflow_endpoint": self.dataflow_endpoint,
        }
        args += [f"--{name}={value}" for name, value in optional.items() if value is not None]
        if not self.autoscaling:
            args.append("--autoscaling_algorithm=NONE")
        for package in [*self._code_packages(), *self.extra_packages]:
            args.append(f"--extra_package={package}")
        return args

    def _code_packages(self) -> list[str]:
        return code_packages() if self.ship_code else []

    # -- running and watching a job -------------------------------------------------------

    def run_pipeline(self, pipeline: Any, job_name: str) -> None:
        name = dataflow_job_name(job_name)
        try:
            result = pipeline.run()
        except Exception as error:
            if _is_conflict(error):
                raise BeamJobError(
                    f"Dataflow already runs a job named {name} in {self.project}/{self.region}: "
                    "this very step of this run, started before and still active. Wait for it, "
                    f"or cancel it (gcloud dataflow jobs cancel --region {self.region} JOB_ID, "
                    f"the job listed at https://console.cloud.google.com/dataflow/jobs?project="
                    f"{self.project}) and resume the run."
                ) from None
            raise
        _Watch(self, result, name, pipeline.options).until_done()


class _Watch:
    """Follow one submitted job to its end: messages, state, the start-up watchdog."""

    def __init__(
        self, backend: ProcessingDataFlowBackend, result: Any, name: str, options: Any
    ) -> None:
        from apache_beam.runners.dataflow.internal.apiclient import DataflowApplicationClient

        self.backend = backend
        self.name = name
        self.job_id = result.job_id()
        self.client = DataflowApplicationClient(options)
        self.url = console_url(backend.project, backend.region, self.job_id)
        self.page_token: str | None = None
        self.seen: set[str] = set()
        self.errors: list[str] = []
        self.ready = False

    def until_done(self) -> None:
        started = time.monotonic()
        print(f"Dataflow job {self.name} ({self.job_id}): {self.url}", file=sys.stderr, flush=True)
        try:
            while True:
                state = self._state()
                self._read_messages()
                if state == "DONE":
                    return
                if state in FAILED_STATES:
                    self._fail(state)
                startup = [e for e in self.errors if _STARTUP_FAILURE.search(e)]
                if startup and not self.ready:
                    self._cancel()
                    raise BeamJobError(
                        f"Dataflow job {self.name} ({self.job_id}) cannot start its workers: "
                        f"{startup[-1]} It was cancelled. Try another region or zone, a smaller "
                        f"machine_type, or ask for more quota. {self.url}"
                    )
                waited = time.monotonic() - started
                limit = self.backend.worker_start_timeout_seconds
                if not self.ready and limit is not None and waited > limit:
                    self._cancel()
                    raise BeamJobError(
                        f"Dataflow job {self.name} ({self.job_id}): no worker began work within "
                        f"{limit:g} s "
                        "(worker_start_timeout_seconds), so it was cancelled. The usual causes: "
                        f"the image {self.backend.image} does not pull (a missing image, or the "
                        "workers' service account may not read its registry), or its Beam does "
                        f"not match this environment's. See the job's worker logs: {self.url}"
                    )
                time.sleep(self.backend.poll_seconds)
        except BeamJobError:
            raise  # the job has ended, or was cancelled on the way
        except BaseException:  # Ctrl-C, or the wait itself broke: leave nothing billing
            self._cancel()
            print(f"Dataflow job {self.job_id} cancelled.", file=sys.stderr, flush=True)
            raise

    def _state(self) -> str:
        job = self.client.get_job(self.job_id)
        return str(job.current_state.name).removeprefix("JOB_STATE_")

    def _read_messages(self) -> None:
        while True:
            messages, token = self.client.list_messages(self.job_id, page_token=self.page_token)
            for message in messages:
                if message.id in self.seen:
                    continue
                self.seen.add(message.id)
                importance = str(message.message_importance.name)
                text = message.message_text
                if WORKERS_READY in text:
                    self.ready = True
                if importance == "JOB_MESSAGE_ERROR":
                    self.errors.append(text)
                if importance in ("JOB_MESSAGE_BASIC", "JOB_MESSAGE_WARNING", "JOB_MESSAGE_ERROR"):
                    print(f"dataflow {self.name}: {text}", file=sys.stderr, flush=True)
            if not token:
                return
            self.page_token = token

    def _fail(self, state: str) -> None:
        deadline = time.monotonic() + ERROR_MESSAGE_WAIT_SECONDS
        while state == "FAILED" and not self.errors and time.monotonic() < deadline:
            time.sleep(min(5.0, self.backend.poll_seconds))  # the error lags the state
            self._read_messages()
        last = self.errors[-1] if self.errors else "no error message was reported"
        raise BeamJobError(
            f"Dataflow job {self.name} ({self.job_id}) ended {state}: {last} Console: {self.url}"
        )

    def _cancel(self) -> None:
        try:
            self.client.modify_job_state(self.job_id, "JOB_STATE_CANCELLED")
        except Exception as error:  # the step fails anyway; say what is left running
            print(
                f"Could not cancel Dataflow job {self.job_id} ({error}); cancel it: {self.url}",
                file=sys.stderr,
                flush=True,
            )


def _is_conflict(error: BaseException) -> bool:
    """A 409 for an active job of the same name (or Beam's own word for it)."""
    code = getattr(error, "code", None)
    return code == 409 or type(error).__name__ == "DataflowJobAlreadyExistsError"


__all__ = ["ProcessingDataFlowBackend", "dataflow_job_name"]
