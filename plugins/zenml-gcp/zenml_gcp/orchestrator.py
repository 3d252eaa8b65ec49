"""OrchestratorGCPBackend: a whole pipeline run on a Google Compute Engine VM.

Written on zenml-core's remote-run layer (``zenml_core.backends.remote``). The run spec and the
code package go to the artifact store; a VM is created whose **startup script**
(:mod:`zenml_gcp.vm`) runs ``docker run --rm IMAGE python -m zenml_core run --spec URI`` and
then deletes the VM. Google's container agent (konlet, which read a container declaration from
the metadata) is not used: it stopped working for new VMs on 31 July 2026.

What Compute Engine makes a client do, and this one does (../shared/CLOUD-FACTS.md §1):

- wait on the insert operation and check both its ``httpErrorStatusCode`` and its
  ``error.errors`` (the client library's ``ExtendedOperation`` raises only on the first, and
  polls Google's endpoint whatever endpoint the client was given);
- tell quota, stockout (which moves on to ``fallback_zones``) and permission errors apart;
- decide that the run ended from the run's own record, never from the VM's status (a VM whose
  container exited stays RUNNING, and billing);
- delete the VM on failure, Ctrl-C and timeout; ``instanceTerminationAction: DELETE`` with
  ``maxRunDuration`` deletes it on the server's side if every client is gone; ``zenml-gcp
  sweep`` deletes what is left, found by its ``zenml-run`` label;
- see preemption from outside the VM (a ``compute.instances.preempted`` zone operation, or the
  VM gone without its run ended) and run again on a new VM, resuming from the cache.

google-cloud-compute (about 3 s to import) is imported only when a run starts.
"""

from __future__ import annotations

import hashlib
import re
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
    RemoteOrchestrator,
    SecretRef,
    TransientError,
    Workload,
)
from zenml_core.exceptions import ConfigError
from zenml_gcp import secrets
from zenml_gcp.google import (
    RUN_LABEL,
    SERVICE_ACCOUNT,
    ZONE,
    check_credentials,
    check_endpoint,
    check_env,
    check_labels,
    check_project,
    label_value,
)

if TYPE_CHECKING:
    from zenml_core.backends import RunRequest, StepRequest

COS_IMAGE = "projects/cos-cloud/global/images/family/cos-stable"
CLOUD_SQL_PROXY_IMAGE = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.3"
_MACHINE = re.compile(
    r"^(n1|n2|n2d|e2|c2|c2d|c3|n4|t2d)-(standard|highmem|highcpu)-\d+$|^e2-(micro|small|medium)$"
    r"|^(a2|a3)-(highgpu|megagpu|ultragpu)-\d+g$|^g2-standard-\d+$"
)
#: GPUs attached to N1 machines with ``guestAccelerators``; A2, A3 and G2 carry their own
N1_GPUS = ("nvidia-tesla-t4", "nvidia-tesla-v100", "nvidia-tesla-p100", "nvidia-tesla-p4")
_IMAGE = re.compile(r"^projects/[-a-z0-9]+/global/images/(family/)?[-a-z0-9]+$")
_NETWORK = re.compile(
    r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
    r"|^(projects/[-a-z0-9]+/)?(global|regions/[-a-z0-9]+)/\w+/[-a-z0-9]+$"
)
_CLOUD_SQL = re.compile(r"^[-a-z0-9.:]+:[a-z]+(-[a-z]+)*\d+:[a-z][-a-z0-9]*$")
_SCOPE = re.compile(r"^https://www\.googleapis\.com/auth/[\w.-]+$")
_STOCKOUT = ("ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
             "UNSUPPORTED_OPERATION", "insufficientCapacity")  # fmt: skip
#: what the startup script prints when the run's container ended (see zenml_gcp.vm)
EXIT_LINE = re.compile(r"^zenml-vm: the run's container exited with code (\d+)$", re.M)
_PULL_FAILED = re.compile(r"Unable to find image|pull access denied|manifest unknown|"
                          r"error pulling image")  # fmt: skip


@dataclass
class OrchestratorGCPBackend(RemoteOrchestrator):
    """Runs the whole pipeline on a Compute Engine VM in ``project`` and ``zone``.

    ``image`` defaults to zenml-core's base image of this version (``-gpu`` with GPUs); it
    must hold zenml-gcp, and the plugins the run's steps use. The stores must be reachable from
    the VM: ``gs://`` artifacts and a MySQL metadata store (with ``cloudsql_connection_name``,
    the Cloud SQL Auth Proxy runs beside the run, and the store's host is 127.0.0.1 there as
    here). ``spot`` (or the seed's ``preemptible``) buys Spot capacity; a preempted run is run
    again up to ``preemption_retries`` times. ``max_run_duration_seconds`` is the server-side
    backstop: past it Compute Engine deletes the VM whatever happened to this process.
    """

    project: str = ""
    zone: str = "us-central1-a"
    fallback_zones: list[str] = field(default_factory=list)
    machine_type: str = "e2-standard-4"
    image: str | None = None
    boot_image: str = COS_IMAGE
    disk_size_gb: int = 50
    spot: bool = False
    preemptible: bool = False
    gpu_type: str | None = None
    gpu_count: int = 0
    service_account: str | None = None
    scopes: list[str] = field(
        default_factory=lambda: ["https://www.googleapis.com/auth/cloud-platform"]
    )
    network: str = "default"
    subnetwork: str | None = None
    external_ip: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    cloudsql_connection_name: str | None = None
    cloudsql_proxy_image: str = CLOUD_SQL_PROXY_IMAGE
    max_run_duration_seconds: int = 24 * 3600
    preemption_retries: int = 2
    #: seconds the VM waits after its run before deleting itself, so that a waiting client reads
    #: the run's last lines first (the serial port goes with the VM) and deletes it sooner;
    #: 0 when not waiting
    self_delete_delay_seconds: int = 60
    #: the run's container logs to Cloud Logging too (``--log-driver=gcplogs``): its output
    #: outlives the VM; the serial port is streamed either way
    cloud_logging: bool = False
    #: endpoints other than Google's (a private endpoint, or an emulator: ``http://...``)
    api_endpoint: str | None = None
    secret_manager_endpoint: str | None = None
    #: how long an insert, a delete may take before it is given up on
    operation_timeout_seconds: float = 600.0
    wait: bool = True
    stream_logs: bool = True
    poll_seconds: float = 5.0

    # -- validation, before anything exists ----------------------------------------------------

    def validate(self) -> None:
        from zenml_core.docker import check_image_reference

        what = type(self).__name__
        check_project(what, self.project)
        for zone in [self.zone, *self.fallback_zones]:
            if not isinstance(zone, str) or not ZONE.match(zone):
                raise ConfigError(
                    f"{what}: zone {zone!r} is not a Compute Engine zone: write e.g. "
                    "'us-central1-a' or 'europe-west4-b' (a zone, not a region)."
                )
        if self.zone in self.fallback_zones:
            raise ConfigError(f"{what}: fallback_zones repeats the zone {self.zone!r}.")
        if not isinstance(self.machine_type, str) or not _MACHINE.match(self.machine_type):
            raise ConfigError(
                f"{what}: machine_type {self.machine_type!r} is not a Compute Engine machine "
                "type: write e.g. 'e2-standard-4', 'n1-standard-8' or 'g2-standard-8'."
            )
        if self.image is not None:
            check_image_reference(self.image, f"{what} image")
        check_image_reference(self.cloudsql_proxy_image, f"{what} cloudsql_proxy_image")
        if not isinstance(self.boot_image, str) or not _IMAGE.match(self.boot_image):
            raise ConfigError(
                f"{what}: boot_image {self.boot_image!r} is not a Compute Engine image: write "
                f"projects/PROJECT/global/images/[family/]NAME (default {COS_IMAGE})."
            )
        if isinstance(self.disk_size_gb, bool) or not 10 <= self.disk_size_gb <= 65536:
            raise ConfigError(f"{what}: disk_size_gb must be 10 to 65536.")
        self._check_gpus(what)
        if self.service_account is not None and not SERVICE_ACCOUNT.match(self.service_account):
            raise ConfigError(
                f"{what}: service_account {self.service_account!r} is not a service account "
                "email (NAME@PROJECT.iam.gserviceaccount.com)."
            )
        for scope in self.scopes:
            if not isinstance(scope, str) or not _SCOPE.match(scope):
                raise ConfigError(
                    f"{what}: scope {scope!r} is not an OAuth scope URL (e.g. "
                    "'https://www.googleapis.com/auth/cloud-platform')."
                )
        for name in ("network", "subnetwork"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not _NETWORK.match(value)):
                raise ConfigError(f"{what}: {name} {value!r} is not a network name or path.")
        check_labels(what, self.labels)
        check_env(what, self.env, "the VM's startup script (instance metadata)")
        if self.cloudsql_connection_name is not None and not _CLOUD_SQL.match(
            str(self.cloudsql_connection_name)
        ):
            raise ConfigError(
                f"{what}: cloudsql_connection_name {self.cloudsql_connection_name!r} is not a "
                "Cloud SQL instance connection name: write PROJECT:REGION:INSTANCE."
            )
        if (
            isinstance(self.max_run_duration_seconds, bool)
            or not 30 <= self.max_run_duration_seconds <= 120 * 24 * 3600
        ):
            raise ConfigError(
                f"{what}: max_run_duration_seconds must be 30 s to 120 days (Compute Engine's "
                f"range), got {self.max_run_duration_seconds!r}."
            )
        if (
            isinstance(self.self_delete_delay_seconds, bool)
            or not 0 <= self.self_delete_delay_seconds <= 3600
        ):
            raise ConfigError(f"{what}: self_delete_delay_seconds must be 0 to 3600.")
        if isinstance(self.preemption_retries, bool) or not 0 <= self.preemption_retries <= 10:
            raise ConfigError(f"{what}: preemption_retries must be 0 to 10.")
        if self.poll_seconds <= 0 or self.operation_timeout_seconds <= 0:
            raise ConfigError(f"{what}: poll_seconds and operation_timeout_seconds are positive.")
        for name in ("api_endpoint", "secret_manager_endpoint"):
            check_endpoint(what, name, getattr(self, name))

    def _check_gpus(self, what: str) -> None:
        family = self.machine_type.split("-", 1)[0]
        count = self.gpu_count
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(f"{what}: gpu_count must be a whole number >= 0.")
        if (self.gpu_type is None) != (count == 0):
            raise ConfigError(
                f"{what}: gpu_type and gpu_count are set together or not at all (got gpu_type="
                f"{self.gpu_type!r}, gpu_count={count}): e.g. gpu_type='nvidia-tesla-t4', "
                "gpu_count=1."
            )
        if self.gpu_type is None:
            return
        if family in ("a2", "a3", "g2"):
            raise ConfigError(
                f"{what}: {self.machine_type} comes with its own GPUs: leave gpu_type and "
                "gpu_count unset."
            )
        if self.gpu_type not in N1_GPUS:
            raise ConfigError(
                f"{what}: gpu_type {self.gpu_type!r} is not a GPU Compute Engine attaches "
                f"(guestAccelerators): choose one of {list(N1_GPUS)} on an n1- machine, or an "
                "a2-, a3- or g2- machine type for A100, H100 or L4."
            )
        if family != "n1":
            raise ConfigError(
                f"{what}: {self.gpu_type} is attached to N1 machines only, not "
                f"{self.machine_type!r}: use e.g. machine_type='n1-standard-8'."
            )
        if count not in (1, 2, 4, 8):
            raise ConfigError(f"{what}: gpu_count must be 1, 2, 4 or 8, not {count}.")

    # -- what the VM is ------------------------------------------------------------------------

    @property
    def buys_spot(self) -> bool:
        return bool(self.spot or self.preemptible)

    @property
    def has_gpus(self) -> bool:
        return self.gpu_count > 0 or self.machine_type.split("-", 1)[0] in ("a2", "a3", "g2")

    def platform(self) -> _ComputePlatform:
        return _ComputePlatform(self)

    def preflight(self, request: RunRequest) -> None:
        if self.cloudsql_connection_name:
            store = request.components.metadata_store
            host = getattr(store, "host", None)
            if host not in ("127.0.0.1", "localhost"):
                raise ConfigError(
                    f"{type(self).__name__}: with cloudsql_connection_name the metadata store "
                    "is reached through the Cloud SQL Auth Proxy on 127.0.0.1 (here and on the "
                    f"VM): set MySQLMetadataStore(host='127.0.0.1', ...), not {host!r}, and run "
                    "the proxy here too."
                )
        super().preflight(request)

    def workload(
        self, request: RunRequest, command: list[str], step: StepRequest | None
    ) -> Workload:
        from zenml_core.docker import base_image

        run_id = request.spec.run_id
        digest = hashlib.sha256(f"{run_id}/{time.time_ns()}".encode()).hexdigest()[:6]
        name = re.sub(r"-+", "-", f"zenml-{label_value(run_id)}"[:56].rstrip("-_"))
        return Workload(
            name=f"{name.replace('_', '-')}-{digest}",
            image=self.image or base_image(gpu=self.has_gpus),
            command=command,
            env=dict(self.env),
            labels={
                **self.labels,
                RUN_LABEL: label_value(run_id),
                "zenml-pipeline": label_value(request.spec.pipeline.name),
            },
            deadline_seconds=self.max_run_duration_seconds,
            run_id=run_id,
        )

    def instance(self, workload: Workload, zone: str) -> dict[str, Any]:
        """The Instance resource (Compute Engine's JSON field names) for ``workload``."""
        from zenml_gcp.vm import startup_script

        network: dict[str, Any] = {"network": _network_path(self.network)}
        if self.subnetwork:
            region = zone.rsplit("-", 1)[0]
            network["subnetwork"] = (
                self.subnetwork
                if "/" in self.subnetwork
                else f"regions/{region}/subnetworks/{self.subnetwork}"
            )
        if self.external_ip:
            network["accessConfigs"] = [{"name": "External NAT", "type": "ONE_TO_ONE_NAT"}]
        scheduling: dict[str, Any] = {
            "provisioningModel": "SPOT" if self.buys_spot else "STANDARD",
            "instanceTerminationAction": "DELETE",
            "maxRunDuration": {"seconds": str(self.max_run_duration_seconds)},
            # GPUs cannot live-migrate, nor can Spot VMs
            "onHostMaintenance": "TERMINATE" if self.has_gpus or self.buys_spot else "MIGRATE",
            "automaticRestart": not self.buys_spot,
        }
        body: dict[str, Any] = {
            "name": workload.name,
            "machineType": f"zones/{zone}/machineTypes/{self.machine_type}",
            "disks": [
                {
                    "boot": True,
                    "autoDelete": True,
                    "initializeParams": {
                        "sourceImage": self.boot_image,
                        "diskSizeGb": str(self.disk_size_gb),
                    },
                }
            ],
            "networkInterfaces": [network],
            "serviceAccounts": [
                {"email": self.service_account or "default", "scopes": list(self.scopes)}
            ],
            "scheduling": scheduling,
            "labels": workload.labels,
            "metadata": {
                "items": [
                    {"key": "startup-script", "value": startup_script(self, workload)},
                    {"key": "zenml-spec", "value": _spec_uri(workload.command)},
                    {"key": "zenml-run", "value": workload.run_id},
                ]
            },
        }
        if self.gpu_type:
            body["guestAccelerators"] = [{
                "acceleratorType": f"projects/{self.project}/zones/{zone}/acceleratorTypes/"
                                   f"{self.gpu_type}",
                "acceleratorCount": self.gpu_count,
            }]  # fmt: skip
        return body


def _network_path(network: str) -> str:
    return network if "/" in network else f"global/networks/{network}"


def _spec_uri(command: list[str]) -> str:
    return command[command.index("--spec") + 1] if "--spec" in command else ""


def compute_clients(endpoint: str | None) -> tuple[Any, Any]:
    """Compute Engine's instances and zone operations clients (REST) for ``endpoint``
    (Google's when None; ``http://`` ones are emulators: anonymous)."""
    from zenml_gcp.google import credentials_for, quiet_google_imports

    with quiet_google_imports():
        from google.api_core.client_options import ClientOptions
        from google.cloud import compute_v1

    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    credentials = credentials_for(endpoint)
    return (
        compute_v1.InstancesClient(
            credentials=credentials, transport="rest", client_options=options
        ),
        compute_v1.ZoneOperationsClient(
            credentials=credentials, transport="rest", client_options=options
        ),
    )


def wait_operation(operations: Any, project: str, zone: str, name: str, timeout: float) -> Any:
    """Poll a zone operation until DONE (it may stay RUNNING a while); the operation."""
    deadline = time.monotonic() + timeout
    pause = 0.2
    while True:
        operation = operations.get(project=project, zone=zone, operation=name)
        if type(operation).Status(operation.status).name == "DONE":
            return operation
        if time.monotonic() > deadline:
            raise TransientError(f"operation {name} in {zone} not DONE after {timeout:g} s")
        time.sleep(pause)
        pause = min(pause * 1.5, 5.0)


def operation_errors(operation: Any) -> list[tuple[str, str]]:
    """(code, message) of a DONE operation's errors: its ``error.errors`` and its HTTP error
    status, both (the client library raises only on the second)."""
    errors = [(e.code, e.message) for e in operation.error.errors] if operation.error else []
    if not errors and operation.http_error_status_code:
        errors = [(str(operation.http_error_status_code), operation.http_error_message)]
    return errors


class _ComputePlatform:
    """The Compute Engine and Secret Manager calls the remote-run layer needs."""

    local_processes = False
    ends_by_record = True  # a VM stays RUNNING after its run's container exits

    def __init__(self, backend: OrchestratorGCPBackend) -> None:
        self.backend = backend
        self.where = f"Compute Engine ({backend.project}, {backend.zone})"
        # the clients look for credentials when made: say how to get them first
        check_credentials(type(backend).__name__, backend.api_endpoint)
        self.instances, self.operations = compute_clients(backend.api_endpoint)
        self._links: dict[str, str] = {}  # job -> the instance's selfLink
        self._serial_tail: dict[str, str] = {}

    def _call(self, what: str, function: Any, **kwargs: Any) -> Any:
        from google.api_core import exceptions
        from requests import exceptions as http

        try:
            return function(**kwargs)
        except (
            exceptions.ServiceUnavailable,
            exceptions.InternalServerError,
            exceptions.BadGateway,
            exceptions.GatewayTimeout,
            exceptions.TooManyRequests,
            http.ConnectionError,
            http.Timeout,
        ) as error:
            raise TransientError(f"Compute Engine did not answer {what}: {error}") from None
        except exceptions.NotFound as error:
            raise JobNotFound(f"Compute Engine: {error.message}") from None
        except (exceptions.Forbidden, exceptions.Unauthorized) as error:
            reasons = {e.get("reason") for e in error.errors or [] if isinstance(e, dict)}
            if "quotaExceeded" in reasons or "Quota '" in error.message:
                raise InfrastructureFailure(FailureKind.QUOTA, self._quota(error.message)) from None
            raise InfrastructureFailure(
                FailureKind.PERMISSION,
                f"Compute Engine refused to {what} in {self.backend.project}: {error.message}. "
                "The caller needs roles/compute.instanceAdmin.v1 and iam.serviceAccountUser on "
                f"the VM's service account ({self.backend.service_account or 'the Compute '}"
                f"{'' if self.backend.service_account else 'Engine default'}); check `gcloud "
                "auth application-default login` and that the Compute Engine API is enabled.",
            ) from None
        except exceptions.BadRequest as error:
            raise ConfigError(f"Compute Engine refused to {what}: {error.message}") from None

    def _quota(self, message: str) -> str:
        gpus = "GPUS_ALL_REGIONS" in message
        return (
            f"Compute Engine refused the VM for quota: {message} Request more quota (IAM & "
            f"Admin > Quotas, project {self.backend.project}"
            + (", GPUs (all regions)" if gpus else ", the zone's region")
            + ") or ask for a smaller machine_type"
            + (" or fewer GPUs." if gpus else ".")
        )

    # -- the remote-run layer's verbs ----------------------------------------------------------

    def check(self) -> None:
        try:
            self._call(
                "list instances",
                self.instances.list,
                request={"project": self.backend.project, "zone": self.backend.zone,
                         "max_results": 1},
            )  # fmt: skip
        except TransientError as error:
            raise ConfigError(f"{error}: check the network.") from None
        except JobNotFound:
            raise ConfigError(
                f"Compute Engine has no zone {self.backend.zone} in project "
                f"{self.backend.project}: check project= and zone=."
            ) from None
        except InfrastructureFailure as error:
            raise ConfigError(str(error)) from None

    def store_secrets(self, name: str, values: dict[str, str]) -> dict[str, SecretRef]:
        return secrets.store(
            self.backend.project, self.backend.secret_manager_endpoint, name, values
        )

    def delete_secrets(self, refs: dict[str, SecretRef]) -> None:
        secrets.delete(self.backend.secret_manager_endpoint, refs)

    def submit(self, workload: Workload) -> str:
        backend = self.backend
        stockouts = []
        for zone in [backend.zone, *backend.fallback_zones]:
            operation = self._call(
                "create the VM",
                self.instances.insert,
                project=backend.project,
                zone=zone,
                instance_resource=self._instance_message(backend.instance(workload, zone)),
            )
            done = wait_operation(
                self.operations, backend.project, zone, operation.name,
                backend.operation_timeout_seconds,
            )  # fmt: skip
            errors = operation_errors(done)
            if not errors:
                job = f"{zone}/{workload.name}"
                self._links[job] = done.target_link
                print(f"zenml: VM {workload.name} in {zone}: {self.console_url(job)}")
                if backend.cloud_logging:
                    print(f"zenml: the run's log in Cloud Logging: {self.logs_url(done.target_id)}")
                return job
            codes = {code for code, _ in errors}
            text = "; ".join(f"{code}: {message}" for code, message in errors)
            if codes & set(_STOCKOUT):
                stockouts.append(zone)
                print(f"zenml: {zone} has no {backend.machine_type} free now ({text})")
                continue
            if any("QUOTA" in code for code in codes):
                raise InfrastructureFailure(FailureKind.QUOTA, self._quota(text))
            if any("PERMISSION" in code or code == "403" for code in codes):
                raise InfrastructureFailure(
                    FailureKind.PERMISSION, f"Compute Engine refused the VM: {text}"
                )
            raise InfrastructureFailure(
                FailureKind.UNKNOWN, f"Compute Engine could not create the VM: {text}"
            )
        wanted = backend.machine_type + (f" with {backend.gpu_type}" if backend.gpu_type else "")
        raise InfrastructureFailure(
            FailureKind.STOCKOUT,
            f"No zone had {wanted} free ({', '.join(stockouts)}: ZONE_RESOURCE_POOL_EXHAUSTED): "
            "add fallback_zones=[...], choose another machine_type, or retry later.",
        )

    def _instance_message(self, body: dict[str, Any]) -> Any:
        import json

        from google.cloud import compute_v1

        return compute_v1.Instance.from_json(json.dumps(body))  # the API's own JSON names

    def _zone_name(self, job: str) -> tuple[str, str]:
        zone, _, name = job.partition("/")
        return zone, name

    def _preempted(self, job: str) -> bool:
        zone, _ = self._zone_name(job)
        link = self._links.get(job, "")
        answer = self._call(
            "list zone operations",
            self.operations.list,
            request={
                "project": self.backend.project,
                "zone": zone,
                "filter": f'operationType="compute.instances.preempted" AND targetLink="{link}"',
            },
        )
        return any(True for _ in answer)

    def poll(self, job: str) -> JobStatus:
        zone, name = self._zone_name(job)
        try:
            instance = self._call(
                "read the VM", self.instances.get,
                project=self.backend.project, zone=zone, instance=name,
            )  # fmt: skip
        except JobNotFound:
            if self._preempted(job):
                return self._preemption(job)
            raise
        status = str(instance.status)
        tail = self._serial_tail.get(job, "")
        if _PULL_FAILED.search(tail):
            return JobStatus(
                JobState.FAILED,
                Failure(
                    FailureKind.IMAGE_PULL,
                    f"VM {name} could not pull the run's image: {_last(tail)}. The VM's service "
                    "account needs Artifact Registry reader on the image's repository, and the "
                    f"image must exist ({self.console_url(job)})",
                ),
            )
        if exit_code := EXIT_LINE.search(tail):
            code = int(exit_code[1])
            return JobStatus(
                JobState.FAILED,
                Failure(
                    FailureKind.EXIT_CODE,
                    f"the run's container on VM {name} exited with code {code} before its run "
                    f"ended: {_last(tail)} ({self.console_url(job)})",
                ),
            )
        if status in ("PROVISIONING", "STAGING"):
            return JobStatus(JobState.PENDING, detail=status.lower())
        if status == "RUNNING":
            return JobStatus(JobState.RUNNING)
        if self._preempted(job):
            return self._preemption(job)
        return JobStatus(
            JobState.FAILED,
            Failure(
                FailureKind.UNKNOWN,
                f"VM {name} is {status} before its run ended (stopped by someone, or past "
                f"max_run_duration_seconds={self.backend.max_run_duration_seconds}): "
                f"{self.console_url(job)}",
            ),
        )

    def _preemption(self, job: str) -> JobStatus:
        zone, name = self._zone_name(job)
        return JobStatus(
            JobState.FAILED,
            Failure(
                FailureKind.PREEMPTED,
                f"VM {name} in {zone} was preempted (Compute Engine took its Spot capacity back)",
            ),
        )

    def logs(self, job: str, offset: int) -> tuple[str, int]:
        """New lines of the startup script (and the containers it runs), from serial port 1,
        read from byte ``offset`` (the port keeps the last 1 MB; older output is lost)."""
        from google.api_core import exceptions

        zone, name = self._zone_name(job)
        try:
            output = self.instances.get_serial_port_output(
                request={"project": self.backend.project, "zone": zone, "instance": name,
                         "port": 1, "start": offset}
            )  # fmt: skip
        except (exceptions.NotFound, exceptions.BadRequest):  # gone, or not booted yet
            return "", offset
        text = output.contents
        lost = int(output.start) - offset if output.start else 0
        lines = []
        if lost > 0:
            lines.append(f"(... {lost} bytes of output are lost: the serial port keeps 1 MB)")
        for line in text.splitlines():
            _, marker, rest = line.partition("startup-script: ")
            if marker:
                lines.append(rest)
        self._serial_tail[job] = (self._serial_tail.get(job, "") + "\n".join(lines) + "\n")[-20000:]
        shown = "".join(f"{line}\n" for line in lines if not line.startswith("zenml-vm: "))
        return shown, int(output.next_ or offset)

    def logs_complete(self, job: str) -> bool:
        """The serial port lags the run's record: everything is read once the script said how
        the run's container exited (or the VM is gone)."""
        if EXIT_LINE.search(self._serial_tail.get(job, "")):
            return True
        zone, name = self._zone_name(job)
        try:
            self._call("read the VM", self.instances.get,
                       project=self.backend.project, zone=zone, instance=name)  # fmt: skip
        except JobNotFound:
            return True
        return False

    def cancel(self, job: str) -> None:
        self.cleanup(job)

    def cleanup(self, job: str) -> None:
        """Delete the VM (it would go on billing) and wait until it is gone."""
        zone, name = self._zone_name(job)
        operation = self._call(
            "delete the VM", self.instances.delete,
            project=self.backend.project, zone=zone, instance=name,
        )  # fmt: skip
        wait_operation(
            self.operations, self.backend.project, zone, operation.name,
            self.backend.operation_timeout_seconds,
        )  # fmt: skip
        print(f"zenml: VM {name} in {zone} deleted")

    def logs_url(self, instance_id: Any) -> str:
        from urllib.parse import quote

        query = (
            f'resource.type="gce_instance" resource.labels.instance_id="{instance_id}" '
            f'logName="projects/{self.backend.project}/logs/gcplogs-docker-driver"'
        )
        return (
            "https://console.cloud.google.com/logs/query;query="
            f"{quote(query, safe='')}?project={self.backend.project}"
        )

    def console_url(self, job: str) -> str:
        zone, name = self._zone_name(job)
        return (
            f"https://console.cloud.google.com/compute/instancesDetail/zones/{zone}/instances/"
            f"{name}/console?port=1&project={self.backend.project}"
        )


def _last(text: str, count: int = 3) -> str:
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-count:])[-600:]
