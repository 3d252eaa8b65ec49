"""The loopback Dataflow: jobs that Beam's ``DataflowRunner`` submits run their staged pipeline
for real, as strictly as Dataflow takes them.

A job is checked as Dataflow checks it: its name (``[a-z]([-a-z0-9]*[a-z0-9])?``, at most 63),
``gs://`` staging and temp locations, and no other active job of the same name (409
ALREADY_EXISTS). Then:

- its worker runs in a container of the requested ``sdk_container_image`` (a subprocess of this
  interpreter without Docker; only the runner's images exist): a bootstrap, as Dataflow's
  ``boot`` does, fetches the job's staged packages (the emulator serves them from the staging
  location) and installs them, then starts Beam's worker pool in the image;
- the staged pipeline runs through Beam's portable FnApiRunner (:mod:`dataflow_worker`) with
  its environments pointed at that pool: the SDK harness of the image runs every bundle, so an
  image whose Beam or Python does not match the pipeline's fails as on Dataflow;
- an image that cannot be pulled, or an injected worker start-up failure
  (:meth:`inject_dataflow_fault`), leaves the job RUNNING without worker activity, as Dataflow
  does, until ``no_worker_activity_seconds`` (an hour, as there) fail it;
- the job's messages (start-up, workers ready, errors) page with ``pageToken`` and filter by
  ``startTime`` and ``minimumImportance``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import re
import socket
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from zenml_core.testing.processes import free_port
from zenml_loopback.listeners import preload_library
from zenml_loopback.workloads import ImageNotFound, Running, Workload

DATAFLOW = re.compile(
    r"^/v1b3/projects/([^/]+)/locations/([^/]+)/jobs(?:/([^/:]+))?(?:/(messages))?$"
)
STAGED_FILES = re.compile(r"^/loopback/dataflow/([^/]+)/files(?:/([^/]+))?$")
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_ENDED = ("JOB_STATE_DONE", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_DRAINED",
          "JOB_STATE_UPDATED", "JOB_STATE_STOPPED")  # fmt: skip
_IMPORTANCE = ["JOB_MESSAGE_DEBUG", "JOB_MESSAGE_DETAILED", "JOB_MESSAGE_BASIC",
               "JOB_MESSAGE_WARNING", "JOB_MESSAGE_ERROR"]  # fmt: skip
#: what Dataflow says once the SDK harnesses take work (clients watch for it)
WORKERS_READY = (
    "All workers have finished the startup processes and began to receive work requests."
)
#: messages per page when the client asks for none (small, so that paging is exercised)
MESSAGE_PAGE = 5

#: run in the worker's image with its Python alone, as Dataflow's boot: fetch the staged
#: packages, install them, start the worker pool (kept on 127.0.0.1 by bind_loopback.so)
BOOTSTRAP = textwrap.dedent(
    """
    import json, os, subprocess, sys, tempfile, urllib.request, zipfile
    base = os.environ["LOOPBACK_DATAFLOW_FILES"]
    work = tempfile.mkdtemp(prefix="dataflow-worker-")
    site = os.path.join(work, "site")
    os.makedirs(site)
    env = dict(os.environ)
    for name in json.load(urllib.request.urlopen(base)):
        path = os.path.join(work, name)
        with urllib.request.urlopen(base + "/" + name) as answer, open(path, "wb") as out:
            out.write(answer.read())
        if name == "bind_loopback.so":
            env["LD_PRELOAD"] = path
        elif name.endswith(".whl"):  # a pure-Python wheel installs by unpacking it
            zipfile.ZipFile(path).extractall(site)
        elif name.endswith((".tar.gz", ".zip")) or name == "requirements.txt":
            args = ["-r", path, "--find-links", work] if name == "requirements.txt" else [path]
            subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                            "--target", site, *args], check=True)
        print("installed", name, flush=True)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (site, env.get("PYTHONPATH")) if p)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    port = os.environ["LOOPBACK_WORKER_POOL_PORT"]
    os.execve(sys.executable, [sys.executable, "-m",
              "apache_beam.runners.worker.worker_pool_main", "--service_port", port], env)
    """
)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


class DataflowError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Dataflow:
    """The Dataflow part of ``LoopbackGoogleCloud`` (a mixin: it shares the runner, ids)."""

    runner: Any
    url: str
    _ids: Any

    def _dataflow_init(self) -> None:
        self.dataflow_jobs: dict[str, dict[str, Any]] = {}  # job id -> job
        self.dataflow_messages: dict[str, list[dict[str, Any]]] = {}  # job id -> messages
        #: what every worker's environment holds (how it reaches GCS: the emulator's address)
        self.dataflow_worker_env: dict[str, str] = {}
        #: a job whose workers never take work fails after this, as on Dataflow
        self.no_worker_activity_seconds = 3600.0
        self._dataflow_faults: list[str] = []
        self._dataflow_files: dict[str, dict[str, Path]] = {}  # job id -> staged name -> file
        self._dataflow_running: dict[str, list[Any]] = {}  # job id -> its processes

    # -- for tests --------------------------------------------------------------------------

    def inject_dataflow_fault(self, kind: str) -> None:
        """The next job's workers fail to start: ``"ZONE_RESOURCE_POOL_EXHAUSTED"`` (a
        stockout) or ``"QUOTA_EXCEEDED"``; the job stays RUNNING, as on Dataflow."""
        if kind not in ("ZONE_RESOURCE_POOL_EXHAUSTED", "QUOTA_EXCEEDED"):
            raise ValueError(f"unknown Dataflow fault {kind!r}")
        self.call(lambda: self._dataflow_faults.append(kind))  # type: ignore[attr-defined]

    def dataflow_job(self, name: str) -> dict[str, Any]:
        """The last job of that name."""
        jobs = [j for j in self.dataflow_jobs.values() if j["name"] == name]
        if not jobs:
            raise KeyError(f"no Dataflow job named {name}")
        return jobs[-1]

    # -- the API ----------------------------------------------------------------------------

    async def _dataflow(
        self,
        method: str,
        body: Any,
        query: Any,
        project: str,
        location: str,
        job_id: str | None,
        messages: str | None,
    ) -> Any:
        if method == "POST" and job_id is None:
            return await self._dataflow_submit(project, location, body or {})
        if method == "GET" and job_id is None:
            return {"jobs": [j for j in self.dataflow_jobs.values() if j["projectId"] == project]}
        job = self.dataflow_jobs.get(job_id or "")
        if job is None or job["projectId"] != project or job["location"] != location:
            raise DataflowError(404, f"(job {job_id}) not found in {project}/{location}")
        if messages:
            return self._messages(job, query)
        if method == "GET":
            return job
        if method == "PUT":
            # the client sends enums as numbers (enum-encoding=int): JOB_STATE_CANCELLED is 5
            cancel = (body or {}).get("requestedState") in ("JOB_STATE_CANCELLED", 5)
            if cancel and job["currentState"] not in _ENDED:
                job["currentState"] = "JOB_STATE_CANCELLING"
                self._stop_job(job, "JOB_STATE_CANCELLED")
            return job
        raise DataflowError(400, f"{method} is not supported here")

    def _messages(self, job: dict[str, Any], query: Any) -> dict[str, Any]:
        found = self.dataflow_messages.get(job["id"], [])
        if start := query.get("startTime"):
            found = [m for m in found if m["time"] >= start]
        if end := query.get("endTime"):
            found = [m for m in found if m["time"] < end]
        minimum = query.get("minimumImportance")
        if minimum:
            level = _level(minimum)
            found = [m for m in found if _IMPORTANCE.index(m["messageImportance"]) >= level]
        first = int(query.get("pageToken") or 0)
        size = int(query.get("pageSize") or MESSAGE_PAGE)
        page: dict[str, Any] = {"jobMessages": found[first : first + size]}
        if first + size < len(found):
            page["nextPageToken"] = str(first + size)
        return page

    def _message(self, job: dict[str, Any], importance: str, text: str) -> None:
        self.dataflow_messages.setdefault(job["id"], []).append(
            {
                "id": str(next(self._ids)),
                "time": _now(),
                "messageImportance": importance,
                "messageText": text,
            }
        )

    async def _dataflow_submit(
        self, project: str, location: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        name = body.get("name", "")
        if not _NAME.match(name) or len(name) > 63:
            raise DataflowError(
                400,
                f"(job name {name!r}) The job name must consist of only the characters "
                "[-a-z0-9], starting with a letter and ending with a letter or number, and be "
                "at most 63 characters.",
            )
        environment = body.get("environment", {})
        options = environment.get("sdkPipelineOptions", {}).get("options", {})
        for key in ("staging_location", "temp_location"):
            if not str(options.get(key, "")).startswith("gs://"):
                raise DataflowError(
                    400,
                    f"Invalid {key} {options.get(key)!r}: Dataflow needs a Cloud Storage "
                    "path (gs://bucket/...).",
                )
        for other in self.dataflow_jobs.values():
            if (other["name"], other["projectId"], other["location"]) == (
                name,
                project,
                location,
            ) and other["currentState"] not in _ENDED:
                raise DataflowError(
                    409,
                    f"(job {name}) There is already an active job named {name} with id: "
                    f"{other['id']}. If you want to submit a second job, try again by setting "
                    "a different name.",
                )
        pools = environment.get("workerPools") or [{}]
        images = pools[0].get("sdkHarnessContainerImages") or [{}]
        job_id = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d_%H_%M_%S-") + str(
            next(self._ids)
        )
        job = {
            **body,
            "id": job_id,
            "projectId": project,
            "location": location,
            "currentState": "JOB_STATE_PENDING",
            "createTime": _now(),
        }
        self.dataflow_jobs[job_id] = job
        packages = {p["name"]: p["location"] for p in pools[0].get("packages", [])}
        image = images[0].get("containerImage", "")
        fault = self._dataflow_faults.pop(0) if self._dataflow_faults else None
        asyncio.get_running_loop().create_task(
            self._run_dataflow_job(
                job,
                image,
                packages,
                environment.get("protoPipelineStagedUrl")
                or f"{options['staging_location'].rstrip('/')}/pipeline.pb",
                fault,
            )
        )
        return job

    # -- running a job ----------------------------------------------------------------------

    async def _run_dataflow_job(
        self,
        job: dict[str, Any],
        image: str,
        packages: dict[str, str],
        pipeline_url: str,
        fault: str | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        region = job["location"]
        workers = int(job["environment"]["workerPools"][0].get("numWorkers") or 1)
        self._message(job, "JOB_MESSAGE_BASIC", f"Starting {workers} workers in {region}-b...")
        job["currentState"] = "JOB_STATE_RUNNING"
        job["startTime"] = _now()
        deadline = loop.time() + self.no_worker_activity_seconds
        if fault is not None:
            text = {
                "ZONE_RESOURCE_POOL_EXHAUSTED": f"The zone '{region}-b' does not have enough "
                "resources available to fulfill the request. Try a different zone, or try "
                "again later.",
                "QUOTA_EXCEEDED": "Quota 'CPUS' exceeded. Limit: 24.0 in region " + region + ".",
            }[fault]
            self._message(
                job,
                "JOB_MESSAGE_ERROR",
                f"Startup of the worker pool in zone {region}-b failed to bring up any of the "
                f"desired {workers} workers. {fault}: Instance '{job['name']}-harness' "
                f"creation failed: {text}",
            )
            await self._idle_until(job, deadline)
            return
        self._message(job, "JOB_MESSAGE_DETAILED", "Workers have started successfully.")
        try:
            files = await loop.run_in_executor(
                None, self._fetch_staged, job, packages, pipeline_url
            )
        except Exception as error:
            self._end(job, "JOB_STATE_FAILED", f"Workflow failed. Causes: staging: {error}")
            return
        if job["currentState"] in _ENDED:
            return  # cancelled while starting: it stays CANCELLED, as Dataflow's does
        port = free_port()
        workload = Workload(
            image=image,
            command=["python", "-c", BOOTSTRAP],
            env={
                **self.dataflow_worker_env,
                "LOOPBACK_DATAFLOW_FILES": f"{self.url}/loopback/dataflow/{job['id']}/files",
                "LOOPBACK_WORKER_POOL_PORT": str(port),
            },
        )
        try:
            pool: Running = await loop.run_in_executor(None, self.runner.start, workload)
        except ImageNotFound:  # the VMs are up, the SDK harness never: no worker activity
            await self._idle_until(job, deadline)
            return
        if job["currentState"] in _ENDED:  # cancelled while the pool started
            pool.kill()
            return
        self._dataflow_running[job["id"]] = [pool]
        pool_ended = loop.run_in_executor(None, pool.wait)
        while not await loop.run_in_executor(None, _accepts, port):
            if job["currentState"] in _ENDED:
                return  # cancelled meanwhile; the cancellation killed the pool
            if pool_ended.done():
                tail = "\n".join(pool.output().strip().splitlines()[-8:])
                self._end(
                    job,
                    "JOB_STATE_FAILED",
                    f"Workflow failed. Causes: the SDK harness failed to start:\n{tail}",
                )
                return
            await asyncio.sleep(0.2)
        self._message(job, "JOB_MESSAGE_DETAILED", WORKERS_READY)
        driver = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "zenml_loopback.dataflow_worker",
            str(files["pipeline.pb"]),
            f"localhost:{port}",
            env=_driver_env(self.dataflow_worker_env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        running = self._dataflow_running.get(job["id"])
        if running is None:  # cancelled while the driver started: the pool is killed
            driver.kill()
            await driver.wait()
            return
        running.append(driver)
        output, _ = await driver.communicate()
        pool.kill()
        await pool_ended
        if job["currentState"] in _ENDED:
            return  # cancelled meanwhile
        if driver.returncode == 0:
            self._message(job, "JOB_MESSAGE_DETAILED", "Worker pool stopped.")
            job["currentState"], job["currentStateTime"] = "JOB_STATE_DONE", _now()
            return
        self._end(job, "JOB_STATE_FAILED", "Workflow failed. Causes: " + _cause(output.decode()))

    async def _idle_until(self, job: dict[str, Any], deadline: float) -> None:
        """RUNNING with no worker activity (and billing), until cancelled or the hour is up."""
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            if job["currentState"] in _ENDED:
                return
            await asyncio.sleep(0.2)
        hours = self.no_worker_activity_seconds / 3600
        self._end(
            job,
            "JOB_STATE_FAILED",
            "Workflow failed. Causes: The Dataflow job appears to be stuck because no worker "
            f"activity has been seen in the last {hours:g}h. Please check the worker logs in "
            "Stackdriver Logging.",
        )

    def _end(self, job: dict[str, Any], state: str, error: str) -> None:
        self._message(job, "JOB_MESSAGE_ERROR", error)
        job["currentState"], job["currentStateTime"] = state, _now()
        self._stop_job(job, None)

    def _stop_job(self, job: dict[str, Any], state: str | None) -> None:
        for process in self._dataflow_running.pop(job["id"], []):
            with contextlib.suppress(ProcessLookupError):  # already ended
                process.kill()
        if state is not None:
            job["currentState"], job["currentStateTime"] = state, _now()

    def _fetch_staged(
        self, job: dict[str, Any], packages: dict[str, str], pipeline_url: str
    ) -> dict[str, Path]:
        """The staged pipeline and packages, read from the staging location as workers do."""
        from apache_beam.io.filesystems import FileSystems

        folder = Path(tempfile.mkdtemp(prefix=f"loopback-dataflow-{job['id']}-"))
        files: dict[str, Path] = {}
        for name, location in {"pipeline.pb": pipeline_url, **packages}.items():
            # packages name their objects as storage.googleapis.com/BUCKET/PATH
            location = re.sub(r"^(https?://)?storage\.googleapis\.com/", "gs://", location)
            if not location.startswith("gs://"):
                raise ValueError(f"{name} is staged at {location}, not on Cloud Storage")
            target = folder / name
            with FileSystems.open(location) as staged:
                target.write_bytes(staged.read())
            files[name] = target
        files["bind_loopback.so"] = Path(preload_library())  # the worker pool binds [::]
        self._dataflow_files[job["id"]] = files
        return files

    def _staged_file(self, job_id: str, name: str | None) -> tuple[bytes, str]:
        files = self._dataflow_files.get(job_id)
        if files is None:
            raise DataflowError(404, f"no staged files for job {job_id}")
        # the worker's order: our preload first, the packages as staged, never the pipeline
        names = [
            "bind_loopback.so",
            *(n for n in files if n not in ("pipeline.pb", "bind_loopback.so")),
        ]
        if name is None:
            return json.dumps(names).encode(), "application/json"
        if name not in names:
            raise DataflowError(404, f"{name} is not staged for job {job_id}")
        return files[name].read_bytes(), "application/octet-stream"


def _level(importance: Any) -> int:
    if isinstance(importance, str) and importance.isdigit():  # the client's enum numbers
        names = {1: "JOB_MESSAGE_DEBUG", 2: "JOB_MESSAGE_DETAILED", 5: "JOB_MESSAGE_BASIC",
                 3: "JOB_MESSAGE_WARNING", 4: "JOB_MESSAGE_ERROR"}  # fmt: skip
        importance = names.get(int(importance), importance)
    if importance in _IMPORTANCE:
        return _IMPORTANCE.index(importance)
    raise DataflowError(400, f"Invalid minimumImportance {importance!r}")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _driver_env(worker_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env.update(worker_env)
    # Beam's FnApiRunner serves its workers on every interface: keep it on loopback
    env["LD_PRELOAD"] = preload_library()
    return env


def _cause(output: str) -> str:
    """The error a failed pipeline's runner printed: its last exception line and message."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    marked = [i for i, line in enumerate(lines) if line.startswith("loopback-dataflow: error")]
    text = "\n".join(lines[marked[-1] :] if marked else lines[-10:])
    return text if len(text) <= 4000 else "...\n" + text[-4000:]  # the exception is last
