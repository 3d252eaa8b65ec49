import os
import sys
from pathlib import Path

import pytest

pytest_plugins = ["zenml_core.testing.fixtures"]

# Containers on our own dockerd: only in the e2e nox session (ZENML_LOOPBACK_DOCKER=1)
collect_ignore = [] if os.environ.get("ZENML_LOOPBACK_DOCKER", "") not in ("", "0") else ["e2e"]

SUPPORT = Path(__file__).parent / "support"
sys.path.insert(0, str(SUPPORT))  # step modules the tests (and their child processes) import


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fresh project folder with .zenml/, as the working directory."""
    from zenml_core.repository import init

    monkeypatch.chdir(tmp_path)
    init(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True, scope="session")
def _code_cache(tmp_path_factory):
    """Child processes unpack code packages here, not in the user's home."""

    os.environ["ZENML_CODE_CACHE"] = str(tmp_path_factory.mktemp("code-cache"))
    os.environ["ZENML_FINGERPRINT_CACHE"] = str(tmp_path_factory.mktemp("fingerprints"))
