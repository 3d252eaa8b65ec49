"""Test support for zenml-core and for plugin authors.

- ``zenml_core.testing.conformance``: suites every backend subclasses (one contract for all).
- ``zenml_core.testing.fixtures``: pytest fixtures; enable with
  ``pytest_plugins = ["zenml_core.testing.fixtures"]`` in a conftest.py.
- ``zenml_core.testing.plugin_factory``: writes small real plugin distributions to build.
- ``zenml_core.testing.probes``: backends the suites give single steps.

Install with ``pip install 'zenml-core[testing]'``. The emulated clouds remote backends are
tested on are a distribution of their own, zenml-loopback.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from zenml_core.plugins import HEAVY_MODULES as HEAVY_MODULES  # the documented list
from zenml_core.plugins import heavy_among

T = TypeVar("T")


def terminal_sigint() -> None:
    """``preexec_fn`` for a child process a test sends Ctrl-C (SIGINT). A background job
    (CI's nohup, ``cmd &``) inherits SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler: this gives the child what a terminal user's process has."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _in_fresh_interpreter(code: str, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a new interpreter that imports from where this one does; the JSON it
    prints last."""
    import json
    import os
    import subprocess
    import sys

    env = {**(os.environ if env is None else env), "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"{code!r} failed in a fresh interpreter:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def heavy_modules_imported(statement: str, *, env: dict[str, str] | None = None) -> list[str]:
    """Run ``statement`` in a fresh interpreter and return the heavy modules it imported (not
    counting what the interpreter imports by itself: some packages' ``.pth`` files import
    namespace packages such as ``google.cloud`` at start-up)."""

    def modules_after(code: str) -> set[str]:
        listing = "import json, sys; print(json.dumps(sorted(sys.modules)))"
        return set(_in_fresh_interpreter(f"{code}\n{listing}", env))

    new = modules_after(statement) - modules_after("pass")
    return sorted(m for m in new if heavy_among([m]))


def import_cost(module: str) -> tuple[float, list[str]]:
    """Import ``module`` in a fresh interpreter, after what every plugin imports anyway (the
    core's plugin machinery and backend bases): (seconds it took, heavy modules it pulled in)."""
    seconds, new = _in_fresh_interpreter(
        "import importlib, json, sys, time\n"
        "import zenml_core.plugins, zenml_core.backends, zenml_core.hookspecs\n"
        "before = set(sys.modules)\n"
        "started = time.perf_counter()\n"
        f"importlib.import_module({module!r})\n"
        "seconds = time.perf_counter() - started\n"
        "print(json.dumps([seconds, sorted(set(sys.modules) - before)]))"
    )
    return float(seconds), heavy_among(new)


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
