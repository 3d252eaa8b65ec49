"""Backends that run their work in a child process through the public entrypoint, exactly as a
remote backend's container would: the spec and the code travel through the artifact store,
secrets through the environment. Loaded as a plugin with ZENML_PLUGIN_MODULES."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from zenml_core import hookimpl
from zenml_core.backends import BaseOrchestrator, BaseTrainingBackend

SUPPORT = os.path.dirname(__file__)


def child_environment(secrets: dict[str, str]) -> dict[str, str]:
    # Only this support folder is importable in the child: the user's steps must come from
    # the code package, as they would in a container.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ZENML_MYSQL_PASSWORD")}
    env.update(secrets, PYTHONPATH=SUPPORT, ZENML_PLUGIN_MODULES="subprocess_backends")
    return env


@dataclass
class SubprocessOrchestrator(BaseOrchestrator):
    workdir: str = "/"

    def run(self, request):
        location = request.publish_spec()
        command = [sys.executable, *request.command(location)[1:]]
        completed = subprocess.run(
            command,
            cwd=self.workdir,
            env=child_environment(request.secret_environment()),
            capture_output=True,
            text=True,
        )
        self.last_output = completed.stdout + completed.stderr
        if completed.returncode != 0 and "run " not in completed.stdout:
            raise RuntimeError(f"the child process failed:\n{self.last_output}")
        return request.result()


@dataclass
class SubprocessTrainingBackend(BaseTrainingBackend):
    workdir: str = "/"

    def run_step(self, request):
        command = [sys.executable, *request.command(request.publish_spec())[1:]]
        completed = subprocess.run(
            command,
            cwd=self.workdir,
            env=child_environment(request.secret_environment()),
            capture_output=True,
            text=True,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"the step's process failed:\n{completed.stderr[-3000:]}")


@hookimpl
def register_orchestrators(register):
    register("subprocess", SubprocessOrchestrator)


@hookimpl
def register_training_backends(register):
    register("subprocess", SubprocessTrainingBackend)
