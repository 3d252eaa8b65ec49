"""What every Google client of zenml-gcp and the plugins built on it (zenml-gcaip) shares:
credentials, quiet imports, and the formats Google Cloud accepts."""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from typing import Any

from zenml_core.exceptions import ConfigError


@contextlib.contextmanager
def quiet_google_imports() -> Iterator[None]:
    """google.api_core warns at import that Python 3.11 reaches its end of life in 2027: not
    the user's concern in a run's output."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\..*")
        yield


def credentials_for(endpoint: str | None) -> Any:
    """Application-default credentials for Google's endpoints; anonymous ones for a plain
    ``http://`` endpoint, which only an emulator serves (Google's APIs are HTTPS only)."""
    if endpoint and endpoint.startswith("http://"):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    return None  # the client finds application-default credentials itself


# -- what Google Cloud accepts, checked before any request --------------------------------------

PROJECT = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
REGION = re.compile(r"^[a-z]+(-[a-z]+)*\d+$")
ZONE = re.compile(r"^[a-z]+(-[a-z]+)*\d+-[a-z]$")
SERVICE_ACCOUNT = re.compile(
    r"^[a-z][-a-z0-9]{4,28}[a-z0-9]@[-a-z0-9.]+\.iam\.gserviceaccount\.com$"
)
_LABEL_KEY = re.compile(r"^[a-z][-_a-z0-9]{0,62}$")
_LABEL_VALUE = re.compile(r"^[-_a-z0-9]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_LIKE = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY", re.I)
#: the label every resource this plugin family creates carries, with the run's id
RUN_LABEL = "zenml-run"


def label_value(text: str) -> str:
    """``text`` as a label value Google Cloud accepts."""
    return re.sub(r"[^-_a-z0-9]+", "-", text.lower())[:63].strip("-") or "x"


def check_project(what: str, project: Any) -> None:
    if not isinstance(project, str) or not PROJECT.match(project):
        raise ConfigError(
            f"{what}: project {project!r} is not a Google Cloud project id (6 to 30 "
            "lowercase letters, digits or '-', starting with a letter): set project=."
        )


def check_labels(what: str, labels: Any) -> None:
    if not isinstance(labels, dict):
        raise ConfigError(f"{what}: labels must be a mapping of label keys to values.")
    for key, value in labels.items():
        if (
            not _LABEL_KEY.match(str(key))
            or not isinstance(value, str)
            or not _LABEL_VALUE.match(value)
        ):
            raise ConfigError(
                f"{what}: label {key!r}: {value!r} is not a Google Cloud label: keys start "
                "with a lowercase letter; keys and values are at most 63 lowercase letters, "
                "digits, '-' or '_'."
            )
    if len(labels) > 60:
        raise ConfigError(f"{what}: at most 60 labels (Google Cloud allows 64, we add some).")


def check_env(what: str, env: Any, where: str) -> None:
    """Plain environment only: values written into ``where`` are readable by its viewers."""
    if not isinstance(env, dict):
        raise ConfigError(f"{what}: env must be a mapping of variable names to values.")
    for name in env:
        if not _ENV_NAME.match(str(name)):
            raise ConfigError(f"{what}: {name!r} is not a valid environment variable name.")
        if _SECRET_LIKE.search(str(name)):
            raise ConfigError(
                f"{what}: env {name!r} looks like a secret, and env values are written into "
                f"{where} in clear text: store it in Secret Manager and read it there."
            )


def check_endpoint(what: str, name: str, value: Any) -> None:
    if value is not None and not re.match(r"^(https?://)?[-a-z0-9.]+(:\d+)?/?$", str(value)):
        raise ConfigError(f"{what}: {name} {value!r} is not a host[:port] or URL.")


def check_credentials(what: str, endpoint: str | None) -> None:
    """Application-default credentials exist (not needed for an emulator's http:// endpoint)."""
    if endpoint and endpoint.startswith("http://"):
        return
    import google.auth
    from google.auth import exceptions

    try:
        google.auth.default()
    except exceptions.DefaultCredentialsError:
        raise ConfigError(
            f"{what}: no Google Cloud credentials found: run `gcloud auth application-default "
            "login` (or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file)."
        ) from None


# -- machines that carry their own GPUs (A2, A3, G2), on Compute Engine and Vertex AI alike --

#: the family's machines that carry their GPUs: how many each carries
_GPU_MACHINE = re.compile(r"^(a2|a3)-(highgpu|megagpu|ultragpu)-(\d+)g$")
_G2 = re.compile(r"^g2-standard-(\d+)$")
_G2_GPUS = {4: 1, 8: 1, 12: 1, 16: 1, 32: 1, 24: 2, 48: 4, 96: 8}


def carried_gpus(machine_type: str) -> int:
    """GPUs that come with the machine type (A2, A3, G2), else 0."""
    if match := _GPU_MACHINE.match(machine_type):
        return int(match[3])
    if match := _G2.match(machine_type):
        return _G2_GPUS.get(int(match[1]), 0)
    return 0
