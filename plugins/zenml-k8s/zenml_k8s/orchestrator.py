"""KubernetesOrchestrator: the whole pipeline run as one Kubernetes Job.

The Job's pod runs ``python -m zenml_core run --spec URI`` in the chosen image: the run spec and
the code package travel through the artifact store (no image rebuild per code change), and the
pod writes the run's metadata to the shared metadata store. Secrets the stores need (the MySQL
password) reach the pod through a Kubernetes Secret made for the run and referenced by name,
never as values in the Job.

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

from zenml_core.backends import BaseOrchestrator
from zenml_core.exceptions import ConfigError, ZenMLError

if TYPE_CHECKING:
    from zenml_core.pipeline.engine import RunRequest, RunResult

MANAGED_BY = "zenml-core"
CONTAINER = "zenml"
#: waiting reasons a pod does not recover from by itself: fail the run instead of waiting
STUCK_REASONS = (
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
)
#: API answers worth a retry (throttling, a server hiccup)
RETRY_STATUSES = (429, 500, 502, 503, 504)

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
class KubernetesOrchestrator(BaseOrchestrator):
    """Runs the whole pipeline as a Kubernetes Job in ``namespace``.

    ``image`` defaults to zenml-core's base image of this version (``-gpu`` when ``gpus``).
    The API is found from ``kubeconfig``/``context`` (default: ``$KUBECONFIG`` or
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

    # -- manifests -------------------------------------------------------------------------

    def resolved_image(self) -> str:
        from zenml_core.docker import base_image

        return self.image or base_image(gpu=self.gpus > 0)

    def job_name(self, run_id: str) -> str:
        """A DNS label of at most 52 characters (pod names add a suffix), unique per run."""
        digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
        stem = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")[:36].strip("-")
        return f"zenml-{stem}-{digest}" if stem else f"zenml-{digest}"

    def run_labels(self, request: RunRequest) -> dict[str, str]:
        def value(text: str) -> str:
            return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63].strip("-_.") or "x"

        return {
            "app.kubernetes.io/managed-by": MANAGED_BY,
            "zenml.io/pipeline": value(request.spec.pipeline.name),
            "zenml.io/run-id": value(request.spec.run_id),
            **self.labels,
        }

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

    def job_manifest(
        self,
        name: str,
        labels: dict[str, str],
        command: list[str],
        secret_name: str | None,
        secret_keys: list[str],
    ) -> dict[str, Any]:
        env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in self.env.items()]
        env += [
            {"name": key, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}
            for key in secret_keys
        ]
        container: dict[str, Any] = {
            "name": CONTAINER,
            "image": self.resolved_image(),
            "command": command,
            "env": env,
        }
        if self.secrets:
            container["envFrom"] = [{"secretRef": {"name": s}} for s in self.secrets]
        if self.image_pull_policy:
            container["imagePullPolicy"] = self.image_pull_policy
        requests = {"cpu": self.cpu_request, "memory": self.memory_request}
        limits: dict[str, str | None] = {"cpu": self.cpu_limit, "memory": self.memory_limit}
        if self.gpus:
            limits[self.gpu_resource] = str(self.gpus)
        resources = {
            kind: {k: v for k, v in values.items() if v is not None}
            for kind, values in (("requests", requests), ("limits", limits))
        }
        resources = {k: v for k, v in resources.items() if v}
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
            "template": {"metadata": {"labels": labels}, "spec": pod},
        }
        if self.ttl_seconds_after_finished is not None:
            spec["ttlSecondsAfterFinished"] = self.ttl_seconds_after_finished
        if self.active_deadline_seconds is not None:
            spec["activeDeadlineSeconds"] = self.active_deadline_seconds
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels},
            "spec": spec,
        }

    def manifests(self, request: RunRequest, spec_location: str) -> list[dict[str, Any]]:
        """What ``run`` creates, in order: the run's Secret (when its stores have secrets),
        then the Job."""
        name = self.job_name(request.spec.run_id)
        labels = self.run_labels(request)
        secret_values = request.secret_environment()
        secret_name = f"{name}-env" if secret_values else None
        job = self.job_manifest(
            name, labels, request.command(spec_location), secret_name, sorted(secret_values)
        )
        if secret_name is None:
            return [job]
        return [self.secret_manifest(secret_name, labels, secret_values), job]

    # -- the run ---------------------------------------------------------------------------

    def run(self, request: RunRequest) -> RunResult:
        request.require_shared_stores(f"Kubernetes (namespace {self.namespace})")
        cluster = _Cluster(self)
        cluster.check_reachable()
        manifests = self.manifests(request, request.publish_spec())
        job = manifests[-1]
        job_name = job["metadata"]["name"]
        secret = manifests[0] if len(manifests) == 2 else None
        if secret is not None:
            cluster.create_secret(secret)
        try:
            created = cluster.create_job(job, request.spec.run_id)
        except BaseException:
            if secret is not None:  # nothing of this run is left behind
                cluster.delete_secret(secret["metadata"]["name"])
            raise
        if secret is not None:  # collected with the Job, whenever it goes
            cluster.adopt_secret(secret["metadata"]["name"], job_name, created["metadata"]["uid"])
        print(f"zenml-k8s: Job {self.namespace}/{job_name} created for run {request.spec.run_id}")
        if not self.wait:
            return request.submitted()
        try:
            failure = cluster.watch(job_name)
        except KeyboardInterrupt:
            cluster.delete_job(job_name)
            request.record_failure(f"interrupted (Ctrl-C): Job {job_name} deleted")
            raise
        except _NotFound:  # gone between two looks: its TTL after it ended, or deleted
            from zenml_core.exceptions import MetadataStoreError
            from zenml_core.pipeline.engine import RUN_COMPLETED

            try:
                run = request.components.metadata_store.get_run(request.spec.run_id)
                completed = run.status == RUN_COMPLETED
            except MetadataStoreError:  # it never began
                completed = False
            failure = None if completed else f"Job {job_name} was deleted before the run finished"
        if failure is not None:
            request.record_failure(failure)
        return request.result()


class _Cluster:
    """The kubernetes client calls one run needs, with retries and our error messages."""

    def __init__(self, backend: KubernetesOrchestrator) -> None:
        from kubernetes import client, config

        self.backend = backend
        self.namespace = backend.namespace
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
        self.streams: dict[str, threading.Thread] = {}

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """Call the API; retry throttling and server errors; explain the rest."""
        import urllib3

        delay = 0.5
        for attempt in range(6):
            try:
                return function(*args, _request_timeout=30, **kwargs)
            except self.client.ApiException as error:
                if error.status in RETRY_STATUSES and attempt < 5:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise _api_error(what, self, error) from None
            except urllib3.exceptions.HTTPError as error:
                if attempt < 2:
                    time.sleep(delay)
                    continue
                raise ConfigError(
                    f"The Kubernetes API at {self.host} does not answer ({error}): check the "
                    "kubeconfig context and that the cluster is up."
                ) from None
        raise AssertionError("unreachable")

    def check_reachable(self) -> None:
        self._call("read the server version", self.version.get_code)
        try:
            self._call("read the namespace", self.core.read_namespace, self.namespace)
        except _Forbidden:
            pass  # may not read namespaces, may still create Jobs in one: the create will tell
        except _NotFound:
            raise ConfigError(
                f"Namespace {self.namespace!r} does not exist on {self.host}: create it "
                f"(kubectl create namespace {self.namespace}) or choose another."
            ) from None

    def create_secret(self, manifest: dict[str, Any]) -> None:
        self._call(
            "create the run's Secret", self.core.create_namespaced_secret, self.namespace, manifest
        )

    def adopt_secret(self, name: str, job: str, uid: str | None) -> None:
        if not uid:
            return
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": uid}
        self._call(
            "give the run's Secret to its Job",
            self.core.patch_namespaced_secret,
            name,
            self.namespace,
            {"metadata": {"ownerReferences": [owner]}},
        )

    def delete_secret(self, name: str) -> None:
        with contextlib.suppress(_NotFound):
            self._call(
                "delete the run's Secret", self.core.delete_namespaced_secret, name, self.namespace
            )

    def create_job(self, manifest: dict[str, Any], run_id: str) -> dict[str, Any]:
        name = manifest["metadata"]["name"]
        try:
            job = self._call(
                "create the Job", self.batch.create_namespaced_job, self.namespace, manifest
            )
        except _Conflict:  # a retried create that had gone through: ours if it has our run id
            job = self._call("read the Job", self.batch.read_namespaced_job, name, self.namespace)
            labels = job.metadata.labels or {}
            if labels.get("zenml.io/run-id") != manifest["metadata"]["labels"]["zenml.io/run-id"]:
                raise ZenMLError(
                    f"A Job named {name} already exists in {self.namespace} for another run "
                    f"than {run_id}: delete it (kubectl delete job -n {self.namespace} {name})."
                ) from None
        return {"metadata": {"uid": job.metadata.uid}}

    def delete_job(self, name: str) -> None:
        with contextlib.suppress(_NotFound):
            self._call(
                "delete the Job",
                self.batch.delete_namespaced_job,
                name,
                self.namespace,
                propagation_policy="Background",
            )

    def watch(self, job_name: str) -> str | None:
        """Wait for the Job to end, streaming its pods' logs; None if it completed, else why
        it failed (a pod stuck on its image is a failure too: the Job is deleted)."""
        try:
            while True:
                job = self._call(
                    "read the Job", self.batch.read_namespaced_job_status, job_name, self.namespace
                )
                pods = self._call(
                    "list the Job's pods",
                    self.core.list_namespaced_pod,
                    self.namespace,
                    label_selector=f"job-name={job_name}",
                ).items
                pods = [pod for pod in pods if pod.status is not None]  # not yet scheduled
                for pod in pods:
                    if self.backend.stream_logs:
                        self._stream(pod)
                    stuck = _stuck(pod)
                    if stuck is not None:
                        self.delete_job(job_name)
                        return stuck
                for condition in (job.status.conditions if job.status else None) or []:
                    if condition.status != "True":
                        continue
                    if condition.type == "Complete":
                        return None
                    if condition.type == "Failed":
                        return self._failure(job_name, condition, pods)
                time.sleep(self.backend.poll_seconds)
        finally:
            for stream in self.streams.values():
                stream.join(timeout=10)

    def _failure(self, job_name: str, condition: Any, pods: list[Any]) -> str:
        if condition.reason == "DeadlineExceeded":
            return (
                f"Job {job_name}: DeadlineExceeded: it ran longer than "
                f"active_deadline_seconds={self.backend.active_deadline_seconds}"
            )
        ended = [p for p in pods if p.status.phase == "Failed"]
        if not ended:
            return f"Job {job_name}: {condition.reason}: {condition.message or 'no message'}"
        pod = max(ended, key=lambda p: str(p.metadata.creation_timestamp or ""))  # the last try
        name = pod.metadata.name
        if pod.status.reason == "Evicted":
            return f"pod {name}: Evicted: {pod.status.message or 'the node reclaimed resources'}"
        terminated = next(
            (
                s.state.terminated
                for s in pod.status.container_statuses or []
                if s.state and s.state.terminated
            ),
            None,
        )
        if terminated is None:
            return f"pod {name}: {pod.status.reason or condition.reason}"
        if terminated.reason == "OOMKilled":
            return (
                f"pod {name}: OOMKilled (exit code {terminated.exit_code}): the run needed more "
                f"than memory_limit={self.backend.memory_limit or 'the namespace default'}"
            )
        message = f"pod {name}: exited with code {terminated.exit_code} ({terminated.reason})"
        last = self._last_lines(name)
        return f"{message}; its last output: {last}" if last else message

    def _last_lines(self, pod: str, count: int = 3) -> str:
        """The end of a pod's log, for errors the run itself could not record."""
        try:
            text = self.core.read_namespaced_pod_log(pod, self.namespace, tail_lines=50)
        except Exception:  # the log is gone with its node: the exit code must do
            return ""
        lines = [line.strip() for line in str(text).splitlines() if line.strip()]
        interesting = [line for line in lines if "Warning" not in line and "warn(" not in line]
        return " | ".join(interesting[-count:])[-600:]

    def _stream(self, pod: Any) -> None:
        """Follow one pod's log to our stdout in a thread, once it has started."""
        name = pod.metadata.name
        if name in self.streams or pod.status.phase == "Pending":
            return

        def follow() -> None:
            try:
                response = self.core.read_namespaced_pod_log(
                    name, self.namespace, follow=True, _preload_content=False
                )
                for chunk in response.stream(4096):
                    sys.stdout.write(chunk.decode(errors="replace"))
                    sys.stdout.flush()
            except Exception as error:  # logs are a convenience: never fail the run for them
                print(f"zenml-k8s: log of pod {name} unavailable: {error}", file=sys.stderr)

        thread = threading.Thread(target=follow, name=f"logs-{name}", daemon=True)
        self.streams[name] = thread
        thread.start()


def _stuck(pod: Any) -> str | None:
    for status in pod.status.container_statuses or []:
        waiting = status.state.waiting if status.state else None
        if waiting is not None and waiting.reason in STUCK_REASONS:
            return f"pod {pod.metadata.name}: {waiting.reason}: {waiting.message or ''}".rstrip(
                ": "
            )
    return None


class _Forbidden(ZenMLError):
    pass


class _NotFound(ZenMLError):
    pass


class _Conflict(ZenMLError):
    pass


def _api_error(what: str, cluster: _Cluster, error: Any) -> ZenMLError:
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
        return _NotFound(message)
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
