"""Headless Chromium for tests that look at pages as a person would (Debian's chromium,
installed by ``testing/debian.py chromium``). Every flag that reaches the network is off."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def executable() -> str:
    from zenml_core.testing.processes import program

    return program("chromium", "chromium", "chromium")


def _run(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="zenml-chromium-") as profile:
        return subprocess.run(
            [executable(), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


def dom(page: Path) -> str:
    """The page's DOM after Chromium loaded and rendered it."""
    return _run(page, "--dump-dom").stdout


def screenshot(page: Path, target: Path, size: str = "1100,1400") -> Path:
    _run(page, f"--window-size={size}", f"--screenshot={target}")
    return target


def console_messages(page: Path) -> list[str]:
    """What the page wrote to the browser console while it loaded (errors included)."""
    done = _run(page, "--enable-logging=stderr", "--v=0", "--dump-dom")
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
