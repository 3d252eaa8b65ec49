"""What every Google client of this plugin shares: credentials, and quiet imports."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any


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
