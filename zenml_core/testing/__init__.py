"""Test support for zenml-core and for plugin authors.

- ``zenml_core.testing.conformance``: suites every backend subclasses (one contract for all).
- ``zenml_core.testing.fixtures``: pytest fixtures; enable with
  ``pytest_plugins = ["zenml_core.testing.fixtures"]`` in a conftest.py.
- ``zenml_core.testing.plugin_factory``: writes small real plugin distributions to build.
"""

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
    """Run ``statement`` in a fresh interpreter and return the heavy modules it imported."""
    import json
    import os
    import subprocess
    import sys

    code = f"{statement}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"
    # the fresh interpreter imports from the same places as this one
    env = {**(os.environ if env is None else env), "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"{statement!r} failed in a fresh interpreter:\n{result.stderr}")
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY_MODULES))
