"""Backends that run their work in a child process through the public entrypoint, exactly as a
remote backend's container would: the spec and the code travel through the artifact store,
secrets through the environment. Loaded as a plugin with ZENML_PLUGIN_MODULES."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from zenml_core import hookimpl
from zenml_core.backends import BaseOrchestrator, BaseTrainingBackend, LocalProcessingBackend
from zenml_core.component import secret_field
from zenml_core.exceptions import ConfigError

SUPPORT = os.path.dirname(__file__)


def run_child(command: list[str], workdir: str, request) -> str:
    """Run ``python -m zenml_core ...`` as a container would: elsewhere, with only this support
    folder importable (the user's steps must come from the code package), the request's plain
    and secret environment set. Returns its output; raises with it if the process failed."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ZENML_MYSQL_PASSWORD")}
    plain = request.plain_environment()
    modules = ",".join(filter(None, ["subprocess_backends", plain.pop("ZENML_PLUGIN_MODULES", "")]))
    env.update(plain, **request.secret_environment())
    env.update(PYTHONPATH=SUPPORT, ZENML_PLUGIN_MODULES=modules)
    completed = subprocess.run(
        [sys.executable, *command[1:]], cwd=workdir, env=env, capture_output=True, text=True
    )
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        raise RuntimeError(f"the child process failed:\n{output[-3000:]}")
    return output


def _check_workdir(backend) -> None:
    if not os.path.isabs(backend.workdir):
        raise ConfigError(
            f"{type(backend).__name__}: workdir {backend.workdir!r} must be an absolute path"
        )


@dataclass
class SubprocessOrchestrator(BaseOrchestrator):
    workdir: str = "/"

    def validate(self):
        _check_workdir(self)

    def run(self, request):
        command = request.command(request.publish_spec())
        try:
            self.last_output = run_child(command, self.workdir, request)
        except RuntimeError as error:
            if "Traceback" in str(error):  # it crashed before recording anything useful
                raise
        return request.result()


@dataclass
class SubprocessTrainingBackend(BaseTrainingBackend):
    workdir: str = "/"

    def validate(self):
        _check_workdir(self)

    def run_step(self, request):
        command = request.command(request.publish_spec())
        run_child(command, self.workdir, request)


@dataclass
class TokenProcessingBackend(LocalProcessingBackend):
    """A local Beam runner with an access token, as a cloud processing backend would have:
    the token is a secret field, found again from ``token_env`` where the step runs."""

    token: str | None = secret_field()
    token_env: str = "ACME_PROCESSING_TOKEN"

    def secret_environment(self):
        return {self.token_env: self.resolved_token()}

    def resolved_token(self) -> str:
        return self.token if self.token is not None else os.environ.get(self.token_env, "")


@hookimpl
def register_processing_backends(register):
    register("token-local", TokenProcessingBackend)


@hookimpl
def register_orchestrators(register):
    register("subprocess", SubprocessOrchestrator)


@hookimpl
def register_training_backends(register):
    register("subprocess", SubprocessTrainingBackend)
