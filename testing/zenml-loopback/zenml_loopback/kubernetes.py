"""A Kubernetes API on 127.0.0.1 (kmock's emulator) with the controllers a Job needs.

kmock stores objects and answers the API; on top of it, a small control plane does what the
job controller, the kubelet, the TTL controller and the garbage collector do, enough for
batch Jobs:

- each new Job gets a Pod; its container runs for real (:mod:`workloads`: Docker, or a
  subprocess) with the pod's env, ``secretKeyRef`` / ``envFrom`` resolved from stored Secrets;
- the Pod's phase and container state (waiting / running / terminated with reason and exit
  code) and the Job's counters and conditions are written back as the API server would;
- ``backoffLimit``, ``activeDeadlineSeconds`` and ``ttlSecondsAfterFinished`` are honoured;
  deleting a Job kills its container; objects whose owner is gone are collected;
- pod logs are served (``follow=true`` streams them while the container runs).

Faults on demand: :meth:`LoopbackKubernetes.fail_next_pod` (``"oom"``, ``"evicted"``,
``"image-pull"``, ``"exit:N"``) and :meth:`LoopbackKubernetes.fail_requests` (the API
answering 429, 500, 403...).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import re
import secrets
import time
import traceback
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zenml_loopback.service import LoopbackService, background
from zenml_loopback.workloads import ImageNotFound, Runner, Running, Workload

FAULTS = ("oom", "evicted", "image-pull")
RESOURCES = ("batch/v1/jobs", "v1/pods", "v1/secrets", "v1/configmaps")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def _memory_bytes(quantity: str | None) -> int | None:
    if not quantity:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", str(quantity))
    if not match:
        return None
    return int(float(match[1]) * _UNITS.get(match[2], 1))


@dataclass
class _PodRun:
    """One pod's container, as the kubelet sees it."""

    namespace: str
    name: str
    job: str
    running: Running | None = None
    fault: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    killed_because: str | None = None


def _emulator_class() -> type:
    import aiohttp.web
    import kmock

    class Emulator(kmock.KubernetesEmulator):  # type: ignore[misc]
        """kmock's emulator, plus: what the API server adds on create (uid, times), a record
        of requests, and injected error answers (given before anything is stored)."""

        async def __call__(self, raw_request: Any) -> Any:
            # kmock cannot parse the cluster-scoped /api/v1/namespaces[/NAME]: answer here
            match = re.fullmatch(r"/api/v1/namespaces(?:/([^/]+))?/?", raw_request.path)
            if match is None or raw_request.method != "GET":
                return await super().__call__(raw_request)
            self.seen.append(("GET", raw_request.path, None))
            if match[1] is None:
                items = list(self.namespace_objects.values())
                return aiohttp.web.json_response(
                    {"apiVersion": "v1", "kind": "NamespaceList", "metadata": {}, "items": items}
                )
            if match[1] in self.namespace_objects:
                return aiohttp.web.json_response(self.namespace_objects[match[1]])
            return aiohttp.web.json_response(
                {
                    "apiVersion": "v1",
                    "kind": "Status",
                    "status": "Failure",
                    "reason": "NotFound",
                    "code": 404,
                    "message": f'namespaces "{match[1]}" not found',
                },
                status=404,
            )

        async def _handle(self, request: Any) -> Any:
            method = str(request.method).rsplit(".", 1)[-1].upper()
            self.seen.append((method, request.url.path, request.data))
            for fault in self.faults:
                if fault[0] == method and fault[1] == request.url.path and fault[3] > 0:
                    fault[3] -= 1
                    return aiohttp.web.json_response(fault[2], status=fault[2]["code"])
            if request.action == kmock.action.CREATE and isinstance(request.data, dict):
                metadata = request.data.setdefault("metadata", {})
                if request.namespace:  # the API server takes it from the URL
                    metadata.setdefault("namespace", request.namespace)
                metadata.setdefault("uid", str(uuid.uuid4()))
                metadata.setdefault("creationTimestamp", _now())
                metadata.setdefault("resourceVersion", str(time.monotonic_ns()))
            return await super()._handle(request)

    return Emulator


class LoopbackKubernetes(LoopbackService):
    """``with LoopbackKubernetes(runner) as cluster:`` an API server at ``cluster.url``.

    Give clients ``cluster.write_kubeconfig(path)`` (context ``loopback``, no credentials).
    ``cluster.objects("batch/v1/jobs")`` and ``cluster.requests()`` are for assertions.
    """

    title = "Kubernetes emulator"

    def __init__(self, runner: Runner, namespaces: tuple[str, ...] = ("default",)) -> None:
        super().__init__()
        self.runner = runner
        self.namespaces = namespaces
        self._pod_faults: list[str] = []
        self._pods: dict[tuple[str, str], _PodRun] = {}
        self._started_jobs: set[str] = set()  # uids
        self._tasks: set[asyncio.Task[None]] = set()
        self.emulator: Any = None

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        import kmock

        emulator = _emulator_class()()
        emulator.seen = []  # (method, path, body) of every request
        emulator.faults = []  # [method, path, Status body, answers left]
        async with emulator, kmock.Server(emulator, host="127.0.0.1", port=self.port):
            self.emulator = emulator
            for resource in RESOURCES:
                emulator.resources[resource] = {}
            emulator.namespace_objects = {
                namespace: {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": namespace, "uid": str(uuid.uuid4())},
                    "status": {"phase": "Active"},
                }
                for namespace in self.namespaces
            }
            version = {
                "major": "1",
                "minor": "32",
                "gitVersion": "v1.32.0-loopback",
                "gitCommit": "0" * 40,
                "gitTreeState": "clean",
                "buildDate": "2026-11-01T00:00:00Z",
                "goVersion": "go1.23",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
            emulator["get /version"] << version
            emulator["get /version/"] << version  # the python client's spelling
            emulator[kmock.subresource("log")] << self._serve_log
            async with background(asyncio.create_task(self._control())):
                yield

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        import yaml

        path = Path(path)
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "loopback", "cluster": {"server": self.url}}],
                    "users": [{"name": "loopback", "user": {}}],
                    "contexts": [
                        {
                            "name": "loopback",
                            "context": {
                                "cluster": "loopback",
                                "user": "loopback",
                                "namespace": namespace,
                            },
                        }
                    ],
                    "current-context": "loopback",
                }
            )
        )
        return path

    # -- what tests look at and inject ------------------------------------------------------

    def objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Live objects of one resource (e.g. ``"batch/v1/jobs"``), as the API stores them."""
        found: list[dict[str, Any]] = self.call(lambda: self._objects(resource, namespace))
        return found

    def requests(self) -> list[tuple[str, str, Any]]:
        """Every request so far: (method, path, body)."""
        seen: list[tuple[str, str, Any]] = self.call(lambda: list(self.emulator.seen))
        return seen

    def fail_next_pod(self, fault: str) -> None:
        """The next pod this control plane starts fails this way: ``oom`` (OOM-killed once
        running), ``evicted`` (the node evicts it), ``image-pull`` (its image cannot be
        pulled), or ``exit:N`` (its container exits with N)."""
        if fault not in FAULTS and not re.fullmatch(r"exit:\d+", fault):
            raise ValueError(f"unknown fault {fault!r}; faults: {FAULTS} or 'exit:N'")
        self._pod_faults.append(fault)

    def fail_requests(self, method: str, path: str, status: int, times: int = 1) -> None:
        """The API answers ``status`` to the next ``times`` requests ``METHOD PATH``
        (a Kubernetes ``Status`` body, as the real server sends with 429, 500, 403...)."""

        reason = {403: "Forbidden", 429: "TooManyRequests", 500: "InternalError"}.get(
            status, "Failure"
        )
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": reason,
            "code": status,
            "message": f"injected fault: {status} {reason}",
        }

        def install() -> None:
            self.emulator.faults.append([method.upper(), path, body, times])

        self.call(install)

    # -- the API server's part ------------------------------------------------------------

    def _objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        found = []
        for (kind, ns, _), obj in list(self.emulator.objects.items()):
            if f"{kind.group + '/' if kind.group else ''}{kind.version}/{kind.plural}" != resource:
                continue
            if obj.deleted or (namespace is not None and ns != namespace):
                continue
            found.append(obj.raw)
        return found

    def _object(self, resource: str, namespace: str | None, name: str) -> Any:
        with contextlib.suppress(KeyError):
            obj = self.emulator.objects[resource, namespace, name]
            if not obj.deleted:
                return obj
        return None

    async def _serve_log(self, request: Any) -> Any:
        import kmock

        pod = self._pods.get((request.namespace, request.name))
        if pod is None:
            return kmock.Response(
                status=404,
                payload={
                    "kind": "Status",
                    "code": 404,
                    "message": f"pod {request.name} has no log",
                },
            )
        follow = str(request.params.get("follow", "")).lower() == "true"
        headers = {"Content-Type": "text/plain"}
        if not follow:
            text = pod.running.output() if pod.running else ""
            tail = request.params.get("tailLines")
            if tail:
                text = "".join(text.splitlines(keepends=True)[-int(tail) :])
            return kmock.Response(status=200, headers=headers, payload=text.encode())
        return kmock.Response(status=200, headers=headers, payload=self._follow(pod))

    async def _follow(self, pod: _PodRun) -> AsyncIterator[bytes]:
        sent = 0
        yield b""  # send the headers now, as a streaming server does
        while True:
            done = pod.done.is_set()
            text = pod.running.output() if pod.running else ""
            if len(text) > sent:
                yield text[sent:].encode()
                sent = len(text)
            if done:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(pod.done.wait(), timeout=0.1)

    # -- the controllers -------------------------------------------------------------------

    async def _control(self) -> None:
        while True:
            try:
                self._control_once()
            except Exception:  # a controller keeps going; say what went wrong
                traceback.print_exc()
            await asyncio.sleep(0.1)

    def _control_once(self) -> None:
        for job in self._objects("batch/v1/jobs"):
            uid = job["metadata"]["uid"]  # not the name: a Job deleted and made again is new
            if uid not in self._started_jobs:
                self._started_jobs.add(uid)
                namespace = job["metadata"].get("namespace") or "default"
                task = asyncio.create_task(self._run_job(namespace, job["metadata"]["name"]))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self._collect_garbage()
        self._expire_finished_jobs()

    def _collect_garbage(self) -> None:
        live_uids = {o["metadata"].get("uid") for o in self._objects("batch/v1/jobs")} | {
            o["metadata"].get("uid") for o in self._objects("v1/pods")
        }
        for resource in ("v1/secrets", "v1/pods", "v1/configmaps"):
            for raw in self._objects(resource):
                owners = raw["metadata"].get("ownerReferences") or []
                if owners and not any(o.get("uid") in live_uids for o in owners):
                    meta = raw["metadata"]
                    pod = self._pods.get((meta.get("namespace"), meta["name"]))
                    if pod is not None and pod.running is not None and not pod.done.is_set():
                        # as the kubelet does: the Pod object goes only once its container
                        # has stopped, so "no pods left" means nothing can still write
                        if pod.killed_because != "deleted":
                            pod.killed_because = "deleted"
                            pod.running.kill()
                        continue
                    obj = self._object(resource, meta.get("namespace"), meta["name"])
                    if obj is not None:
                        obj.delete()

    def _expire_finished_jobs(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        for raw in self._objects("batch/v1/jobs"):
            ttl = raw.get("spec", {}).get("ttlSecondsAfterFinished")
            finished = next(
                (
                    c.get("lastTransitionTime")
                    for c in raw.get("status", {}).get("conditions") or []
                    if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                ),
                None,
            )
            if ttl is None or finished is None:
                continue
            ended = datetime.datetime.strptime(finished, "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.UTC
            )
            if (now - ended).total_seconds() >= ttl:
                meta = raw["metadata"]
                obj = self._object("batch/v1/jobs", meta.get("namespace"), meta["name"])
                if obj is not None:
                    obj.delete()

    async def _run_job(self, namespace: str, name: str) -> None:
        job = self._object("batch/v1/jobs", namespace, name)
        spec = job.raw.get("spec", {})
        backoff_limit = spec.get("backoffLimit", 6)
        deadline = spec.get("activeDeadlineSeconds")
        started = time.monotonic()
        job.patch({"status": {"startTime": _now(), "active": 0, "failed": 0, "succeeded": 0}})
        failed = 0
        while True:
            job = self._object("batch/v1/jobs", namespace, name)
            if job is None:
                return  # deleted
            pod = self._create_pod(job.raw, namespace, name)
            timeout = (
                None if deadline is None else max(0.0, deadline - (time.monotonic() - started))
            )
            job.patch({"status": {"active": 1}})
            outcome = await self._run_pod(pod, timeout)
            job = self._object("batch/v1/jobs", namespace, name)
            if job is None:
                return
            if outcome == "succeeded":
                self._finish(job, succeeded=1, failed=failed, condition="Complete", reason="")
                return
            failed += 1
            if outcome == "deadline":
                self._finish(
                    job,
                    succeeded=0,
                    failed=failed,
                    condition="Failed",
                    reason="DeadlineExceeded",
                    message="Job was active longer than specified deadline",
                )
                return
            if outcome == "stuck":  # waiting forever (image pull): the Job stays active
                return
            if failed > backoff_limit:
                self._finish(
                    job,
                    succeeded=0,
                    failed=failed,
                    condition="Failed",
                    reason="BackoffLimitExceeded",
                    message="Job has reached the specified backoff limit",
                )
                return
            job.patch({"status": {"failed": failed}})

    def _finish(
        self,
        job: Any,
        *,
        succeeded: int,
        failed: int,
        condition: str,
        reason: str,
        message: str = "",
    ) -> None:
        now = _now()
        status: dict[str, Any] = {
            "active": 0,
            "succeeded": succeeded,
            "failed": failed,
            "conditions": [
                {
                    "type": condition,
                    "status": "True",
                    "reason": reason,
                    "message": message,
                    "lastProbeTime": now,
                    "lastTransitionTime": now,
                }
            ],
        }
        if condition == "Complete":
            status["completionTime"] = now
        job.patch({"status": status})

    def _create_pod(self, job: dict[str, Any], namespace: str, job_name: str) -> _PodRun:
        template = job.get("spec", {}).get("template", {})
        name = f"{job_name}-{secrets.token_hex(3)[:5]}"
        labels = {**template.get("metadata", {}).get("labels", {}), "job-name": job_name}
        self.emulator.objects["v1/pods", namespace, name] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "labels": labels,
                "creationTimestamp": _now(),
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": job_name,
                        "uid": job["metadata"].get("uid"),
                        "controller": True,
                    }
                ],
            },
            "spec": template.get("spec", {}),
            "status": {"phase": "Pending"},
        }
        pod = _PodRun(namespace, name, job_name)
        if self._pod_faults:
            pod.fault = self._pod_faults.pop(0)
        self._pods[(namespace, name)] = pod
        return pod

    def _set_pod_status(
        self, pod: _PodRun, phase: str, state: dict[str, Any], **extra: Any
    ) -> None:
        obj = self._object("v1/pods", pod.namespace, pod.name)
        if obj is None:
            return
        container = obj.raw["spec"]["containers"][0]
        obj.patch(
            {
                "status": {
                    "phase": phase,
                    "containerStatuses": [
                        {
                            "name": container.get("name", "main"),
                            "image": container.get("image", ""),
                            "imageID": "",
                            "ready": phase == "Running",
                            "restartCount": 0,
                            "state": state,
                        }
                    ],
                    **extra,
                }
            }
        )

    async def _run_pod(self, pod: _PodRun, timeout: float | None) -> str:
        """Run one pod to its end; returns succeeded, failed, deadline or stuck."""
        obj = self._object("v1/pods", pod.namespace, pod.name)
        container = obj.raw["spec"]["containers"][0]
        try:
            env = self._environment(pod.namespace, container)
        except LookupError as missing:
            self._set_pod_status(
                pod,
                "Pending",
                {"waiting": {"reason": "CreateContainerConfigError", "message": str(missing)}},
            )
            pod.done.set()
            return "stuck"
        workload = Workload(
            image=container.get("image", ""),
            command=[*container.get("command", []), *container.get("args", [])],
            env=env,
            working_dir=container.get("workingDir"),
            memory_limit=_memory_bytes(
                container.get("resources", {}).get("limits", {}).get("memory")
            ),
        )
        loop = asyncio.get_running_loop()
        try:
            if pod.fault == "image-pull":
                raise ImageNotFound(f'Back-off pulling image "{workload.image}"')
            pod.running = await loop.run_in_executor(None, self.runner.start, workload)
            self.workloads.append(pod.running)
        except ImageNotFound as error:
            self._set_pod_status(
                pod, "Pending", {"waiting": {"reason": "ImagePullBackOff", "message": str(error)}}
            )
            pod.done.set()
            return "stuck"
        self._set_pod_status(pod, "Running", {"running": {"startedAt": _now()}})
        waiting = loop.run_in_executor(None, pod.running.wait)
        if pod.fault in ("oom", "evicted"):
            loop.call_later(1.0, self._inject, pod)
        try:
            code, oom = await asyncio.wait_for(asyncio.shield(waiting), timeout)
        except TimeoutError:
            pod.killed_because = "deadline"
            pod.running.kill()
            code, oom = await waiting
        if pod.fault and pod.fault.startswith("exit:"):
            code = int(pod.fault.split(":")[1])
        reason = "Completed" if code == 0 else "Error"
        if oom or pod.killed_because == "oom":
            reason = "OOMKilled"
        phase = "Succeeded" if code == 0 and pod.killed_because is None else "Failed"
        terminated = {"exitCode": code, "reason": reason, "finishedAt": _now()}
        extra: dict[str, Any] = {}
        if pod.killed_because == "evicted":
            extra = {"reason": "Evicted", "message": "The node was low on resource: memory."}
        elif pod.killed_because == "deadline":
            extra = {"reason": "DeadlineExceeded", "message": "Job deadline exceeded"}
        self._set_pod_status(pod, phase, {"terminated": terminated}, **extra)
        pod.done.set()
        if pod.killed_because == "deadline":
            return "deadline"
        return "succeeded" if phase == "Succeeded" else "failed"

    def _inject(self, pod: _PodRun) -> None:
        if pod.running is not None and not pod.done.is_set():
            pod.killed_because = pod.fault
            pod.running.kill()  # SIGKILL, as the OOM killer and an eviction's grace end do

    def _environment(self, namespace: str, container: dict[str, Any]) -> dict[str, str]:
        """The container's environment as the kubelet builds it, Secrets resolved."""
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                env.update(self._secret(namespace, source["secretRef"]["name"]))
        for variable in container.get("env", []):
            if "value" in variable:
                env[variable["name"]] = str(variable["value"])
            elif "secretKeyRef" in variable.get("valueFrom", {}):
                ref = variable["valueFrom"]["secretKeyRef"]
                data = self._secret(namespace, ref["name"])
                if ref["key"] not in data:
                    raise LookupError(f"couldn't find key {ref['key']} in Secret {ref['name']}")
                env[variable["name"]] = data[ref["key"]]
        return env

    def _secret(self, namespace: str, name: str) -> dict[str, str]:
        obj = self._object("v1/secrets", namespace, name)
        if obj is None:
            raise LookupError(f'secret "{name}" not found')
        raw = obj.raw
        values = {k: base64.b64decode(v).decode() for k, v in (raw.get("data") or {}).items()}
        values.update(raw.get("stringData") or {})
        return values
