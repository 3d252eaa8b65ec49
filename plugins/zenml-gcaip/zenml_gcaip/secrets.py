"""Secrets of a Vertex AI job, read inside the job from Secret Manager.

A custom job's spec (its container's environment included) is readable by anyone who may view
the job, so values never go there: the submitting process stores each secret as a Secret
Manager version, and the job's command starts with::

    python -m zenml_gcaip.secrets --secret ZENML_MYSQL_PASSWORD=projects/P/secrets/S/versions/1 \
        -- python -m zenml_core step ...

which reads the versions with the job's service account (it needs
``roles/secretmanager.secretAccessor``), puts them in the environment and runs the command in
its place. ``ZENML_SECRET_MANAGER_ENDPOINT`` points it at another endpoint (an emulator).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

ENDPOINT_ENV = "ZENML_SECRET_MANAGER_ENDPOINT"


def client(endpoint: str | None) -> Any:
    """A Secret Manager client (REST): Google's endpoint with application-default
    credentials, or ``endpoint`` (``http://`` ones are emulators: anonymous)."""
    from zenml_gcaip.google import credentials_for, quiet_google_imports

    with quiet_google_imports():
        from google.api_core.client_options import ClientOptions
        from google.cloud import secretmanager_v1

    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    return secretmanager_v1.SecretManagerServiceClient(
        credentials=credentials_for(endpoint), transport="rest", client_options=options
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zenml_gcaip.secrets")
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
