"""What runs on the VM: its startup script, and the VM deleting itself when the run ended.

The script is bash, as Container-Optimized OS runs it (as root, at every boot). It reads the
instance's name, zone and project from the metadata server, installs the GPU driver with
``cos-extensions`` when the VM has GPUs (passing the devices and driver folders to the
container: ``--gpus`` does not work on COS), starts the Cloud SQL Auth Proxy v2 beside the run
when asked, runs the run's container in the foreground, says how it exited, and deletes the VM
with the same image (``python -m zenml_gcp.vm delete ...``). Secrets are read inside the
container from Secret Manager (:mod:`zenml_gcp.secrets`): the script names them, never holds
them.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zenml_core.backends.remote import Workload
    from zenml_gcp.orchestrator import OrchestratorGCPBackend

_CLOUD_SQL_CONTAINER = "zenml-cloudsql-proxy"


def startup_script(backend: OrchestratorGCPBackend, workload: Workload) -> str:
    from zenml_gcp import secrets
    from zenml_gcp.google import carried_gpus

    q = shlex.quote
    command = list(workload.command)
    env = dict(workload.env)
    if workload.secret_env:
        command = [*secrets.wrapper(workload.secret_env), "--", *command]
        if backend.secret_manager_endpoint:
            env[secrets.ENDPOINT_ENV] = backend.secret_manager_endpoint
    docker = ["docker", "run", "--rm", "--network", "host", "--name", "zenml-run"]
    if backend.cloud_logging:  # the output outlives the VM; docker run still prints it
        docker += ["--log-driver=gcplogs"]
    docker += [q(f"--env={key}={value}") for key, value in sorted(env.items())]
    lines = [
        "#!/bin/bash",
        f"# Written by zenml-gcp for run {workload.run_id}: runs the run's image, then deletes",
        "# this VM. It runs again if the VM is started again.",
        "set -u",
        'MD="http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1"',
        'md() { curl -sf -H "Metadata-Flavor: Google" "$MD/$1"; }',
        'NAME="$(md instance/name)"',
        'ZONE="$(md instance/zone)"; ZONE="${ZONE##*/}"',
        'PROJECT="$(md project/project-id)"',
        f"IMAGE={q(workload.image)}",
        'echo "zenml-vm: running run ' + workload.run_id + ' in $IMAGE on $NAME ($ZONE)"',
    ]
    delete = ["docker", "run", "--rm", "--network", "host", '"$IMAGE"', "python", "-m",
              "zenml_gcp.vm", "delete", "--project", '"$PROJECT"', "--zone", '"$ZONE"',
              "--name", '"$NAME"']  # fmt: skip
    if backend.api_endpoint:
        delete += ["--endpoint", q(backend.api_endpoint)]
    # a waiting client reads the last lines, then deletes the VM itself: give it the time
    delay = backend.self_delete_delay_seconds if backend.wait else 0
    lines += [
        "delete_vm() {",
        f"  sleep {delay}",
        '  echo "zenml-vm: deleting $NAME"',
        "  " + " ".join(delete),
        "}",
    ]
    if backend.has_gpus:
        count = backend.gpu_count or carried_gpus(backend.machine_type)
        lines += [
            "if ! cos-extensions install gpu; then",
            '  echo "zenml-vm: the run\'s container exited with code 70"  # no driver, no run',
            "  delete_vm; exit 1",
            "fi",
            "mount --bind /var/lib/nvidia /var/lib/nvidia",
            "mount -o remount,exec /var/lib/nvidia",
        ]
        docker += ["--volume", "/var/lib/nvidia/lib64:/usr/local/nvidia/lib64",
                   "--volume", "/var/lib/nvidia/bin:/usr/local/nvidia/bin",
                   "--device", "/dev/nvidia-uvm", "--device", "/dev/nvidiactl"]  # fmt: skip
        docker += [f"--device=/dev/nvidia{index}" for index in range(count)]
    if backend.cloudsql_connection_name:
        proxy = ["docker", "run", "-d", "--name", _CLOUD_SQL_CONTAINER, "--network", "host",
                 q(backend.cloudsql_proxy_image), "--address", "127.0.0.1", "--port", "3306",
                 q(backend.cloudsql_connection_name)]  # fmt: skip
        lines += [
            " ".join(proxy) + " || {",
            '  echo "zenml-vm: the Cloud SQL Auth Proxy did not start"',
            '  echo "zenml-vm: the run\'s container exited with code 69"; delete_vm; exit 1',
            "}",
        ]
    lines += [
        " ".join([*docker, '"$IMAGE"', *(q(part) for part in command)]),
        "code=$?",
        'echo "zenml-vm: the run\'s container exited with code $code"',
    ]
    if backend.cloudsql_connection_name:
        lines.append(f"docker stop {_CLOUD_SQL_CONTAINER} >/dev/null")
    lines += ["delete_vm", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zenml_gcp.vm")
    commands = parser.add_subparsers(dest="command", required=True)
    delete = commands.add_parser("delete", help="delete this VM (its run has ended)")
    delete.add_argument("--project", required=True)
    delete.add_argument("--zone", required=True)
    delete.add_argument("--name", required=True)
    delete.add_argument("--endpoint", default=None)
    args = parser.parse_args(argv)
    from zenml_gcp.orchestrator import compute_clients

    instances, _ = compute_clients(args.endpoint)
    try:
        instances.delete(project=args.project, zone=args.zone, instance=args.name)
    except Exception as error:  # the client, or max_run_duration, deletes it then
        print(f"zenml-vm: could not delete {args.name}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
