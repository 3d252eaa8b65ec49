"""Compute Engine, Vertex AI and Dataflow REST endpoints on 127.0.0.1 that run what they are
asked to run.

The real clients talk to it with ``ClientOptions(api_endpoint=service.url)``, the REST
transport and ``AnonymousCredentials`` (see :meth:`LoopbackGoogleCloud.client_options`):

- ``compute_v1.InstancesClient`` and ``ZoneOperationsClient``: VMs that boot and run their
  startup script, with a metadata server, operations that take a while, Spot, termination
  actions, GPUs and filters as Compute Engine has them (:mod:`zenml_loopback.compute`).
- ``aiplatform_v1.JobServiceClient``: create, get, list, cancel and delete custom jobs, the
  specs checked as Vertex checks them (:mod:`zenml_loopback.vertex`: machine types, accelerator
  pairs and counts, replica counts, container specs). Every replica of every worker pool runs,
  with ``CLUSTER_SPEC``, ``TF_CONFIG`` and ``AIP_*`` set; the job goes QUEUED, PENDING,
  RUNNING, then SUCCEEDED, FAILED (Vertex's message for a non-zero exit, an OOM or a job past
  ``scheduling.timeout``, which is enforced) or CANCELLED, its ``error`` set
  ``vertex_error_delay`` seconds after the state, as on Vertex.
- Cloud Logging's ``entries:list`` (``google.cloud.logging.Client(_use_grpc=False)``): each
  replica's output as ``resource.type="ml_job"`` entries labelled with the job id and task
  name, filtered by those and by timestamp, in pages.
- Secret Manager (``secretmanager_v1`` REST): create, add a version, access, delete.

- Beam's ``DataflowRunner`` with ``--dataflow_endpoint=http://localhost:PORT`` (Beam rejects
  127.0.0.1; see :meth:`LoopbackGoogleCloud.dataflow_endpoint`) and staging on gs:// (the GCS
  emulator): create, get, list, messages, and cancel (an update with ``requestedState``). The
  staged pipeline really runs, its bundles in a worker pool in the requested SDK image, its
  staged packages installed there first (:mod:`zenml_loopback.dataflow`).

Faults on demand: :meth:`inject_vertex_fault` (quota at create or later, stockout),
:meth:`inject_compute_fault` (stockout per zone, quota), :meth:`preempt` (a Spot VM taken
back, recorded as a ``compute.instances.preempted`` zone operation, as Compute Engine does),
:meth:`fail_requests` (429, 500, 403... in Google's error format), and cancelling a job
through the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from zenml_loopback.compute import ComputeEngine, ComputeError
from zenml_loopback.dataflow import DATAFLOW, STAGED_FILES, Dataflow, DataflowError
from zenml_loopback.listeners import preload_library
from zenml_loopback.service import LoopbackService
from zenml_loopback.workloads import ImageNotFound, Runner, Running, SubprocessRunner, Workload

_COMPUTE = re.compile(
    r"^/compute/v1/projects/([^/]+)/zones/([^/]+)/(instances|operations)(?:/([^/:]+))?(?:/([a-zA-Z]+))?$"
)
_AGGREGATED = re.compile(r"^/compute/v1/projects/([^/]+)/aggregated/instances$")
_VM_CALL = re.compile(r"^/loopback/vm/([-a-z]+)$")
_VERTEX = re.compile(
    r"^/v1/projects/([^/]+)/locations/([^/]+)/customJobs(?:/([^/:]+))?(?::(cancel))?$"
)
_LOGGING = "/v2/entries:list"
_SECRETS = re.compile(
    r"^/v1/projects/([^/]+)/secrets(?:/([^/:]+))?(?:/versions/([^/:]+))?(?::(addVersion|access))?$"
)
_VERTEX_ENDED = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
                 "JOB_STATE_EXPIRED")  # fmt: skip
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                 503: "UNAVAILABLE"}  # fmt: skip


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def _time(stamp: str) -> datetime.datetime:
    try:
        return datetime.datetime.fromisoformat(stamp)
    except ValueError:
        raise _ApiError(400, f"Invalid timestamp {stamp!r} in the filter") from None


@dataclass
class _Execution:
    """One VM's or job's workload."""

    running: Running | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    exit_code: int | None = None
    oom: bool = False
    stopped_because: str | None = None  # preempted, deleted, stopped, cancelled


class LoopbackGoogleCloud(ComputeEngine, Dataflow, LoopbackService):
    """``with LoopbackGoogleCloud(runner) as cloud:`` Compute Engine, Vertex AI at ``cloud.url``."""

    title = "Google Cloud emulator"

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner
        self._dataflow_init()
        self.custom_jobs: dict[str, dict[str, Any]] = {}  # full resource name -> job
        #: seconds a custom job stays QUEUED, and its error comes after its FAILED state
        self.vertex_queue_seconds = 0.2
        self.vertex_error_delay = 2.0
        self.log_entries: dict[str, list[dict[str, Any]]] = {}  # custom job id -> entries
        self._log_lines: dict[str, int] = {}  # replica execution -> lines made entries
        self.secrets: dict[str, dict[str, Any]] = {}  # Secret Manager: name -> secret, versions
        self._vertex_faults: list[str] = []
        self._executions: dict[str, _Execution] = {}  # instance selfLink or job name
        self._faults: list[list[Any]] = []  # [method, path regex, status, answers left]
        self._seen: list[tuple[str, str, Any]] = []
        self._ids = itertools.count(1000)
        self._compute_init()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        from aiohttp import web

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._site_runner = runner  # VMs' metadata servers are sites of it, on ports of their own
        try:
            yield
        finally:
            self._compute_close()
            await runner.cleanup()

    # -- for clients and tests -------------------------------------------------------------

    @property
    def dataflow_endpoint(self) -> str:
        """For ``--dataflow_endpoint``: Beam accepts localhost, not 127.0.0.1."""
        return f"http://localhost:{self.port}"

    def client_options(self) -> Any:
        from google.api_core.client_options import ClientOptions

        return ClientOptions(api_endpoint=self.url)

    def requests(self) -> list[tuple[str, str, Any]]:
        """Every request so far: (method, path, JSON body or None)."""
        return self.call(lambda: list(self._seen))

    def fail_requests(self, method: str, path_pattern: str, status: int, times: int = 1) -> None:
        """Answer ``status`` to the next ``times`` requests whose path matches the regex."""
        self.call(
            lambda: self._faults.append([method.upper(), re.compile(path_pattern), status, times])
        )

    def output(self, name: str) -> str:
        """What a job's workload (its resource name) printed; for a VM (its selfLink), its
        serial port."""
        for key, instance in self.instances.items():
            if instance["selfLink"] == name and key in self._vms:
                return self._vms[key].serial.read(0)[0]
        execution = self._executions.get(name)
        if execution is None:  # a custom job: its replicas' output, pool 0 first
            replicas = sorted(k for k in self._executions if k.startswith(name + "/"))
            return "".join(self.output(k) for k in replicas)
        if execution.running is None:
            return ""
        return execution.running.output()

    # -- HTTP -------------------------------------------------------------------------------

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        metadata_vm = self._metadata_ports.get(request.transport.get_extra_info("sockname")[1])
        if metadata_vm is not None:  # a VM's metadata server
            status, text = self._metadata(metadata_vm, request.path, request.headers)
            return web.Response(status=status, text=text, headers={"Metadata-Flavor": "Google"})
        body = await request.json() if request.can_read_body else None
        if match := STAGED_FILES.match(request.path):  # a Dataflow worker's boot, not the API
            try:
                data, kind = self._staged_file(match[1], match[2])
            except DataflowError as error:
                return _error(error.status, error.message)
            return web.Response(body=data, content_type=kind)
        if match := _VM_CALL.match(request.path):  # a VM's shims, not the public API
            try:
                return web.json_response(await self._vm_call(match[1], body or {}))
            except ComputeError as error:
                return _error(error.status, error.message)
        self._seen.append((request.method, request.path, body))
        for fault in self._faults:
            if fault[0] == request.method and fault[1].search(request.path) and fault[3] > 0:
                fault[3] -= 1
                return _error(fault[2], f"injected fault: {fault[2]}")
        try:
            if match := _COMPUTE.match(request.path):
                return web.json_response(
                    await self._compute(request.method, body, request.query, *match.groups())
                )
            if match := _AGGREGATED.match(request.path):
                return web.json_response(self._aggregated(match[1], request.query))
            if match := _VERTEX.match(request.path):
                return await self._vertex(request.method, body, *match.groups())
            if match := DATAFLOW.match(request.path):
                return web.json_response(
                    await self._dataflow(request.method, body, request.query, *match.groups())
                )
            if request.path == _LOGGING and request.method == "POST":
                return web.json_response(self._list_entries(body or {}))
            if match := _SECRETS.match(request.path):
                return await self._secrets(request.method, body, request.query, *match.groups())
        except _ApiError as error:
            return _error(error.status, error.message)
        except ComputeError as error:
            return _error(error.status, error.message, error.reason)
        except DataflowError as error:
            return _error(error.status, error.message)
        return web.json_response({"error": {"code": 404, "message": "no such method"}}, status=404)

    # -- Vertex AI --------------------------------------------------------------------------

    def inject_vertex_fault(self, kind: str) -> None:
        """Make the next custom job meet ``kind``: ``"quota-at-create"`` (the create answers
        429 RESOURCE_EXHAUSTED), ``"quota"`` (it fails later with code 8, as a job queued for
        quota does) or ``"stockout"`` (it fails: resources are insufficient in the region)."""
        if kind not in ("quota-at-create", "quota", "stockout"):
            raise ValueError(f"unknown Vertex fault {kind!r}")
        self.call(lambda: self._vertex_faults.append(kind))

    async def _vertex(
        self,
        method: str,
        body: Any,
        project: str,
        location: str,
        job_id: str | None,
        verb: str | None,
    ) -> Any:
        from aiohttp import web

        parent = f"projects/{project}/locations/{location}"
        if method == "POST" and job_id is None:
            return web.json_response(self._create_job(parent, location, body or {}))
        if method == "GET" and job_id is None:
            jobs = [j for n, j in self.custom_jobs.items() if n.startswith(parent + "/")]
            return web.json_response({"customJobs": jobs})
        name = f"{parent}/customJobs/{job_id}"
        if name not in self.custom_jobs:
            raise _ApiError(404, f"CustomJob {name} is not found.")
        job = self.custom_jobs[name]
        if method == "GET":
            return web.json_response(job)
        if method == "POST" and verb == "cancel":
            if job["state"] in ("JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING"):
                job["state"] = "JOB_STATE_CANCELLING"
                self._stop_workload(name, "cancelled")
            return web.json_response({})
        if method == "DELETE":
            if job["state"] not in _VERTEX_ENDED:
                raise _ApiError(
                    400, f"The CustomJob {name} cannot be deleted: it is {job['state']}."
                )
            del self.custom_jobs[name]
            return web.json_response({
                "name": f"{name}/operations/{next(self._ids)}",
                "done": True,
                "response": {"@type": "type.googleapis.com/google.protobuf.Empty"},
            })  # fmt: skip
        raise _ApiError(400, f"{method} {verb or ''} is not supported here")

    def _create_job(self, parent: str, location: str, body: dict[str, Any]) -> dict[str, Any]:
        from zenml_loopback import vertex

        try:
            pools = vertex.check_custom_job(body)
        except vertex.SpecError as error:
            raise _ApiError(400, str(error)) from None
        fault = self._vertex_faults.pop(0) if self._vertex_faults else None
        if fault == "quota-at-create":
            raise _ApiError(
                429,
                "The following quota metrics exceed quota limits: "
                "aiplatform.googleapis.com/custom_model_training_cpus",
            )
        name = f"{parent}/customJobs/{next(self._ids)}"
        job = {**body, "name": name, "state": "JOB_STATE_QUEUED", "createTime": _now()}
        self.custom_jobs[name] = job
        task = self._run_job(job, location, pools, fault)
        asyncio.get_running_loop().create_task(task)
        return job

    async def _run_job(
        self,
        job: dict[str, Any],
        location: str,
        pools: list[tuple[int, dict[str, Any]]],
        fault: str | None,
    ) -> None:
        from zenml_core.testing.processes import free_port
        from zenml_loopback import vertex

        await asyncio.sleep(self.vertex_queue_seconds)  # QUEUED for a while, as on Vertex
        if job["state"] != "JOB_STATE_QUEUED":  # cancelled while queued
            self._end_job(job, "JOB_STATE_CANCELLED", 1, "CANCELED")
            return
        job["state"] = "JOB_STATE_PENDING"
        if fault == "quota":
            self._end_job(job, "JOB_STATE_FAILED", 8, (
                "The following quota metrics exceed quota limits: aiplatform.googleapis.com/"
                "custom_model_training_nvidia_t4_gpus"))  # fmt: skip
            return
        if fault == "stockout":
            self._end_job(job, "JOB_STATE_FAILED", 8, (
                f"Resources are insufficient in region: {location}. Please try a different "
                "region. If you use K80, please consider switch to other GPUs."))  # fmt: skip
            return
        job_id = job["name"].rsplit("/", 1)[-1]
        ports = iter(free_port, None)
        environments = vertex.replica_environments(job_id, job, pools, ports)
        replicas = {}
        for index, pool in pools:
            container = pool["containerSpec"]
            for replica in range(int(pool["replicaCount"])):
                replica_name = f"workerpool{index}-{replica}"
                workload = _container_workload(container.get("imageUri", ""), container)
                workload.env = {**environments[replica_name], **workload.env}
                if len(environments) > 1 and isinstance(self.runner, SubprocessRunner):
                    # TensorFlow's collective server binds every interface: keep it on loopback
                    workload.env["LD_PRELOAD"] = preload_library()
                replicas[replica_name] = workload
        executions = {n: _Execution() for n in replicas}
        for replica_name, execution in executions.items():
            self._executions[f"{job['name']}/{replica_name}"] = execution
        started = await asyncio.gather(*(
            self._start(executions[n], w) for n, w in replicas.items()
        ))  # fmt: skip
        if not all(started):
            for execution in executions.values():
                if execution.running is not None:
                    execution.running.kill()
            image = next(w.image for n, w in replicas.items() if not executions[n].running)
            self._end_job(job, "JOB_STATE_FAILED", 3, f"Unable to pull image {image}")
            return
        if job["state"] == "JOB_STATE_PENDING":
            job.update(state="JOB_STATE_RUNNING", startTime=_now())
        timeout = (job.get("jobSpec", {}).get("scheduling") or {}).get("timeout")
        limit = vertex.seconds(timeout, "timeout") if timeout else None
        failed = await self._wait_replicas(executions, limit)
        if any(e.stopped_because == "cancelled" for e in executions.values()):
            self._end_job(job, "JOB_STATE_CANCELLED", 1, "CANCELED")
        elif failed == "timeout":
            self._end_job(job, "JOB_STATE_FAILED", 4, (
                f"The job ran past its timeout of {timeout} (job_spec.scheduling.timeout) and "
                "was stopped."))  # fmt: skip
        elif failed is not None:
            execution = executions[failed]
            if execution.oom:
                message = (f"The replica {failed} ran out-of-memory and exited with a non-zero "
                           f"status of {execution.exit_code}.")  # fmt: skip
            else:
                message = (f"The replica {failed} exited with a non-zero status of "
                           f"{execution.exit_code}. To find out more about why your job exited "
                           "please check the logs.")  # fmt: skip
            self._end_job(job, "JOB_STATE_FAILED", 3, message)
        else:
            self._end_job(job, "JOB_STATE_SUCCEEDED")

    async def _start(self, execution: _Execution, workload: Workload) -> bool:
        loop = asyncio.get_running_loop()
        try:
            execution.running = await loop.run_in_executor(None, self.runner.start, workload)
        except ImageNotFound:
            execution.done.set()
            return False
        self.workloads.append(execution.running)
        return True

    async def _wait_replicas(
        self, executions: dict[str, _Execution], limit: float | None
    ) -> str | None:
        """Wait for every replica; the first that failed (its name), ``"timeout"``, or None.
        When one fails or time runs out, the others are stopped, as Vertex stops the job."""
        loop = asyncio.get_running_loop()

        async def wait(name: str, execution: _Execution) -> str:
            assert execution.running is not None
            execution.exit_code, execution.oom = await loop.run_in_executor(
                None, execution.running.wait
            )
            execution.done.set()
            return name

        pending = {asyncio.ensure_future(wait(n, e)) for n, e in executions.items()}
        deadline = None if limit is None else loop.time() + limit
        failed: str | None = None
        while pending:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            done, pending = await asyncio.wait(
                pending, timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:  # past the timeout
                failed = "timeout"
            for task in done:
                name = task.result()
                if executions[name].exit_code and failed is None:
                    failed = name
            if failed is not None:
                for execution in executions.values():
                    if execution.running is not None and not execution.done.is_set():
                        execution.stopped_because = execution.stopped_because or "job ended"
                        execution.running.kill()
                if pending:
                    await asyncio.wait(pending)
                break
        return failed

    def _end_job(self, job: dict[str, Any], state: str, code: int = 0, message: str = "") -> None:
        """The job's final state; its error follows ``vertex_error_delay`` seconds later, as
        Vertex writes it after the state."""
        job.update(state=state, endTime=_now(), updateTime=_now())
        if code:
            error = {"code": code, "message": message}
            asyncio.get_running_loop().call_later(
                self.vertex_error_delay, lambda: job.update(error=error)
            )

    # -- Cloud Logging (what the jobs' replicas printed) -----------------------------------

    def _log_entries(self, job_name: str) -> list[dict[str, Any]]:
        """The job's log entries so far: each replica's new lines are received now."""
        project = job_name.split("/")[1]
        job_id = job_name.rsplit("/", 1)[-1]
        entries = self.log_entries.setdefault(job_id, [])
        for key, execution in self._executions.items():
            if not key.startswith(job_name + "/") or execution.running is None:
                continue
            replica = key.rsplit("/", 1)[-1]
            lines = execution.running.output().splitlines()
            seen = self._log_lines.get(key, 0)
            for number, line in enumerate(lines[seen:], start=seen):
                entries.append({
                    "logName": f"projects/{project}/logs/{replica}",
                    "resource": {"type": "ml_job", "labels": {
                        "job_id": job_id, "task_name": replica, "project_id": project}},
                    "textPayload": line,
                    "timestamp": _now(),
                    "receiveTimestamp": _now(),
                    "insertId": f"{replica}-{number}",
                    "severity": "INFO",
                })  # fmt: skip
            self._log_lines[key] = len(lines)
        return entries

    def _list_entries(self, body: dict[str, Any]) -> dict[str, Any]:
        terms = [t.strip() for t in re.split(r"\s+AND\s+", body.get("filter", "")) if t.strip()]
        wanted: dict[str, str] = {}
        since: tuple[str, str] | None = None
        for term in terms:
            if match := re.fullmatch(
                r'(resource\.type|resource\.labels\.\w+)\s*=\s*"([^"]*)"', term
            ):
                wanted[match[1]] = match[2]
            elif match := re.fullmatch(r'timestamp\s*(>=|>)\s*"([^"]+)"', term):
                since = (match[1], match[2])
            else:
                raise _ApiError(400, f"Unsupported filter term here: {term!r}")
        if wanted.get("resource.type") != "ml_job" or "resource.labels.job_id" not in wanted:
            raise _ApiError(400, 'filter needs resource.type="ml_job" and resource.labels.job_id')
        job_id = wanted["resource.labels.job_id"]
        job_name = next((n for n in self.custom_jobs if n.endswith(f"/customJobs/{job_id}")), None)
        entries = list(self.log_entries.get(job_id, []))
        if job_name is not None:
            entries = list(self._log_entries(job_name))
        for key, value in wanted.items():
            if key.startswith("resource.labels.") and key != "resource.labels.job_id":
                label = key.removeprefix("resource.labels.")
                entries = [e for e in entries if e["resource"]["labels"].get(label) == value]
        if since is not None:
            op, stamp = since[0], _time(since[1])
            entries = [e for e in entries if (_time(e["timestamp"]) >= stamp if op == ">=" else
                                              _time(e["timestamp"]) > stamp)]  # fmt: skip
        if body.get("orderBy", "timestamp asc").endswith("desc"):
            entries.reverse()
        start = int(body.get("pageToken") or 0)
        size = int(body.get("pageSize") or 50)
        page = entries[start : start + size]
        answer: dict[str, Any] = {"entries": page}
        if start + size < len(entries):
            answer["nextPageToken"] = str(start + size)
        return answer

    # -- Secret Manager ------------------------------------------------------------------------

    async def _secrets(
        self, method: str, body: Any, query: Any, project: str, secret: str | None,
        version: str | None, verb: str | None,
    ) -> Any:  # fmt: skip
        import base64

        from aiohttp import web

        if secret is None and method == "POST":
            secret = query.get("secretId", "")
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", secret):
                raise _ApiError(400, f"Invalid secret id {secret!r}.")
            if not (body or {}).get("replication"):
                raise _ApiError(400, "Secret.replication must be specified.")
            name = f"projects/{project}/secrets/{secret}"
            if name in self.secrets:
                raise _ApiError(409, f"Secret [{name}] already exists.")
            self.secrets[name] = {"secret": {**body, "name": name, "createTime": _now()},
                                  "versions": []}  # fmt: skip
            return web.json_response(self.secrets[name]["secret"])
        name = f"projects/{project}/secrets/{secret}"
        if name not in self.secrets:
            raise _ApiError(404, f"Secret [{name}] not found or has no versions.")
        kept = self.secrets[name]
        if method == "POST" and verb == "addVersion":
            data = ((body or {}).get("payload") or {}).get("data")
            if not data:
                raise _ApiError(400, "SecretPayload.data must be specified.")
            base64.b64decode(data, validate=True)
            kept["versions"].append(data)
            number = len(kept["versions"])
            return web.json_response({"name": f"{name}/versions/{number}", "state": "ENABLED",
                                      "createTime": _now()})  # fmt: skip
        if method == "GET" and verb == "access":
            versions = kept["versions"]
            number = len(versions) if version == "latest" else int(version or 0)
            if not 1 <= number <= len(versions):
                raise _ApiError(404, f"Secret Version [{name}/versions/{version}] not found.")
            return web.json_response({"name": f"{name}/versions/{number}",
                                      "payload": {"data": versions[number - 1]}})  # fmt: skip
        if method == "GET" and version is None:
            return web.json_response(kept["secret"])
        if method == "DELETE" and version is None:
            del self.secrets[name]
            return web.json_response({})
        raise _ApiError(400, f"{method} {verb or ''} is not supported here")

    # -- workloads ---------------------------------------------------------------------------

    async def _execute(
        self, execution: _Execution, workload: Workload, on_start: Any = None
    ) -> int | None:
        """Run a workload to its end; its exit code, or None if its image cannot be pulled."""
        loop = asyncio.get_running_loop()
        try:
            execution.running = await loop.run_in_executor(None, self.runner.start, workload)
        except ImageNotFound:
            execution.done.set()
            return None
        self.workloads.append(execution.running)
        if on_start is not None:
            on_start()
        code, _ = await loop.run_in_executor(None, execution.running.wait)
        execution.exit_code = code
        execution.done.set()
        return code

    def _stop_workload(self, name: str, because: str) -> None:
        for key, execution in list(self._executions.items()):
            if key != name and not key.startswith(name + "/"):  # a job's replicas too
                continue
            if execution.running is not None and not execution.done.is_set():
                execution.stopped_because = because
                execution.running.kill()


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str, reason: str = "loopback") -> Any:
    """An error as Google's REST APIs send it (the clients raise the matching exception)."""
    from aiohttp import web

    return web.json_response(
        {
            "error": {
                "code": status,
                "message": message,
                "status": _STATUS_NAMES.get(status, "UNKNOWN"),
                "errors": [{"message": message, "domain": "global", "reason": reason}],
            }
        },
        status=status,
    )


def _container_workload(image: str, spec: dict[str, Any]) -> Workload:
    """A container spec as both APIs write it: command, args, env as name/value pairs."""
    return Workload(
        image=image,
        command=[*spec.get("command", []), *spec.get("args", [])],
        env={e["name"]: str(e.get("value", "")) for e in spec.get("env", [])},
    )
