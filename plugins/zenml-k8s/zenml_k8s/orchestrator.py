"""KubernetesOrchestrator: a pipeline run as one Kubernetes Job, or each step as its own Job.

Written on zenml-core's remote-run layer (``zenml_core.backends.remote``): the run spec and the
code package travel through the artifact store, the Job's pod runs ``python -m zenml_core run
--spec URI`` (or ``step ...``) in the chosen image and writes the run's metadata to the shared
metadata store. Secrets the stores need (the MySQL password) reach the pod through a
Kubernetes Secret made for the run and referenced by name, never as values in the Job. What
this module holds is what is Kubernetes's own: manifests, API calls, and how a pod's end reads.

The kubernetes client is imported only when a run starts.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import sys
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
    RemoteOrchestrator,
    Resources,
    SecretRef,
    TransientError,
    Workload,
)
from zenml_core.exceptions import ConfigError, ZenMLError

if TYPE_CHECKING:
    from zenml_core.backends import RunRequest, StepRequest

MANAGED_BY = "zenml-core"
CONTAINER = "zenml"
#: waiting reasons a pod does not recover from by itself, and what kind of failure each is
STUCK_REASONS = {
    "ErrImagePull": FailureKind.IMAGE_PULL,
    "ImagePullBackOff": FailureKind.IMAGE_PULL,
    "InvalidImageName": FailureKind.IMAGE_PULL,
    "ErrImageNeverPull": FailureKind.IMAGE_PULL,
    "CreateContainerConfigError": FailureKind.CONFIG,
    "CreateContainerError": FailureKind.CONFIG,
}
#: API answers worth a retry (throttling, a server hiccup)
RETRY_STATUSES = (429, 500, 502, 503, 504)
STOP_WAIT_SECONDS = 60  # the default termination grace period (30 s), and then some

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
# resource.Quantity: <sign><digits>[.<digits>][suffix], suffix binary (Ki..Ei), decimal
# (n u m k M G T P E) or an exponent
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
_SECRET_LIKE = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY", re.I)
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}


@dataclass
class KubernetesOrchestrator(RemoteOrchestrator):
    """Runs the whole pipeline as a Kubernetes Job in ``namespace`` or, with ``per_step``,
    each step as its own Job (at most ``max_parallel`` at once), each with the resources the
    step asks for (``Step.with_resources``).

    ``image`` defaults to zenml-core's base image of this version (``-gpu`` when GPUs are
    asked for). The API is found from ``kubeconfig``/``context`` (default: ``$KUBECONFIG`` or
    ~/.kube/config, current context), or from the pod's service account with ``in_cluster``.
    Plain ``env`` values appear in the Job; for secret values create a Kubernetes Secret and
    list its name in ``secrets`` (its keys become environment variables).
    """

    image: str | None = None
    namespace: str = "default"
    context: str | None = None
    kubeconfig: str | None = None
    in_cluster: bool = False
    service_account: str | None = None
    cpu_request: str | None = None
    cpu_limit: str | None = None
    memory_request: str | None = None
    memory_limit: str | None = None
    gpus: int = 0
    gpu_resource: str = "nvidia.com/gpu"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    ttl_seconds_after_finished: int | None = 3600
    backoff_limit: int = 0
    active_deadline_seconds: int | None = None
    image_pull_policy: str | None = None
    per_step: bool = False
    max_parallel: int = 4
    wait: bool = True
    stream_logs: bool = True
    poll_seconds: float = 2.0

    # -- validation, before anything exists ----------------------------------------------------

    def validate(self) -> None:
        from zenml_core.docker import check_image_reference

        if self.image is not None:
            check_image_reference(self.image, "KubernetesOrchestrator image")
        _check_dns_label(self.namespace, "namespace")
        if self.service_account is not None:
            _check_dns_subdomain(self.service_account, "service_account")
        if self.in_cluster and (self.kubeconfig or self.context):
            raise ConfigError(
                "KubernetesOrchestrator: in_cluster=True uses the pod's service account; "
                "drop kubeconfig/context, or set in_cluster=False."
            )
        for name in ("cpu_request", "cpu_limit", "memory_request", "memory_limit"):
            value = getattr(self, name)
            if value is not None and not _QUANTITY.match(str(value)):
                raise ConfigError(
                    f"KubernetesOrchestrator: {name}={value!r} is not a Kubernetes quantity: "
                    "write e.g. '500m' or '2' for CPU, '512Mi' or '4Gi' for memory."
                )
        if self.gpus < 0:
            raise ConfigError(f"KubernetesOrchestrator: gpus must be 0 or more, got {self.gpus}.")
        _check_label_key(self.gpu_resource, "gpu_resource")
        for key, value in {**self.labels, **self.node_selector}.items():
            _check_label_key(key, "label/node_selector key")
            if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
                raise ConfigError(
                    f"KubernetesOrchestrator: label value {value!r} (of {key!r}) must be at most "
                    "63 characters of letters, digits, '-', '_' or '.', starting and ending "
                    "alphanumeric."
                )
        for name in self.env:
            if not _ENV_NAME.match(name):
                raise ConfigError(f"KubernetesOrchestrator: {name!r} is not a valid env name.")
            if _SECRET_LIKE.search(name):
                raise ConfigError(
                    f"KubernetesOrchestrator: env {name!r} looks like a secret, and env values "
                    "are written into the Job in clear text: put it in a Kubernetes Secret "
                    f"(kubectl create secret generic NAME --from-literal={name}=...) and pass "
                    "secrets=['NAME']."
                )
        for secret in self.secrets:
            _check_dns_subdomain(secret, "secret name")
        for toleration in self.tolerations:
            unknown = set(toleration) - _TOLERATION_KEYS
            if unknown or toleration.get("operator", "Equal") not in ("Equal", "Exists"):
                raise ConfigError(
                    f"KubernetesOrchestrator: toleration {toleration!r} is not valid: keys are "
                    f"{sorted(_TOLERATION_KEYS)}, operator is 'Equal' or 'Exists'."
                )
            if toleration.get("effect", "") not in (
                "",
                "NoSchedule",
                "PreferNoSchedule",
                "NoExecute",
            ):
                raise ConfigError(
                    f"KubernetesOrchestrator: toleration effect {toleration['effect']!r} must be "
                    "NoSchedule, PreferNoSchedule or NoExecute."
                )
        for name in ("ttl_seconds_after_finished", "active_deadline_seconds"):
            value = getattr(self, name)
            if value is not None and value < (0 if name.startswith("ttl") else 1):
                raise ConfigError(f"KubernetesOrchestrator: {name} must be positive, got {value}.")
        if self.backoff_limit < 0:
            raise ConfigError("KubernetesOrchestrator: backoff_limit must be 0 or more.")
        if self.image_pull_policy not in (None, "Always", "IfNotPresent", "Never"):
            raise ConfigError(
                f"KubernetesOrchestrator: image_pull_policy {self.image_pull_policy!r} must be "
                "'Always', 'IfNotPresent' or 'Never'."
            )
        if self.poll_seconds <= 0:
            raise ConfigError("KubernetesOrchestrator: poll_seconds must be positive.")
        if self.max_parallel < 1:
            raise ConfigError("KubernetesOrchestrator: max_parallel must be at least 1.")
        if self.per_step and not self.wait:
            raise ConfigError(
                "KubernetesOrchestrator: per_step=True needs wait=True: this process starts "
                "each step's Job as its inputs become ready."
            )

    # -- workloads and manifests -----------------------------------------------------------

    def platform(self) -> _KubernetesPlatform:
        return _KubernetesPlatform(self)

    def job_name(self, run_id: str, step: str | None = None) -> str:
        """A DNS label of at most 52 characters (pod names add a suffix), unique per run and
        step."""
        owner = f"{run_id}/{step}" if step else run_id
        digest = hashlib.sha256(owner.encode()).hexdigest()[:8]
        stem = re.sub(r"[^a-z0-9-]+", "-", owner.lower()).strip("-")[:36].strip("-")
        return f"zenml-{stem}-{digest}" if stem else f"zenml-{digest}"

    def run_labels(self, run_id: str, pipeline: str, step: str | None = None) -> dict[str, str]:
        labels = {
            "app.kubernetes.io/managed-by": MANAGED_BY,
            "zenml.io/pipeline": _label_value(pipeline),
            "zenml.io/run-id": _label_value(run_id),
        }
        if step is not None:
            labels["zenml.io/step"] = _label_value(step)
        return {**labels, **self.labels}

    def resources(self, step: StepRequest | None) -> Resources:
        """The step's own resources where it asks for some, else the orchestrator's."""
        if step is not None and "resources" in step.settings:
            return Resources.from_dict(step.settings["resources"])
        return Resources(cpu=self.cpu_request, memory=self.memory_request, gpus=self.gpus)

    def workload(
        self, request: RunRequest, command: list[str], step: StepRequest | None
    ) -> Workload:
        from zenml_core.docker import base_image

        resources = self.resources(step)
        name = None if step is None else step.step
        return Workload(
            name=self.job_name(request.spec.run_id, name),
            image=self.image or base_image(gpu=resources.gpus > 0),
            command=command,
            env=dict(self.env),
            resources=resources,
            labels=self.run_labels(request.spec.run_id, request.spec.pipeline.name, name),
            deadline_seconds=self.active_deadline_seconds,
            run_id=request.spec.run_id,
            step=name,
        )

    def secret_manifest(
        self, name: str, labels: dict[str, str], values: dict[str, str]
    ) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
        }

    def job_manifest(self, workload: Workload) -> dict[str, Any]:
        env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in workload.env.items()]
        env += [
            {"name": key, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
            for key, ref in sorted(workload.secret_env.items())
        ]
        container: dict[str, Any] = {
            "name": CONTAINER,
            "image": workload.image,
            "command": workload.command,
            "env": env,
        }
        if self.secrets:
            container["envFrom"] = [{"secretRef": {"name": s}} for s in self.secrets]
        if self.image_pull_policy:
            container["imagePullPolicy"] = self.image_pull_policy
        resources = self._container_resources(workload.resources)
        if resources:
            container["resources"] = resources
        pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
        if self.service_account:
            pod["serviceAccountName"] = self.service_account
        if self.node_selector:
            pod["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            pod["tolerations"] = [dict(t) for t in self.tolerations]
        spec: dict[str, Any] = {
            "backoffLimit": self.backoff_limit,
            "template": {"metadata": {"labels": workload.labels}, "spec": pod},
        }
        if self.ttl_seconds_after_finished is not None:
            spec["ttlSecondsAfterFinished"] = self.ttl_seconds_after_finished
        if workload.deadline_seconds is not None:
            spec["activeDeadlineSeconds"] = workload.deadline_seconds
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": workload.name,
                "namespace": self.namespace,
                "labels": workload.labels,
            },
            "spec": spec,
        }

    def _container_resources(self, wanted: Resources) -> dict[str, dict[str, str]]:
        """Requests and limits: the orchestrator's, with what a step asks for on top (its
        memory as both request and limit, so a step that needs 8Gi is never given less)."""
        requests = {"cpu": self.cpu_request, "memory": self.memory_request}
        limits: dict[str, str | None] = {"cpu": self.cpu_limit, "memory": self.memory_limit}
        if wanted.cpu is not None:
            requests["cpu"] = str(wanted.cpu)
        if wanted.memory is not None:
            requests["memory"] = limits["memory"] = wanted.memory
        if wanted.gpus:
            limits[self.gpu_resource] = str(wanted.gpus)
        resources = {
            kind: {k: v for k, v in values.items() if v is not None}
            for kind, values in (("requests", requests), ("limits", limits))
        }
        return {k: v for k, v in resources.items() if v}

    def manifests(self, request: RunRequest, spec_location: str) -> list[dict[str, Any]]:
        """What a whole-run ``run`` creates, in order: the run's Secret (when its stores have
        secrets), then the Job."""
        workload = self.workload(request, request.command(spec_location), None)
        values = request.secret_environment()
        if not values:
            return [self.job_manifest(workload)]
        secret = f"{workload.name}-env"
        workload.secret_env = {key: SecretRef(secret, key) for key in values}
        labels = self.run_labels(request.spec.run_id, request.spec.pipeline.name)
        return [self.secret_manifest(secret, labels, values), self.job_manifest(workload)]


class _KubernetesPlatform:
    """The kubernetes client calls the remote-run layer needs, with our error messages."""

    local_processes = False

    def __init__(self, backend: KubernetesOrchestrator) -> None:
        from kubernetes import client, config

        self.backend = backend
        self.namespace = backend.namespace
        self.where = f"Kubernetes (namespace {backend.namespace})"
        configuration = client.Configuration()
        try:
            if backend.in_cluster:
                config.load_incluster_config(client_configuration=configuration)
            else:
                config.load_kube_config(
                    config_file=backend.kubeconfig,
                    context=backend.context,
                    client_configuration=configuration,
                )
        except (config.ConfigException, OSError) as error:
            raise ConfigError(
                f"No Kubernetes configuration ({error}): set kubeconfig= (or $KUBECONFIG) and "
                "context= to a cluster you can reach, or in_cluster=True inside a pod."
            ) from None
        self.host = configuration.host
        api = client.ApiClient(configuration)
        self.client = client
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.version = client.VersionApi(api)
        self._pods: dict[str, list[Any]] = {}  # job name -> its pods at the last look
        self._followers: dict[str, threading.Thread] = {}  # pod name -> its log reader
        self._logs: dict[str, list[str]] = {}  # job name -> chunks of its pods' output
        self._lock = threading.Lock()

    # -- API calls ---------------------------------------------------------------------------

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """One API call; throttling and server errors are ``TransientError`` (the driver
        retries them), the rest explained."""
        import urllib3

        try:
            return function(*args, _request_timeout=30, **kwargs)
        except self.client.ApiException as error:
            if error.status in RETRY_STATUSES:
                raise TransientError(f"Kubernetes answered {error.status} to {what}") from None
            raise _api_error(what, self, error) from None
        except urllib3.exceptions.HTTPError as error:
            raise TransientError(
                f"The Kubernetes API at {self.host} does not answer ({error}): check the "
                "kubeconfig context and that the cluster is up."
            ) from None

    def check(self) -> None:
        try:
            self._call("read the server version", self.version.get_code)
        except TransientError as error:
            raise ConfigError(str(error)) from None
        try:
            self._call("read the namespace", self.core.read_namespace, self.namespace)
        except _Forbidden:
            pass  # may not read namespaces, may still create Jobs in one: the create will tell
        except JobNotFound:
            raise ConfigError(
                f"Namespace {self.namespace!r} does not exist on {self.host}: create it "
                f"(kubectl create namespace {self.namespace}) or choose another."
            ) from None

    def store_secrets(self, name: str, values: dict[str, str]) -> dict[str, SecretRef]:
        run_id, _, step = name.partition("/")
        secret = f"{self.backend.job_name(run_id, step or None)}-env"
        labels = {
            "app.kubernetes.io/managed-by": MANAGED_BY,
            "zenml.io/run-id": _label_value(run_id),
        }
        manifest = self.backend.secret_manifest(secret, labels, values)
        self._call(
            "create the run's Secret", self.core.create_namespaced_secret, self.namespace, manifest
        )
        return {key: SecretRef(secret, key) for key in values}

    def delete_secrets(self, refs: dict[str, SecretRef]) -> None:
        for name in sorted({ref.name for ref in refs.values()}):
            with contextlib.suppress(JobNotFound):
                self._call(
                    "delete the run's Secret",
                    self.core.delete_namespaced_secret,
                    name,
                    self.namespace,
                )

    def submit(self, workload: Workload) -> str:
        manifest = self.backend.job_manifest(workload)
        name = workload.name
        try:
            job = self._call(
                "create the Job", self.batch.create_namespaced_job, self.namespace, manifest
            )
        except _Conflict:  # a retried create that had gone through: ours if it has our run id
            job = self._call("read the Job", self.batch.read_namespaced_job, name, self.namespace)
            labels = job.metadata.labels or {}
            if labels.get("zenml.io/run-id") != workload.labels["zenml.io/run-id"]:
                raise ZenMLError(
                    f"A Job named {name} already exists in {self.namespace} for another run "
                    f"than {workload.run_id}: delete it (kubectl delete job -n "
                    f"{self.namespace} {name})."
                ) from None
        own_secret = f"{name}-env"
        if job.metadata.uid and own_secret in {r.name for r in workload.secret_env.values()}:
            # the run's Secret goes with its Job, whenever the Job goes (its TTL)
            owner = {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": job.metadata.uid}
            self._call(
                "give the run's Secret to its Job",
                self.core.patch_namespaced_secret,
                own_secret,
                self.namespace,
                {"metadata": {"ownerReferences": [owner]}},
            )
        return f"Job {self.namespace}/{name}"

    def poll(self, job_id: str) -> JobStatus:
        name = _job_name(job_id)
        job = self._call(
            "read the Job", self.batch.read_namespaced_job_status, name, self.namespace
        )
        pods = self._call(
            "list the Job's pods",
            self.core.list_namespaced_pod,
            self.namespace,
            label_selector=f"job-name={name}",
        ).items
        pods = self._pods[name] = [pod for pod in pods if pod.status is not None]
        for pod in pods:
            stuck = _stuck(pod)
            if stuck is not None:
                return JobStatus(JobState.STUCK, stuck)
        for condition in (job.status.conditions if job.status else None) or []:
            if condition.status != "True":
                continue
            if condition.type == "Complete":
                self._finish_logs(pods)
                return JobStatus(JobState.SUCCEEDED)
            if condition.type == "Failed":
                self._finish_logs(pods)
                return JobStatus(JobState.FAILED, self._failure(name, condition, pods))
        if any(pod.status.phase in ("Running", "Succeeded", "Failed") for pod in pods):
            return JobStatus(JobState.RUNNING)
        return JobStatus(JobState.PENDING, detail=_pending_detail(pods))

    def logs(self, job_id: str, offset: int) -> tuple[str, int]:
        name = _job_name(job_id)
        for pod in self._pods.get(name, []):  # read even unstreamed: the tail explains failures
            self._follow(name, pod)
        with self._lock:
            text = "".join(self._logs.get(name, []))
        return text[offset:], len(text)

    def cancel(self, job_id: str) -> None:
        """Delete the Job and return once its pods have stopped: until then a container can
        still write the run's record, and the driver records the interruption after this."""
        name = _job_name(job_id)
        with contextlib.suppress(JobNotFound):
            self._call(
                "delete the Job",
                self.batch.delete_namespaced_job,
                name,
                self.namespace,
                propagation_policy="Background",
            )
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while time.monotonic() < deadline:
            pods = self._call(
                "list the Job's pods",
                self.core.list_namespaced_pod,
                self.namespace,
                label_selector=f"job-name={name}",
            ).items
            if all(pod.status and pod.status.phase in ("Succeeded", "Failed") for pod in pods):
                return
            time.sleep(0.5)
        print(
            f"zenml: the pods of Job {self.namespace}/{name} were still stopping after "
            f"{STOP_WAIT_SECONDS} s; they end within their termination grace period",
            file=sys.stderr,
        )

    def cleanup(self, job_id: str) -> None:
        """An ended Job costs nothing and keeps its logs: its TTL removes it."""
        self._finish_logs(self._pods.pop(_job_name(job_id), []))

    # -- pods --------------------------------------------------------------------------------

    def _failure(self, job_name: str, condition: Any, pods: list[Any]) -> Failure:
        if condition.reason == "DeadlineExceeded":
            return Failure(
                FailureKind.DEADLINE_EXCEEDED,
                f"Job {job_name}: DeadlineExceeded: it ran longer than "
                f"active_deadline_seconds={self.backend.active_deadline_seconds}",
            )
        ended = [p for p in pods if p.status.phase == "Failed"]
        if not ended:
            return Failure(
                FailureKind.UNKNOWN,
                f"Job {job_name}: {condition.reason}: {condition.message or 'no message'}",
            )
        pod = max(ended, key=lambda p: str(p.metadata.creation_timestamp or ""))  # the last try
        name = pod.metadata.name
        if pod.status.reason == "Evicted":
            return Failure(
                FailureKind.EVICTED,
                f"pod {name}: Evicted: {pod.status.message or 'the node reclaimed resources'}",
            )
        terminated = next(
            (
                s.state.terminated
                for s in pod.status.container_statuses or []
                if s.state and s.state.terminated
            ),
            None,
        )
        if terminated is None:
            return Failure(
                FailureKind.UNKNOWN, f"pod {name}: {pod.status.reason or condition.reason}"
            )
        if terminated.reason == "OOMKilled":
            return Failure(
                FailureKind.OOM,
                f"pod {name}: OOMKilled (exit code {terminated.exit_code}): the run needed more "
                f"than memory_limit={self.backend.memory_limit or 'the namespace default'}",
            )
        return Failure(
            FailureKind.EXIT_CODE,
            f"pod {name}: exited with code {terminated.exit_code} ({terminated.reason})",
        )

    def _follow(self, job_name: str, pod: Any) -> None:
        """Read one pod's log into the Job's buffer in a thread, once it has started."""
        name = pod.metadata.name
        if name in self._followers or pod.status.phase == "Pending":
            return
        chunks = self._logs.setdefault(job_name, [])

        def follow() -> None:
            try:
                response = self.core.read_namespaced_pod_log(
                    name, self.namespace, follow=True, _preload_content=False
                )
                for chunk in response.stream(4096):
                    with self._lock:
                        chunks.append(chunk.decode(errors="replace"))
            except Exception as error:  # logs are a convenience: never fail the run for them
                with self._lock:
                    chunks.append(f"(log of pod {name} unavailable: {error})\n")

        thread = threading.Thread(target=follow, name=f"logs-{name}", daemon=True)
        self._followers[name] = thread
        thread.start()

    def _finish_logs(self, pods: list[Any]) -> None:
        """Let the readers of ended pods take in their last lines."""
        for pod in pods:
            thread = self._followers.get(pod.metadata.name)
            if thread is not None:
                thread.join(timeout=10)


def _job_name(job_id: str) -> str:
    return job_id.rsplit("/", 1)[-1]


def _label_value(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63].strip("-_.") or "x"


def _pending_detail(pods: list[Any]) -> str:
    for pod in pods:
        for status in pod.status.container_statuses or []:
            waiting = status.state.waiting if status.state else None
            if waiting is not None and waiting.reason:
                return f"pod {pod.metadata.name}: {waiting.reason}"
    return "no pod has started yet" if not pods else f"pod {pods[0].metadata.name} is pending"


def _stuck(pod: Any) -> Failure | None:
    for status in pod.status.container_statuses or []:
        waiting = status.state.waiting if status.state else None
        if waiting is not None and waiting.reason in STUCK_REASONS:
            message = f"pod {pod.metadata.name}: {waiting.reason}: {waiting.message or ''}"
            return Failure(STUCK_REASONS[waiting.reason], message.rstrip(": "))
    return None


class _Forbidden(InfrastructureFailure):
    def __init__(self, message: str) -> None:
        super().__init__(FailureKind.PERMISSION, message)


class _Conflict(ZenMLError):
    pass


def _api_error(what: str, cluster: _KubernetesPlatform, error: Any) -> ZenMLError:
    message = (
        f"Kubernetes refused to {what} in namespace {cluster.namespace!r} "
        f"({error.status} {error.reason})"
    )
    if error.status == 403:
        return _Forbidden(
            f"{message}: the user or service account lacks permission; grant it with a Role "
            "allowing jobs, pods, pods/log and secrets in that namespace."
        )
    if error.status == 404:
        return JobNotFound(message)
    if error.status == 409:
        return _Conflict(message)
    return ZenMLError(f"{message}: {_status_message(error)}")


def _status_message(error: Any) -> str:
    import json

    try:
        return str(json.loads(error.body).get("message", error.body))
    except (TypeError, ValueError):
        return str(error.body)


def _check_dns_label(value: str, what: str) -> None:
    if not isinstance(value, str) or len(value) > 63 or not _DNS_LABEL.match(value):
        raise ConfigError(
            f"KubernetesOrchestrator: {what} {value!r} must be a DNS label: at most 63 "
            "lowercase letters, digits or '-', starting and ending alphanumeric."
        )


def _check_dns_subdomain(value: str, what: str) -> None:
    if not isinstance(value, str) or len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ConfigError(
            f"KubernetesOrchestrator: {what} {value!r} must be a DNS subdomain: lowercase "
            "letters, digits, '-' and '.', starting and ending alphanumeric."
        )


def _check_label_key(key: str, what: str) -> None:
    prefix, _, name = key.rpartition("/")
    if (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))) or (
        len(name) > 63 or not _LABEL_NAME.match(name)
    ):
        raise ConfigError(
            f"KubernetesOrchestrator: {what} {key!r} is not a valid Kubernetes key: "
            "[DNS-subdomain/]name, the name at most 63 characters of letters, digits, "
            "'-', '_' or '.'."
        )
