"""The loopback Compute Engine: VMs that boot, run their startup script and keep billing.

Part of :class:`zenml_loopback.google.LoopbackGoogleCloud`. What a buggy client would get away
with elsewhere, it does not get away with here (see ../shared/CLOUD-FACTS.md §1):

- A VM runs its ``startup-script`` metadata with bash on this machine, "the VM host". On its
  PATH are ``docker`` (its ``run`` maps onto the cloud's workload runner: a container of our
  Docker engine, or a subprocess), ``cos-extensions`` and ``mount``, as on Container-Optimized
  OS. The script's output (and what the containers it runs in the foreground print) is the
  serial port, with the guest agent's prefix. ``gce-container-declaration`` is ignored: Google's
  container agent is gone for new VMs since 31 July 2026.
- When the script ends the VM stays RUNNING, billing, until somebody deletes it.
- Each VM has a metadata server (``GCE_METADATA_HOST`` for the script and its containers):
  instance name, id, zone, attributes, ``preempted``, a service account token, project id.
- Operations stay RUNNING for ``operation_seconds``; a stockout ends one DONE with
  ``error.errors`` (and, by default, ``httpErrorStatusCode: 503``); quota is a synchronous 403.
- Scheduling: SPOT and legacy preemptible VMs can be preempted (:meth:`preempt`), after which
  ``instanceTerminationAction`` applies (STOP: TERMINATED, DELETE: gone); ``maxRunDuration``
  fires that action; ``instances.start`` boots a stopped VM again (its script runs again).
- GPUs: ``guestAccelerators`` only on N1, accelerator types of the VM's zone, A2/A3/G2 carry
  their own, and any GPU VM needs ``onHostMaintenance: TERMINATE``. ``docker run --gpus`` fails
  as on COS; ``--device /dev/nvidia*`` needs ``cos-extensions install gpu`` first.
- ``filter`` is applied on instance lists, aggregated lists and zone operations.
- The serial port pages with ``start``/``next`` over a 1 MB window and is lost on delete.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from zenml_loopback.workloads import ImageNotFound, Runner, Running, Workload

T = TypeVar("T")

#: the serial port keeps this many bytes, as Compute Engine's buffer does
SERIAL_WINDOW = 1 << 20
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_MACHINE = re.compile(
    r"^(n1|n2|n2d|e2|c2|c2d|c3|n4|t2d)-(standard|highmem|highcpu)-\d+$|^e2-(micro|small|medium)$"
    r"|^(a2|a3)-(highgpu|megagpu|ultragpu)-\d+g$|^g2-standard-\d+$|^f1-micro$|^g1-small$"
)
_N1_GPUS = ("nvidia-tesla-t4", "nvidia-tesla-v100", "nvidia-tesla-p100", "nvidia-tesla-p4")
_LABEL_KEY = re.compile(r"^[a-z][-_a-z0-9]{0,62}$")
_LABEL_VALUE = re.compile(r"^[-_a-z0-9]{0,63}$")
_METADATA_KEY = re.compile(r"^[a-zA-Z0-9-_]{1,128}$")
_AGENT = "google_metadata_script_runner"


class ComputeError(Exception):
    """An answer in Google's error format: ``status``, message, and the error's reason."""

    def __init__(self, status: int, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


class _Serial:
    """Serial port 1: what was written, the last ``SERIAL_WINDOW`` bytes of it kept."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.written = 0  # bytes ever written: ``next`` of a read to the end

    def write(self, text: str) -> None:
        raw = text.encode(errors="replace")
        self.data += raw
        self.written += len(raw)
        if len(self.data) > SERIAL_WINDOW:
            del self.data[: len(self.data) - SERIAL_WINDOW]

    def read(self, start: int) -> tuple[str, int, int]:
        """(contents, the start they begin at, next): a start before the window begins at the
        window's oldest byte, as Compute Engine answers."""
        oldest = self.written - len(self.data)
        start = min(max(start, oldest), self.written)
        return self.data[start - oldest :].decode(errors="replace"), start, self.written


@dataclass
class _Container:
    running: Running | None
    name: str | None
    exit_code: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _VM:
    key: tuple[str, str, str]
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    serial: _Serial = field(default_factory=_Serial)
    metadata_port: int = 0
    script: asyncio.subprocess.Process | None = None
    containers: dict[str, _Container] = field(default_factory=dict)
    gpu_driver: bool = False
    preempted: bool = False
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    folder: str = ""


class ComputeEngine:
    """The Compute Engine half of the loopback Google Cloud (a mixin: it uses the cloud's
    ``url``, ``runner``, ``workloads``, ``_ids`` and ``call``)."""

    url: str
    runner: Runner
    workloads: list[Running]
    _ids: Any

    if TYPE_CHECKING:

        def call(self, function: Callable[[], T]) -> T: ...

    #: how long insert, delete, stop and start operations stay RUNNING
    operation_seconds = 0.3
    #: how long a preempted VM has before it is stopped (30 s on Compute Engine for Spot)
    preemption_grace_seconds = 0.5

    def _compute_init(self) -> None:
        self.instances: dict[tuple[str, str, str], dict[str, Any]] = {}  # (project, zone, name)
        self.zone_operations: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._vms: dict[tuple[str, str, str], _VM] = {}
        self._vm_tokens: dict[str, _VM] = {}
        self._metadata_ports: dict[int, _VM] = {}
        self._compute_faults: list[dict[str, Any]] = []
        self._all_containers: list[_Container] = []
        self._container_waits: set[asyncio.Task[None]] = set()
        self._site_runner: Any = None
        self._shims = tempfile.mkdtemp(prefix="zenml-loopback-vm-bin-")
        _write_shims(self._shims)

    def _compute_close(self) -> None:
        for vm in list(self._vms.values()):
            self._kill_vm(vm)
        shutil.rmtree(self._shims, ignore_errors=True)

    # -- for tests ---------------------------------------------------------------------------

    def inject_compute_fault(
        self,
        kind: str,
        zone: str | None = None,
        times: int = 1,
        http_status: bool = True,
    ) -> None:
        """Make the next ``times`` inserts (in ``zone``, or any) meet ``kind``: ``"stockout"``
        (the operation ends DONE with ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS in
        ``error.errors``, and ``httpErrorStatusCode: 503`` unless ``http_status`` is false),
        ``"quota"`` (a 403 quotaExceeded for CPUS) or ``"gpu-quota"`` (GPUS_ALL_REGIONS)."""
        if kind not in ("stockout", "quota", "gpu-quota"):
            raise ValueError(f"unknown Compute Engine fault {kind!r}")
        fault = {"kind": kind, "zone": zone, "left": times, "http_status": http_status}
        self.call(lambda: self._compute_faults.append(fault))

    def preempt(self, project: str, zone: str, name: str) -> None:
        """Take back a Spot (or legacy preemptible) VM: ``preempted`` turns TRUE, and after
        the grace period its script and containers are killed, a ``compute.instances.
        preempted`` operation is recorded and its termination action applies."""

        def take_back() -> None:
            instance = self.instances[(project, zone, name)]
            scheduling = instance.get("scheduling", {})
            if not (scheduling.get("preemptible") or scheduling.get("provisioningModel") == "SPOT"):
                raise ValueError(f"instance {name} is neither Spot nor preemptible")
            vm = self._vms[(project, zone, name)]
            vm.preempted = True
            vm.serial.write("ACPI: Preparing to enter system sleep state S5\n")
            asyncio.get_running_loop().create_task(self._end_preempted(vm))

        self.call(take_back)

    def serial_output(self, project: str, zone: str, name: str) -> str:
        """Everything the VM's serial port still holds."""
        return self.call(lambda: self._vms[(project, zone, name)].serial.read(0)[0])

    def vm_containers(self, project: str, zone: str, name: str) -> list[str]:
        """Names (or ids) of the containers the VM's script has started so far."""
        return self.call(lambda: list(self._vms[(project, zone, name)].containers))

    def container_exit_codes(self) -> list[int | None]:
        """The exit code of every container any VM started, in order (None: still running)."""
        return self.call(lambda: [c.exit_code for c in self._all_containers])

    # -- HTTP: the Compute Engine API ----------------------------------------------------------

    async def _compute(
        self, method: str, body: Any, query: Any, project: str, zone: str, collection: str,
        name: str | None, verb: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        if collection == "operations":
            operations = self.zone_operations.get((project, zone), [])
            if name is None:
                return {"items": _filtered(operations, query.get("filter", ""))}
            for operation in operations:
                if operation["name"] == name:
                    if verb == "wait":  # returns once DONE, or after a while (2 min there)
                        for _ in range(100):
                            if operation["status"] == "DONE":
                                break
                            await asyncio.sleep(0.05)
                    return operation
            raise ComputeError(404, f"The resource 'projects/{project}/zones/{zone}/operations/"
                                    f"{name}' was not found", "notFound")  # fmt: skip
        key = (project, zone, name or "")
        if method == "POST" and name is None:
            return self._insert(project, zone, body or {})
        if method == "GET" and name is None:
            items = [i for (p, z, _), i in self.instances.items() if (p, z) == (project, zone)]
            return {"items": _filtered(items, query.get("filter", ""))}
        if key not in self.instances:
            raise ComputeError(404, f"The resource 'projects/{project}/zones/{zone}/instances/"
                                    f"{name}' was not found", "notFound")  # fmt: skip
        instance = self.instances[key]
        if method == "GET" and verb is None:
            return instance
        if method == "GET" and verb == "serialPort":
            contents, start, after = self._vms[key].serial.read(int(query.get("start", 0) or 0))
            return {
                "kind": "compute#serialPortOutput",
                "contents": contents,
                "start": str(start),
                "next": str(after),
                "selfLink": instance["selfLink"],
            }
        if method == "DELETE":
            return self._delete_instance(key)
        if method == "POST" and verb == "stop":
            return self._stop_instance(key)
        if method == "POST" and verb == "start":
            return self._start_instance(key)
        raise ComputeError(400, f"{method} {verb or ''} is not supported here")

    def _aggregated(self, project: str, query: Any) -> dict[str, Any]:
        zones: dict[str, dict[str, Any]] = {}
        for (p, z, _), instance in self.instances.items():
            if p == project:
                zones.setdefault(f"zones/{z}", {"instances": []})["instances"].append(instance)
        wanted = query.get("filter", "")
        items = {z: {"instances": _filtered(v["instances"], wanted)} for z, v in zones.items()}
        return {"items": {z: v for z, v in items.items() if v["instances"]}}

    def _insert(self, project: str, zone: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name") or ""
        _check_instance(project, zone, body)
        if (project, zone, name) in self.instances:
            raise ComputeError(409, f"The resource 'projects/{project}/zones/{zone}/instances/"
                                    f"{name}' already exists", "alreadyExists")  # fmt: skip
        fault = self._next_fault(zone)
        region = zone.rsplit("-", 1)[0]
        if fault is not None and fault["kind"] == "quota":
            raise ComputeError(403, f"Quota 'CPUS' exceeded.  Limit: 24.0 in region {region}.",
                               "quotaExceeded")  # fmt: skip
        if fault is not None and fault["kind"] == "gpu-quota":
            raise ComputeError(403, "Quota 'GPUS_ALL_REGIONS' exceeded.  Limit: 0.0 globally.",
                               "quotaExceeded")  # fmt: skip
        link = f"{self.url}/compute/v1/projects/{project}/zones/{zone}/instances/{name}"
        instance = {
            **body,
            "id": str(next(self._ids)),
            "kind": "compute#instance",
            "status": "PROVISIONING",
            "zone": f"{self.url}/compute/v1/projects/{project}/zones/{zone}",
            "selfLink": link,
            "creationTimestamp": _now(),
        }
        key = (project, zone, name)
        self.instances[key] = instance
        operation = self._operation(project, zone, "insert", instance, done=False)
        if fault is not None:  # stockout: the operation fails, the VM never exists
            error = {"errors": [{
                "code": "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                "message": f"The zone 'projects/{project}/zones/{zone}' does not have enough "
                           "resources available to fulfill the request.  '(resource type:"
                           "compute)'.",
            }]}  # fmt: skip
            http = {"httpErrorStatusCode": 503, "httpErrorMessage": "SERVICE UNAVAILABLE"}

            def fail() -> None:
                self.instances.pop(key, None)
                operation.update(error=error, **(http if fault["http_status"] else {}))
                _finish(operation)

            asyncio.get_running_loop().call_later(self.operation_seconds, fail)
            return operation
        vm = self._vms[key] = _VM(key)
        self._vm_tokens[vm.token] = vm
        vm.tasks.append(asyncio.get_running_loop().create_task(self._boot(vm, operation)))
        return operation

    def _next_fault(self, zone: str) -> dict[str, Any] | None:
        for fault in self._compute_faults:
            if fault["left"] > 0 and fault["zone"] in (None, zone):
                fault["left"] -= 1
                return fault
        return None

    def _delete_instance(self, key: tuple[str, str, str]) -> dict[str, Any]:
        instance = self.instances[key]
        instance["status"] = "STOPPING"
        vm = self._vms.pop(key, None)
        if vm is not None:
            self._kill_vm(vm)
        operation = self._operation(key[0], key[1], "delete", instance, done=False)

        def gone() -> None:
            if self.instances.get(key) is instance:
                del self.instances[key]
            _finish(operation)

        asyncio.get_running_loop().call_later(self.operation_seconds, gone)
        return operation

    def _stop_instance(self, key: tuple[str, str, str]) -> dict[str, Any]:
        instance = self.instances[key]
        instance["status"] = "STOPPING"
        vm = self._vms[key]
        self._kill_vm(vm, keep=True)
        operation = self._operation(key[0], key[1], "stop", instance, done=False)

        def stopped() -> None:
            instance.update(status="TERMINATED", lastStopTimestamp=_now())
            _finish(operation)

        asyncio.get_running_loop().call_later(self.operation_seconds, stopped)
        return operation

    def _start_instance(self, key: tuple[str, str, str]) -> dict[str, Any]:
        instance = self.instances[key]
        if instance["status"] != "TERMINATED":
            raise ComputeError(400, f"The resource '{instance['selfLink']}' is not ready: it is "
                                    f"{instance['status']}", "resourceNotReady")  # fmt: skip
        vm = self._vms[key]
        vm.preempted = False
        instance["status"] = "PROVISIONING"
        operation = self._operation(key[0], key[1], "start", instance, done=False)
        vm.tasks.append(asyncio.get_running_loop().create_task(self._boot(vm, operation)))
        return operation

    def _operation(
        self, project: str, zone: str, kind: str, instance: dict[str, Any], done: bool = True
    ) -> dict[str, Any]:
        operation = {
            "kind": "compute#operation",
            "id": str(next(self._ids)),
            "name": f"operation-{next(self._ids)}",
            "operationType": kind,
            "status": "RUNNING",
            "progress": 0,
            "targetLink": instance["selfLink"],
            "targetId": instance["id"],
            "zone": instance["zone"],
            "selfLink": f"{instance['zone']}/operations/{next(self._ids)}",
            "insertTime": _now(),
            "startTime": _now(),
        }
        if done:
            _finish(operation)
        self.zone_operations.setdefault((project, zone), []).append(operation)
        return operation

    # -- a VM's life ----------------------------------------------------------------------------

    async def _boot(self, vm: _VM, operation: dict[str, Any]) -> None:
        instance = self.instances[vm.key]
        await asyncio.sleep(self.operation_seconds)
        if self.instances.get(vm.key) is not instance or instance["status"] != "PROVISIONING":
            return  # deleted or stopped while provisioning
        instance["status"] = "STAGING"
        _finish(operation)
        await self._serve_metadata(vm)
        instance.update(status="RUNNING", lastStartTimestamp=_now())
        vm.serial.write(f"Booting Container-Optimized OS on {vm.key[2]} (loopback)\n")
        duration = instance.get("scheduling", {}).get("maxRunDuration")
        if duration:
            seconds = float(duration.get("seconds", 0)) + float(duration.get("nanos", 0)) / 1e9
            vm.tasks.append(asyncio.get_running_loop().create_task(self._max_run(vm, seconds)))
        script = _metadata_item(instance, "startup-script")
        if script is None:
            return  # a VM with nothing to do runs (and bills) all the same
        vm.folder = vm.folder or tempfile.mkdtemp(prefix=f"zenml-loopback-vm-{vm.key[2]}-")
        path = Path(vm.folder) / "startup-script"
        path.write_text(script)
        env = {
            "PATH": f"{self._shims}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": vm.folder,
            "HOSTNAME": vm.key[2],
            "GCE_METADATA_HOST": f"127.0.0.1:{vm.metadata_port}",
            "ZENML_LOOPBACK_VM": vm.token,
            "ZENML_LOOPBACK_CLOUD": self.url,
            "ZENML_LOOPBACK_PYTHON": sys.executable,
        }
        vm.serial.write(f"{_AGENT}: Starting startup scripts (version loopback).\n")
        vm.serial.write(f"{_AGENT}: Found startup-script in metadata.\n")
        vm.script = await asyncio.create_subprocess_exec(
            "bash", str(path), cwd=vm.folder, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        assert vm.script.stdout is not None
        pid = vm.script.pid
        async for line in vm.script.stdout:
            vm.serial.write(f"{_AGENT}[{pid}]: startup-script: {line.decode(errors='replace')}")
        await vm.script.wait()
        vm.serial.write(f"{_AGENT}[{pid}]: Finished running startup scripts.\n")
        # the VM goes on RUNNING (and billing) until somebody deletes it

    async def _max_run(self, vm: _VM, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self._vms.get(vm.key) is vm and self.instances[vm.key]["status"] == "RUNNING":
            vm.serial.write("Instance reached its maxRunDuration: terminating\n")
            self._terminate(vm)

    async def _end_preempted(self, vm: _VM) -> None:
        await asyncio.sleep(self.preemption_grace_seconds)
        if self._vms.get(vm.key) is not vm:
            return
        instance = self.instances[vm.key]
        self._operation(vm.key[0], vm.key[1], "compute.instances.preempted", instance)
        self._terminate(vm)

    def _terminate(self, vm: _VM) -> None:
        """``instanceTerminationAction``: DELETE removes the VM, STOP (the default)
        terminates it."""
        instance = self.instances[vm.key]
        if instance.get("scheduling", {}).get("instanceTerminationAction") == "DELETE":
            self._vms.pop(vm.key, None)
            self._kill_vm(vm)
            del self.instances[vm.key]
            return
        self._kill_vm(vm, keep=True)
        instance.update(status="TERMINATED", lastStopTimestamp=_now())

    def _kill_vm(self, vm: _VM, keep: bool = False) -> None:
        """The VM's script and containers end (power off); ``keep``: its disk (folder) and
        serial port stay, as a stopped VM's do."""
        for task in vm.tasks:
            task.cancel()
        vm.tasks.clear()
        if vm.script is not None and vm.script.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(vm.script.pid, signal.SIGKILL)
        for container in vm.containers.values():
            if container.running is not None and not container.done.is_set():
                container.running.kill()
        if not keep:
            self._vm_tokens.pop(vm.token, None)
            self._metadata_ports.pop(vm.metadata_port, None)
            if vm.folder:
                shutil.rmtree(vm.folder, ignore_errors=True)

    # -- the metadata server ------------------------------------------------------------------

    async def _serve_metadata(self, vm: _VM) -> None:
        from aiohttp import web

        from zenml_core.testing.processes import free_port

        if vm.metadata_port:
            self._metadata_ports[vm.metadata_port] = vm
            return
        vm.metadata_port = free_port()
        await web.TCPSite(self._site_runner, "127.0.0.1", vm.metadata_port).start()
        self._metadata_ports[vm.metadata_port] = vm

    def _metadata(self, vm: _VM, path: str, headers: Any) -> tuple[int, str]:
        if headers.get("Metadata-Flavor") != "Google":
            return 403, 'Missing required header "Metadata-Flavor": "Google"\n'
        project, zone, name = vm.key
        instance = self.instances.get(vm.key)
        if instance is None:
            return 404, "not found\n"
        prefix = "/computeMetadata/v1/"
        if path in ("/", "/computeMetadata/", prefix):
            return 200, "instance/\nproject/\n"
        path = path.removeprefix(prefix)
        attributes = {i["key"]: i.get("value", "") for i in
                      instance.get("metadata", {}).get("items", [])}  # fmt: skip
        accounts = instance.get("serviceAccounts") or [{"email": "default"}]
        values = {
            "instance/name": name,
            "instance/hostname": f"{name}.{zone}.c.{project}.internal",
            "instance/id": instance["id"],
            "instance/zone": f"projects/123456789/zones/{zone}",
            "instance/machine-type": f"projects/123456789/machineTypes/"
            f"{instance.get('machineType', '').rsplit('/', 1)[-1]}",
            "instance/preempted": "TRUE" if vm.preempted else "FALSE",
            "instance/attributes/": "".join(f"{k}\n" for k in attributes),
            "instance/service-accounts/default/email": accounts[0].get("email", "default"),
            "instance/service-accounts/default/token": (
                '{"access_token":"loopback-token","expires_in":3599,"token_type":"Bearer"}'
            ),
            "project/project-id": project,
            "project/numeric-project-id": "123456789",
        }
        if path.startswith("instance/attributes/") and path != "instance/attributes/":
            key = path.removeprefix("instance/attributes/")
            return (200, attributes[key]) if key in attributes else (404, "not found\n")
        if path in values:
            return 200, values[path]
        return 404, "not found\n"

    # -- what the VM's shims ask for ------------------------------------------------------------

    async def _vm_call(self, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        vm = self._vm_tokens.get(str(body.get("vm", "")))
        if vm is None or self._vms.get(vm.key) is not vm:
            raise ComputeError(404, "no such VM (it was deleted)")
        if verb == "cos-extensions":
            instance = self.instances[vm.key]
            if not _gpu_count(instance):
                return {
                    "code": 1,
                    "output": "No GPU found on this instance: attach one "
                    "(guestAccelerators) to install the driver.\n",
                }
            vm.gpu_driver = True
            return {"code": 0, "output": "Installing GPU driver ... done (loopback)\n"}
        if verb == "run":
            return await self._docker_run(vm, body)
        if verb == "poll":
            container = vm.containers.get(str(body.get("id")))
            if container is None:
                return {"code": 1, "output": f"Error: No such container: {body.get('id')}\n"}
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(container.done.wait()), timeout=0.5)
            text = container.running.output() if container.running else ""
            return {"output": text[int(body.get("offset", 0)) :], "offset": len(text),
                    "exit_code": container.exit_code}  # fmt: skip
        if verb == "stop":
            wanted = str(body.get("name"))
            for cid, container in vm.containers.items():
                if wanted in (cid, container.name) and container.running is not None:
                    container.running.kill()
                    return {"code": 0, "output": f"{wanted}\n"}
            return {"code": 1, "output": f"Error response from daemon: No such container: "
                                         f"{wanted}\n"}  # fmt: skip
        raise ComputeError(400, f"unknown VM call {verb}")

    async def _docker_run(self, vm: _VM, body: dict[str, Any]) -> dict[str, Any]:
        image = str(body.get("image", ""))
        if body.get("gpus"):
            return {"code": 125, "output": "docker: Error response from daemon: could not "
                    "select device driver \"\" with capabilities: [[gpu]].\n"}  # fmt: skip
        for device in body.get("devices", []):
            if device.startswith("/dev/nvidia") and not vm.gpu_driver:
                return {"code": 125, "output": "docker: Error response from daemon: error "
                        "gathering device information while adding custom device "
                        f"\"{device}\": no such file or directory.\n"}  # fmt: skip
        name = body.get("name")
        if name and any(c.name == name for c in vm.containers.values()):
            return {"code": 125, "output": f"docker: Error response from daemon: Conflict. The "
                    f"container name \"/{name}\" is already in use.\n"}  # fmt: skip
        env = dict(body.get("env", {}))
        # what the VM's network gives a container: metadata.google.internal
        env.setdefault("GCE_METADATA_HOST", f"127.0.0.1:{vm.metadata_port}")
        env.setdefault("GCE_METADATA_IP", f"127.0.0.1:{vm.metadata_port}")
        workload = Workload(image=image, command=list(body.get("command", [])), env=env)
        loop = asyncio.get_running_loop()
        try:
            running = await loop.run_in_executor(None, self.runner.start, workload)
        except ImageNotFound:
            return {"code": 125, "output": f"Unable to find image '{image}' locally\ndocker: "
                    f"Error response from daemon: pull access denied for {image.split(':')[0]}, "
                    "repository does not exist or may require 'docker login'.\n"}  # fmt: skip
        self.workloads.append(running)
        cid = secrets.token_hex(6)
        container = vm.containers[cid] = _Container(running, name)
        self._all_containers.append(container)

        async def wait() -> None:
            container.exit_code, _ = await loop.run_in_executor(None, running.wait)
            container.done.set()

        # not one of the VM's tasks: a killed container's exit is still recorded
        self._container_waits.add(task := loop.create_task(wait()))
        task.add_done_callback(self._container_waits.discard)
        return {"code": 0, "id": cid}


# -- checks Compute Engine makes on an insert ----------------------------------------------------


def _check_instance(project: str, zone: str, body: dict[str, Any]) -> None:
    name = body.get("name") or ""
    if not _NAME.match(name):
        raise ComputeError(
            400,
            f"Invalid value for field 'resource.name': '{name}'. Must be a "
            "match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'",
        )
    machine = str(body.get("machineType", ""))
    machine_type = machine.rsplit("/", 1)[-1]
    if f"zones/{zone}/machineTypes/" not in machine or not _MACHINE.match(machine_type):
        raise ComputeError(400, f"Invalid value for field 'resource.machineType': '{machine}'. "
                                f"Machine type with name '{machine_type}' does not exist in "
                                f"zone '{zone}'.")  # fmt: skip
    disks = body.get("disks") or []
    if not any(d.get("boot") and (d.get("initializeParams") or {}).get("sourceImage")
               for d in disks):  # fmt: skip
        raise ComputeError(400, "Invalid value for field 'resource.disks': ''. Boot disk must "
                                "be specified.")  # fmt: skip
    if not body.get("networkInterfaces"):
        raise ComputeError(400, "Invalid value for field 'resource.networkInterfaces': ''. At "
                                "least one network interface is required.")  # fmt: skip
    for key, value in (body.get("labels") or {}).items():
        if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(str(value)):
            raise ComputeError(400, f"Invalid value for field 'resource.labels': '{key}'.")
    items = (body.get("metadata") or {}).get("items") or []
    if sum(len(i.get("key", "")) + len(i.get("value", "")) for i in items) > 512 * 1024:
        raise ComputeError(400, "Metadata exceeds the 512 KB limit.")
    for item in items:
        if not _METADATA_KEY.match(item.get("key", "")):
            raise ComputeError(400, f"Invalid value for field 'resource.metadata': "
                                    f"'{item.get('key')}'.")  # fmt: skip
    family = machine_type.split("-", 1)[0]
    accelerators = body.get("guestAccelerators") or []
    for accelerator in accelerators:
        kind = str(accelerator.get("acceleratorType", ""))
        if f"zones/{zone}/acceleratorTypes/" not in kind:
            raise ComputeError(400, f"Invalid value for field 'resource.guestAccelerators[0]."
                                    f"acceleratorType': '{kind}'. Accelerator type must be of "
                                    f"zone {zone}.")  # fmt: skip
        short = kind.rsplit("/", 1)[-1]
        if family in ("a2", "a3", "g2"):
            raise ComputeError(400, f"Machine type {machine_type} comes with its own GPUs: "
                                    "guestAccelerators cannot be set.")  # fmt: skip
        if short not in _N1_GPUS or family != "n1":
            raise ComputeError(
                400,
                f"Invalid value for field 'resource.guestAccelerators[0]."
                f"acceleratorType': '{kind}'. Accelerator type '{short}' "
                f"cannot be attached to machine type '{machine_type}'.",
            )
        if int(accelerator.get("acceleratorCount", 0)) not in (1, 2, 4, 8):
            raise ComputeError(400, "Invalid value for field 'resource.guestAccelerators[0]."
                                    "acceleratorCount'.")  # fmt: skip
    scheduling = body.get("scheduling") or {}
    gpus = bool(accelerators) or family in ("a2", "a3", "g2")
    maintenance = scheduling.get("onHostMaintenance", "MIGRATE")
    if gpus and maintenance != "TERMINATE":
        raise ComputeError(400, "Instances with guest accelerators do not support live "
                                "migration.")  # fmt: skip
    spot = scheduling.get("provisioningModel") == "SPOT" or scheduling.get("preemptible")
    if spot and (maintenance != "TERMINATE" or scheduling.get("automaticRestart")):
        raise ComputeError(400, "Invalid value for field 'resource.scheduling': Scheduling must "
                                "have preemptible be false when OnHostMaintenance isn't "
                                "TERMINATE, and automaticRestart false.")  # fmt: skip
    model = scheduling.get("provisioningModel", "STANDARD")
    if model not in ("STANDARD", "SPOT"):
        raise ComputeError(400, f"Invalid value for field 'resource.scheduling."
                                f"provisioningModel': '{model}'.")  # fmt: skip
    action = scheduling.get("instanceTerminationAction")
    if action not in (None, "STOP", "DELETE"):
        raise ComputeError(400, f"Invalid value for field 'resource.scheduling."
                                f"instanceTerminationAction': '{action}'.")  # fmt: skip
    if scheduling.get("maxRunDuration") and action is None:
        raise ComputeError(400, "Invalid value for field 'resource.scheduling."
                                "instanceTerminationAction': ''. It must be set when "
                                "maxRunDuration is.")  # fmt: skip


def _gpu_count(instance: dict[str, Any]) -> int:
    count = sum(int(a.get("acceleratorCount", 0)) for a in instance.get("guestAccelerators", []))
    machine = str(instance.get("machineType", "")).rsplit("/", 1)[-1]
    if match := re.match(r"^(a2|a3)-\w+-(\d+)g$", machine):
        count += int(match[2])
    elif machine.startswith("g2-"):
        count += 1
    return count


def _metadata_item(instance: dict[str, Any], key: str) -> str | None:
    for item in (instance.get("metadata") or {}).get("items") or []:
        if item.get("key") == key:
            return str(item.get("value", ""))
    return None


# -- list filters ------------------------------------------------------------------------------

_TERM = re.compile(r'\(?\s*([\w.-]+)\s*(=|!=|:|\beq\b|\bne\b)\s*("[^"]*"|[^\s)]+)\s*\)?')


def _filtered(items: list[dict[str, Any]], expression: str) -> list[dict[str, Any]]:
    """Items matching a Compute Engine list filter (terms joined by AND or spaces:
    ``labels.zenml-run = "r1"``, ``status != TERMINATED``, ``labels.zenml-run:*``,
    ``operationType="compute.instances.preempted" AND targetLink="..."``)."""
    expression = expression.strip()
    if not expression:
        return list(items)
    terms = []
    rest = re.sub(r"\s+AND\s+", " ", expression)
    position = 0
    while position < len(rest):
        if rest[position].isspace():
            position += 1
            continue
        match = _TERM.match(rest, position)
        if match is None:
            raise ComputeError(400, f"Invalid value for field 'filter': '{expression}'. Invalid "
                                    "list filter expression.")  # fmt: skip
        terms.append((match[1], match[2], match[3].strip('"')))
        position = match.end()

    def value_of(item: dict[str, Any], field_name: str) -> Any:
        value: Any = item
        for part in field_name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    def keep(item: dict[str, Any]) -> bool:
        for field_name, op, wanted in terms:
            value = value_of(item, field_name)
            if op == ":":
                if value is None or (wanted != "*" and wanted not in str(value)):
                    return False
            elif op in ("=", "eq"):
                if str(value) != wanted if op == "=" else not re.fullmatch(wanted, str(value)):
                    return False
            elif str(value) == wanted if op == "!=" else re.fullmatch(wanted, str(value)):
                return False
        return True

    return [i for i in items if keep(i)]


def _finish(operation: dict[str, Any]) -> None:
    operation.update(status="DONE", progress=100, endTime=_now())


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


# -- the VM's shims ------------------------------------------------------------------------------


def _write_shims(folder: str) -> None:
    """``docker``, ``cos-extensions`` and ``mount`` on the VM's PATH, as COS has them."""
    for name, module_call in (
        ("docker", "docker"),
        ("cos-extensions", "cos_extensions"),
        ("mount", "mount"),
    ):
        path = Path(folder) / name
        path.write_text(
            f"#!{sys.executable}\nimport sys\nfrom zenml_loopback import vm_host\n"
            f"sys.exit(vm_host.{module_call}(sys.argv[1:]))\n"
        )
        path.chmod(0o755)
