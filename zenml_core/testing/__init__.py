"""Test support for zenml-core and for plugin authors.

- ``zenml_core.testing.conformance``: suites every backend subclasses (one contract for all).
- ``zenml_core.testing.fixtures``: pytest fixtures; enable with
  ``pytest_plugins = ["zenml_core.testing.fixtures"]`` in a conftest.py.
- ``zenml_core.testing.plugin_factory``: writes small real plugin distributions to build.
"""

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Modules a light import must not pull in (checked by tests, the conformance suite and bench/).
HEAVY_MODULES = (
    "tensorflow",
    "keras",
    "apache_beam",
    "google.cloud",
    "kubernetes",
    "ml_metadata",
    "docker",
    "pandas",
    "pyarrow",
)


def heavy_modules_imported(statement: str, *, env: dict[str, str] | None = None) -> list[str]:
    """Run ``statement`` in a fresh interpreter and return the heavy modules it imported (not
    counting what the interpreter imports by itself: some packages' ``.pth`` files import
    namespace packages such as ``google.cloud`` at start-up)."""
    import json
    import os
    import subprocess
    import sys

    # the fresh interpreter imports from the same places as this one
    env = {**(os.environ if env is None else env), "PYTHONPATH": os.pathsep.join(sys.path)}

    def modules_after(code: str) -> set[str]:
        code = f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"{code!r} failed in a fresh interpreter:\n{result.stderr}")
        return set(json.loads(result.stdout.strip().splitlines()[-1]))

    new = modules_after(statement) - modules_after("pass")
    return sorted(m for m in new if any(m == h or m.startswith(h + ".") for h in HEAVY_MODULES))


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, what: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy, and return that; fail after
    ``timeout`` seconds (naming ``what``, or the predicate's last value)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or value!r}")
        time.sleep(0.05)
