"""Secrets of remote work (a VM's run, a Vertex AI job), kept in Secret Manager and read there.

A VM's metadata and a custom job's spec are readable by anyone who may view them (and, for
metadata, by any process on the VM), so values never go there: the submitting process stores
each secret as a Secret Manager version (:func:`store`), and the work's command starts with::

    python -m zenml_gcp.secrets --secret ZENML_MYSQL_PASSWORD=projects/P/secrets/S/versions/1 \
        -- python -m zenml_core step ...

which reads the versions with the job's service account (it needs
``roles/secretmanager.secretAccessor``), puts them in the environment and runs the command in
its place. ``ZENML_SECRET_MANAGER_ENDPOINT`` points it at another endpoint (an emulator).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zenml_core.backends.remote import SecretRef

ENDPOINT_ENV = "ZENML_SECRET_MANAGER_ENDPOINT"


def client(endpoint: str | None) -> Any:
    """A Secret Manager client (REST): Google's endpoint with application-default
    credentials, or ``endpoint`` (``http://`` ones are emulators: anonymous)."""
    from zenml_gcp.google import credentials_for, quiet_google_imports

    with quiet_google_imports():
        from google.api_core.client_options import ClientOptions
        from google.cloud import secretmanager_v1

    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    return secretmanager_v1.SecretManagerServiceClient(
        credentials=credentials_for(endpoint), transport="rest", client_options=options
    )


def store(
    project: str, endpoint: str | None, owner: str, values: dict[str, str]
) -> dict[str, SecretRef]:
    """Keep each value as a new secret's version (labelled with the run); their references.
    Nothing is left behind if one cannot be kept."""
    from zenml_core.backends.remote import FailureKind, InfrastructureFailure, SecretRef
    from zenml_gcp.google import RUN_LABEL, label_value

    secrets = client(endpoint)
    run_id = owner.partition("/")[0]
    digest = hashlib.sha256(f"{owner}/{time.time_ns()}".encode()).hexdigest()[:12]
    refs: dict[str, SecretRef] = {}
    try:
        for key, value in sorted(values.items()):
            secret_id = f"zenml-{digest}-{key.lower().replace('_', '-')}"[:255]
            secret = secrets.create_secret(
                parent=f"projects/{project}",
                secret_id=secret_id,
                secret={
                    "replication": {"automatic": {}},
                    "labels": {RUN_LABEL: label_value(run_id)},
                },
            )
            refs[key] = SecretRef(secret.name, key)
            version = secrets.add_secret_version(
                parent=secret.name, payload={"data": value.encode()}
            )
            refs[key] = SecretRef(version.name, key)
    except Exception as error:
        delete(endpoint, refs)
        raise InfrastructureFailure(
            FailureKind.PERMISSION,
            f"Could not keep the run's secrets in Secret Manager ({type(error).__name__}: "
            f"{error}): the caller needs roles/secretmanager.admin on {project}, and the "
            "Secret Manager API enabled.",
        ) from None
    return refs


def delete(endpoint: str | None, refs: dict[str, SecretRef]) -> None:
    if not refs:
        return
    secrets = client(endpoint)
    for name in sorted({ref.name.split("/versions/")[0] for ref in refs.values()}):
        with contextlib.suppress(Exception):  # already gone
            secrets.delete_secret(name=name)


def wrapper(secret_env: dict[str, SecretRef]) -> list[str]:
    """The command prefix that reads ``secret_env`` inside the work, before ``--``."""
    command = ["python", "-m", "zenml_gcp.secrets"]
    for key, ref in sorted(secret_env.items()):
        command += ["--secret", f"{key}={ref.name}"]
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zenml_gcp.secrets")
    parser.add_argument("--secret", action="append", default=[], metavar="VAR=VERSION")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    wanted = {}
    for item in args.secret:
        name, sep, version = item.partition("=")
        if not sep or not name or "/versions/" not in version:
            parser.error(f"--secret {item!r}: write VAR=projects/P/secrets/S/versions/N")
        wanted[name] = version
    if wanted:
        secrets = client(os.environ.get(ENDPOINT_ENV) or None)
        for name, version in wanted.items():
            try:
                payload = secrets.access_secret_version(name=version).payload.data
            except Exception as error:  # the job fails here, naming what it could not read
                print(
                    f"zenml: cannot read secret {version} for {name}: {type(error).__name__}: "
                    f"{error}. The job's service account needs roles/secretmanager."
                    "secretAccessor on it.",
                    file=sys.stderr,
                )
                return 78  # EX_CONFIG
            os.environ[name] = payload.decode()
    if command[0] in ("python", "python3"):  # the interpreter this wrapper runs in
        command = [sys.executable, *command[1:]]
    sys.stdout.flush()
    os.execvp(command[0], command)  # the job's process becomes the command


if __name__ == "__main__":
    sys.exit(main())
