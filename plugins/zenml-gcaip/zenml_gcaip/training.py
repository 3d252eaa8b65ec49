"""Trainer steps on Vertex AI custom jobs (the successor of AI Platform Training).

Written on zenml-core's remote-run layer (``zenml_core.backends.remote``): only the trainer
step runs remotely, as ``python -m zenml_core step --spec URI ...`` in the job's container; its
inputs and outputs go through the ``gs://`` artifact store and its execution is recorded in the
shared metadata store by the job itself. What this module holds is Vertex AI's own: the custom
job's spec, the regional endpoint's calls, and how a job's end reads.

With ``replica_count > 1`` the job has a chief (worker pool 0) and ``replica_count - 1``
workers (pool 1); Vertex AI gives each ``CLUSTER_SPEC`` and ``TF_CONFIG``, the standard trainer
trains one model across them with ``MultiWorkerMirroredStrategy``, and only the chief records
the step (``zenml_core.distributed``).

google-cloud-aiplatform (about 4 s to import) and google-cloud-logging are imported only when a
run starts.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zenml_core.backends.remote import (
    Failure,
    FailureKind,
    InfrastructureFailure,
    JobNotFound,
    JobState,
    JobStatus,
    RemoteTrainingBackend,
    SecretRef,
    TransientError,
    Workload,
)
from zenml_core.exceptions import ConfigError
from zenml_gcaip.machines import check_machine
from zenml_gcp import secrets
from zenml_gcp.google import (
    REGION,
    RUN_LABEL,
    SERVICE_ACCOUNT,
    check_endpoint,
    check_env,
    check_labels,
    check_project,
    label_value,
)

if TYPE_CHECKING:
    from zenml_core.backends import StepRequest

_BOOT_DISKS = ("pd-ssd", "pd-standard", "hyperdisk-balanced")


@dataclass
class VertexTrainingBackend(RemoteTrainingBackend):
    """Runs a trainer step as a Vertex AI custom job in ``project`` and ``region``.

    ``image`` defaults to zenml-core's base image of this version (``-gpu`` with accelerators);
    it must hold the plugins the run's stores use (zenml-gcp for ``gs://``) and zenml-gcaip
    (see docs/vertex.md). ``job_dir`` (``gs://``) is the job's base output directory
    (``AIP_MODEL_DIR`` and friends); the step's own outputs go to the artifact store.
    ``replica_count`` machines train together (one chief, the rest workers). ``spot`` buys
    Spot capacity; ``timeout_seconds`` is the job's ``scheduling.timeout``.
    """

    project: str = ""
    region: str = "us-central1"
    job_dir: str = ""
    image: str | None = None
    machine_type: str = "n1-standard-4"
    accelerator_type: str | None = None
    accelerator_count: int = 0
    replica_count: int = 1
    boot_disk_type: str = "pd-ssd"
    boot_disk_size_gb: int = 100
    service_account: str | None = None
    network: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    timeout_seconds: int | None = None
    restart_job_on_worker_restart: bool = False
    spot: bool = False
    #: endpoints other than Google's (a private endpoint, or an emulator: ``http://...``)
    api_endpoint: str | None = None
    logging_endpoint: str | None = None
    secret_manager_endpoint: str | None = None
    #: Vertex writes a failed job's error after its state: how long to keep reading it
    error_wait_seconds: float = 90.0
    wait: bool = True
    stream_logs: bool = True
    poll_seconds: float = 10.0

    # -- validation, before anything exists ----------------------------------------------------

    def validate(self) -> None:
        from zenml_core.docker import check_image_reference

        what = type(self).__name__
        check_project(what, self.project)
        if not isinstance(self.region, str) or not REGION.match(self.region):
            raise ConfigError(
                f"{what}: region {self.region!r} is not a Google Cloud region: write e.g. "
                "'us-central1' or 'europe-west4' (a region, not a zone such as 'us-central1-a')."
            )
        if not isinstance(self.job_dir, str) or not re.match(
            r"^gs://[a-z0-9][-_.a-z0-9]{1,221}(/|$)", self.job_dir
        ):
            raise ConfigError(
                f"{what}: job_dir {self.job_dir!r} must be a Cloud Storage folder the job can "
                "write, e.g. 'gs://my-bucket/vertex'."
            )
        if self.image is not None:
            check_image_reference(self.image, f"{what} image")
        check_machine(what, self.machine_type, self.accelerator_type, self.accelerator_count)
        if (
            isinstance(self.replica_count, bool)
            or not isinstance(self.replica_count, int)
            or (self.replica_count < 1)
        ):
            raise ConfigError(
                f"{what}: replica_count must be at least 1 (the chief), got {self.replica_count!r}."
            )
        if self.boot_disk_type not in _BOOT_DISKS:
            raise ConfigError(f"{what}: boot_disk_type must be one of {list(_BOOT_DISKS)}.")
        if not 100 <= self.boot_disk_size_gb <= 64000:
            raise ConfigError(f"{what}: boot_disk_size_gb must be 100 to 64000 (Vertex's range).")
        if self.service_account is not None and not SERVICE_ACCOUNT.match(self.service_account):
            raise ConfigError(
                f"{what}: service_account {self.service_account!r} is not a service account "
                "email (NAME@PROJECT.iam.gserviceaccount.com)."
            )
        check_labels(what, self.labels)
        check_env(what, self.env, "the job's spec")
        if self.timeout_seconds is not None and self.timeout_seconds < 1:
            raise ConfigError(
                f"{what}: timeout_seconds must be positive, got {self.timeout_seconds}."
            )
        if self.poll_seconds <= 0 or self.error_wait_seconds < 0:
            raise ConfigError(f"{what}: poll_seconds must be positive, error_wait_seconds >= 0.")
        for name in ("api_endpoint", "logging_endpoint", "secret_manager_endpoint"):
            check_endpoint(what, name, getattr(self, name))

    # -- the job ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The regional endpoint (Vertex AI has no global one for jobs)."""
        return self.api_endpoint or f"{self.region}-aiplatform.googleapis.com"

    def platform(self) -> _VertexPlatform:
        return _VertexPlatform(self)

    def display_name(self, run_id: str, step: str) -> str:
        owner = f"{run_id}/{step}"
        digest = hashlib.sha256(owner.encode()).hexdigest()[:8]
        return f"zenml-{step}-{run_id}"[:119] + f"-{digest}"

    def workload(self, step: StepRequest, command: list[str]) -> Workload:
        from zenml_core.docker import base_image

        run_id = step.spec.run_id
        return Workload(
            name=self.display_name(run_id, step.step),
            image=self.image or base_image(gpu=self.accelerator_count > 0),
            command=command,
            env=dict(self.env),
            labels={
                **self.labels,
                RUN_LABEL: label_value(run_id),
                "zenml-step": label_value(step.step),
                "zenml-pipeline": label_value(step.spec.pipeline.name),
            },
            deadline_seconds=self.timeout_seconds,
            run_id=run_id,
            step=step.step,
        )

    def custom_job(self, workload: Workload) -> dict[str, Any]:
        """The CustomJob resource (JSON field names of aiplatform v1) for a workload."""
        command = list(workload.command)
        if workload.secret_env:
            command = [*secrets.wrapper(workload.secret_env), "--", *command]
        env = dict(workload.env)
        if workload.secret_env and self.secret_manager_endpoint:
            env[secrets.ENDPOINT_ENV] = self.secret_manager_endpoint
        machine: dict[str, Any] = {"machine_type": self.machine_type}
        if self.accelerator_type:
            machine["accelerator_type"] = self.accelerator_type
            machine["accelerator_count"] = self.accelerator_count
        container = {
            "image_uri": workload.image,
            "command": command,
            "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        }
        disk = {"boot_disk_type": self.boot_disk_type, "boot_disk_size_gb": self.boot_disk_size_gb}
        pools = [
            {
                "machine_spec": machine,
                "replica_count": 1,
                "container_spec": container,
                "disk_spec": disk,
            }
        ]
        if self.replica_count > 1:
            pools.append({**pools[0], "replica_count": self.replica_count - 1})
        scheduling: dict[str, Any] = {
            "restart_job_on_worker_restart": self.restart_job_on_worker_restart
        }
        if self.timeout_seconds is not None:
            scheduling["timeout"] = f"{self.timeout_seconds}s"
        if self.spot:
            scheduling["strategy"] = "SPOT"
        spec: dict[str, Any] = {
            "worker_pool_specs": pools,
            "scheduling": scheduling,
            "base_output_directory": {"output_uri_prefix": self.job_dir},
        }
        if self.service_account:
            spec["service_account"] = self.service_account
        if self.network:
            spec["network"] = self.network
        return {"display_name": workload.name, "job_spec": spec, "labels": workload.labels}


@dataclass
class SingleGPUTrainingGCAIPBackend(VertexTrainingBackend):
    """The seed's name: one machine with one GPU (an n1-standard-8 with a T4 by default)."""

    machine_type: str = "n1-standard-8"
    accelerator_type: str | None = "NVIDIA_TESLA_T4"
    accelerator_count: int = 1

    def validate(self) -> None:
        super().validate()
        if self.accelerator_count != 1 or self.replica_count != 1:
            raise ConfigError(
                "SingleGPUTrainingGCAIPBackend runs one machine with one GPU: for more, use "
                "VertexTrainingBackend(accelerator_count=N, replica_count=M)."
            )


class _VertexPlatform:
    """The aiplatform, Cloud Logging and Secret Manager calls the remote-run layer needs, with
    our error messages."""

    local_processes = False

    def __init__(self, backend: VertexTrainingBackend) -> None:
        self.backend = backend
        self.parent = f"projects/{backend.project}/locations/{backend.region}"
        self.where = f"Vertex AI ({backend.project}, {backend.region})"
        self._jobs: Any = None
        self._logging: Any = None
        self._log_cursor: dict[str, tuple[str, set[str]]] = {}  # job -> (since, ids seen then)
        self._replicas = backend.replica_count
        self._lock = threading.Lock()
        self.jobs  # noqa: B018  (made now: a missing library is a ConfigError before anything)

    # -- clients ---------------------------------------------------------------------------

    @property
    def jobs(self) -> Any:
        if self._jobs is None:
            from zenml_gcp.google import credentials_for, quiet_google_imports

            with quiet_google_imports():
                from google.api_core.client_options import ClientOptions
                from google.cloud import aiplatform_v1

            self.types = aiplatform_v1
            self._jobs = aiplatform_v1.JobServiceClient(
                credentials=credentials_for(self.backend.api_endpoint),
                transport="rest",
                client_options=ClientOptions(api_endpoint=self.backend.endpoint),
            )
        return self._jobs

    def _call(self, what: str, function: Any, **kwargs: Any) -> Any:
        """One API call: throttling, server errors and lost connections are
        ``TransientError`` (retried by the driver, with a fresh client after a lost
        connection, as Vertex's own tools do); the rest explained."""
        from google.api_core import exceptions
        from google.auth import exceptions as auth_exceptions
        from requests import exceptions as http

        try:
            return function(**kwargs)
        except (
            exceptions.ServiceUnavailable,
            exceptions.InternalServerError,
            exceptions.BadGateway,
            exceptions.GatewayTimeout,
            exceptions.DeadlineExceeded,
            http.ConnectionError,
            http.Timeout,
        ) as error:
            self._jobs = None
            raise TransientError(f"Vertex AI did not answer {what}: {error}") from None
        except exceptions.TooManyRequests as error:
            if what == "create the custom job":
                raise InfrastructureFailure(
                    FailureKind.QUOTA, _quota_message(self, error)
                ) from None
            raise TransientError(f"Vertex AI throttled {what}: {error}") from None
        except exceptions.NotFound as error:
            raise JobNotFound(f"Vertex AI: {error.message}") from None
        except (
            exceptions.Forbidden,
            exceptions.Unauthorized,
            auth_exceptions.DefaultCredentialsError,
        ) as error:
            raise InfrastructureFailure(
                FailureKind.PERMISSION,
                f"Vertex AI refused to {what} in {self.parent}: {error}. The caller needs "
                "roles/aiplatform.user, and iam.serviceAccounts.actAs on the job's service "
                f"account ({self.backend.service_account or 'the Compute Engine default'}); "
                "check `gcloud auth application-default login` and that the Vertex AI API is "
                "enabled.",
            ) from None
        except exceptions.BadRequest as error:
            raise ConfigError(f"Vertex AI refused to {what}: {error.message}") from None

    # -- the remote-run layer's verbs ----------------------------------------------------------

    def check(self) -> None:
        """Reachable, the API enabled and the caller allowed, before anything is created."""
        try:
            self._call(
                "list custom jobs",
                self.jobs.list_custom_jobs,
                request={"parent": self.parent, "page_size": 1},
            )
        except TransientError as error:
            raise ConfigError(f"{error}: check the region and the network.") from None
        except JobNotFound:
            raise ConfigError(
                f"Vertex AI has no {self.parent}: check project= and region=."
            ) from None

    def store_secrets(self, name: str, values: dict[str, str]) -> dict[str, SecretRef]:
        return secrets.store(
            self.backend.project, self.backend.secret_manager_endpoint, name, values
        )

    def delete_secrets(self, refs: dict[str, SecretRef]) -> None:
        secrets.delete(self.backend.secret_manager_endpoint, refs)

    def submit(self, workload: Workload) -> str:
        job = self._call(
            "create the custom job",
            self.jobs.create_custom_job,
            parent=self.parent,
            custom_job=self.backend.custom_job(workload),
        )
        print(f"zenml: Vertex AI custom job {job.name}: {self.console_url(job.name)}")
        return str(job.name)

    def poll(self, job_id: str) -> JobStatus:
        job = self._call("read the custom job", self.jobs.get_custom_job, name=job_id)
        state = self.types.JobState(job.state).name.removeprefix("JOB_STATE_")
        if state in ("QUEUED", "PENDING"):
            return JobStatus(JobState.PENDING, detail=f"{state.lower()} (waiting for machines)")
        if state in ("RUNNING", "CANCELLING", "UPDATING", "PAUSED"):
            return JobStatus(JobState.RUNNING)
        if state == "SUCCEEDED":
            return JobStatus(JobState.SUCCEEDED)
        if state == "CANCELLED":
            return JobStatus(
                JobState.FAILED,
                Failure(FailureKind.CANCELLED, f"custom job {job_id} was cancelled on Vertex AI"),
            )
        if state == "EXPIRED":
            return JobStatus(
                JobState.FAILED,
                Failure(
                    FailureKind.DEADLINE_EXCEEDED,
                    (
                        f"custom job {job_id} expired: it waited or ran past its limits "
                        f"(timeout_seconds={self.backend.timeout_seconds})"
                    ),
                ),
            )
        return JobStatus(JobState.FAILED, self._failure(job_id, job))

    def _failure(self, job_id: str, job: Any) -> Failure:
        """Why a FAILED job failed. Vertex writes the error a while after the state, so it is
        read again until it comes (up to ``error_wait_seconds``)."""
        deadline = time.monotonic() + self.backend.error_wait_seconds
        pause = 1.0
        while not job.error.message and time.monotonic() < deadline:
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 1.5, 10.0)
            job = self._call("read the custom job", self.jobs.get_custom_job, name=job_id)
        message, code = job.error.message, job.error.code
        link = self.console_url(job_id)
        if not message:
            return Failure(
                FailureKind.UNKNOWN,
                (
                    f"custom job {job_id} failed; Vertex AI gave no reason within "
                    f"{self.backend.error_wait_seconds:g} s: see {link}"
                ),
            )
        text = f"custom job {job_id}: {message} ({link})"
        lowered = message.lower()
        wanted = self.backend.accelerator_type or self.backend.machine_type
        if "resources are insufficient" in lowered or "resource_pool_exhausted" in lowered:
            return Failure(
                FailureKind.STOCKOUT,
                (
                    f"{text}: Vertex AI has no {wanted} "
                    f"free in {self.backend.region} now: retry later, choose another region, or "
                    "fewer or other accelerators"
                ),
            )
        if code == 8 or "quota" in lowered:
            return Failure(
                FailureKind.QUOTA,
                (
                    f"{text}: the project's quota is too small for this job: request more in the "
                    f"console (IAM & Admin > Quotas, project {self.backend.project}, region "
                    f"{self.backend.region}) or ask for fewer machines or accelerators"
                ),
            )
        if "out-of-memory" in lowered or "out of memory" in lowered:
            return Failure(
                FailureKind.OOM,
                (
                    f"{text}: the trainer needed more memory than {self.backend.machine_type} has: "
                    "choose a larger (highmem) machine_type or a smaller batch_size"
                ),
            )
        if "pull image" in lowered or ("image" in lowered and "not found" in lowered):
            return Failure(
                FailureKind.IMAGE_PULL,
                (
                    f"{text}: the Vertex AI service agent must be able to pull the image (Artifact "
                    "Registry reader on its repository)"
                ),
            )
        if code == 4 or "timeout" in lowered or "deadline" in lowered:
            return Failure(
                FailureKind.DEADLINE_EXCEEDED,
                (
                    f"{text}: raise timeout_seconds={self.backend.timeout_seconds} or train for "
                    "fewer epochs"
                ),
            )
        if code == 7 or "permission" in lowered:
            return Failure(FailureKind.PERMISSION, text)
        if "non-zero status" in lowered:
            return Failure(FailureKind.EXIT_CODE, text)
        return Failure(FailureKind.UNKNOWN, text)

    def console_url(self, job_id: str) -> str:
        number = job_id.rsplit("/", 1)[-1]
        return (
            f"https://console.cloud.google.com/vertex-ai/locations/{self.backend.region}/"
            f"training/{number}/cpu?project={self.backend.project}"
        )

    def logs(self, job_id: str, offset: int) -> tuple[str, int]:
        """New lines of the job's replicas, from Cloud Logging (``resource.type="ml_job"``)."""
        if self._logging is None:
            from zenml_gcp.google import credentials_for, quiet_google_imports

            with quiet_google_imports():
                from google.cloud import logging as cloud_logging

            endpoint = self.backend.logging_endpoint
            self._logging = cloud_logging.Client(
                project=self.backend.project,
                credentials=credentials_for(endpoint),
                _use_grpc=False,
                client_options={"api_endpoint": endpoint} if endpoint else None,
            )
        number = job_id.rsplit("/", 1)[-1]
        since, seen = self._log_cursor.get(job_id, ("", set()))
        query = f'resource.type="ml_job" AND resource.labels.job_id="{number}"'
        if since:
            query += f' AND timestamp>="{since}"'
        lines = []
        for entry in self._logging.list_entries(
            resource_names=[f"projects/{self.backend.project}"],
            filter_=query,
            order_by="timestamp asc",
            page_size=1000,
        ):
            stamp = entry.timestamp.isoformat() if entry.timestamp else since
            if entry.insert_id in seen and stamp == since:
                continue
            if stamp != since:
                since, seen = stamp, set()
            seen.add(entry.insert_id)
            text = entry.payload if isinstance(entry.payload, str) else str(entry.payload)
            task = (entry.resource.labels or {}).get("task_name", "") if entry.resource else ""
            lines.append(f"[{task}] {text}" if self._replicas > 1 and task else text)
        self._log_cursor[job_id] = (since, seen)
        if not lines:
            return "", offset
        return "".join(line + "\n" for line in lines), offset + len(lines)

    def cancel(self, job_id: str) -> None:
        """Cancel and wait for CANCELLED (or any end), so nothing goes on billing."""
        self._call("cancel the custom job", self.jobs.cancel_custom_job, name=job_id)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = self._call("read the custom job", self.jobs.get_custom_job, name=job_id)
            state = self.types.JobState(job.state).name
            if state in (
                "JOB_STATE_CANCELLED",
                "JOB_STATE_SUCCEEDED",
                "JOB_STATE_FAILED",
                "JOB_STATE_EXPIRED",
            ):
                print(f"zenml: custom job {job_id} is {state.removeprefix('JOB_STATE_')}")
                return
            time.sleep(1.0)
        raise TransientError(f"custom job {job_id} still not cancelled after 120 s")

    def cleanup(self, job_id: str) -> None:
        """An ended custom job costs nothing and keeps its logs and console page: it stays."""


def _quota_message(platform: _VertexPlatform, error: Any) -> str:
    backend = platform.backend
    return (
        f"Vertex AI refused the custom job for quota (429 RESOURCE_EXHAUSTED: {error.message}): "
        f"request more quota for project {backend.project} in {backend.region} (IAM & Admin > "
        "Quotas, aiplatform.googleapis.com custom_model_training_*), or ask for fewer "
        "machines or accelerators."
    )
