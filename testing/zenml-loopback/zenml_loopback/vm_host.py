"""What a loopback VM's startup script finds on its PATH: ``docker``, ``cos-extensions`` and
``mount``, as on Container-Optimized OS.

``docker run`` asks the loopback cloud (``$ZENML_LOOPBACK_CLOUD``) to start the container for
this VM (``$ZENML_LOOPBACK_VM``) with the cloud's workload runner, and, unless ``-d``, prints
its output and exits with its code, as the real CLI does. Flags outside the supported set fail
as the real CLI fails on an unknown flag, so a script relying on one is caught here.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from typing import Any

#: flags of ``docker run`` that take a value, and those that do not
_VALUED = {"--name", "--network", "--net", "-e", "--env", "--entrypoint", "-v", "--volume",
           "--device", "--log-driver", "--log-opt", "--pull", "--gpus", "-w", "--workdir",
           "--restart", "--stop-timeout", "--shm-size"}  # fmt: skip
_FLAGS = {"--rm", "-d", "--detach", "-i", "-t", "--privileged", "--init"}


def _call(verb: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{os.environ['ZENML_LOOPBACK_CLOUD']}/loopback/vm/{verb}",
        data=json.dumps({**body, "vm": os.environ["ZENML_LOOPBACK_VM"]}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return dict(json.load(answer))


def _parse_run(argv: list[str]) -> dict[str, Any] | str:
    """``docker run`` arguments as the cloud's request, or the CLI's error text."""
    spec: dict[str, Any] = {"env": {}, "devices": [], "volumes": [], "detach": False}
    entrypoint: str | None = None
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        flag, _, inline = argv[index].partition("=")
        index += 1
        if flag in _FLAGS:
            spec["detach"] = spec["detach"] or flag in ("-d", "--detach")
            continue
        if flag not in _VALUED:
            return f"unknown flag: {flag}\nSee 'docker run --help'."
        if not inline:
            if index >= len(argv):
                return f"flag needs an argument: {flag}"
            inline = argv[index]
            index += 1
        if flag in ("-e", "--env"):
            key, sep, value = inline.partition("=")
            spec["env"][key] = value if sep else os.environ.get(key, "")
        elif flag == "--name":
            spec["name"] = inline
        elif flag == "--entrypoint":
            entrypoint = inline
        elif flag in ("-v", "--volume"):
            spec["volumes"].append(inline)
        elif flag == "--device":
            spec["devices"].append(inline.split(":", 1)[0])
        elif flag == "--gpus":
            spec["gpus"] = inline
        elif flag in ("--network", "--net") and inline != "host":
            return f"loopback VMs have host networking only, not --network={inline}"
        elif flag == "--log-driver" and inline not in ("json-file", "local", "gcplogs", "none"):
            return f"Error response from daemon: logger: no log driver named '{inline}'"

    if index >= len(argv):
        return '"docker run" requires at least 1 argument.'
    spec["image"] = argv[index]
    command = argv[index + 1 :]
    spec["command"] = [entrypoint, *command] if entrypoint else command
    return spec


def docker(argv: list[str]) -> int:
    if not argv:
        print("Usage:  docker [OPTIONS] COMMAND", file=sys.stderr)
        return 1
    verb, rest = argv[0], argv[1:]
    if verb == "run":
        spec = _parse_run(rest)
        if isinstance(spec, str):
            print(f"docker: {spec}", file=sys.stderr)
            return 125
        answer = _call("run", spec)
        if answer.get("code"):
            sys.stderr.write(answer.get("output", ""))
            return int(answer["code"])
        if spec["detach"]:
            print(answer["id"])
            return 0
        offset = 0
        while True:
            polled = _call("poll", {"id": answer["id"], "offset": offset})
            sys.stdout.write(polled.get("output", ""))
            sys.stdout.flush()
            offset = int(polled.get("offset", offset))
            if polled.get("exit_code") is not None:
                return int(polled["exit_code"])
            time.sleep(0.1)
    if verb in ("stop", "kill", "rm") and rest:
        code = 0
        for name in (a for a in rest if not a.startswith("-")):
            answer = _call("stop", {"name": name})
            (sys.stderr if answer.get("code") else sys.stdout).write(answer.get("output", ""))
            code = code or int(answer.get("code", 0))
        return code
    print(f"docker: '{verb}' is not a docker command the loopback VM host offers.", file=sys.stderr)
    return 1


def cos_extensions(argv: list[str]) -> int:
    if argv[:2] != ["install", "gpu"]:
        print("usage: cos-extensions install gpu", file=sys.stderr)
        return 2
    answer = _call("cos-extensions", {})
    sys.stdout.write(answer.get("output", ""))
    return int(answer.get("code", 0))


def mount(argv: list[str]) -> int:
    """Bind and remount calls of the GPU recipe: accepted (the VM host is this machine)."""
    if not argv:
        return 0
    if argv[0] in ("--bind", "-o") and len(argv) >= 3:
        return 0
    print(f"mount: unsupported on the loopback VM host: {' '.join(argv)}", file=sys.stderr)
    return 32
