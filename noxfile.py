"""Test sessions: the core, each plugin in its own fresh environment, everything together,
lint and types. Run all with ``./dev test``; one with ``./dev test -s lint``."""

from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
# The first-party plugins are the folders under plugins/ with a pyproject: adding one is adding
# its folder (dev, the meta-tests, mypy and ruff read the same folders).
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
# The loopback cloud every remote backend is tested on, a distribution of its own.
LOOPBACK = "./testing/zenml-loopback"
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
PYTHON = "3.11"  # ml-metadata's wheels end at cp311

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "typecheck", "core", "plugin", "loopback", "all", "e2e"]

# What a plugin's tests need from this repository beyond the core and the plugin itself.
# (both store to gs://; the Vertex tests train the standard trainer with TensorFlow)
PLUGIN_NEEDS = {
    "zenml-gcp": [".[testing,tensorflow]"],  # the quickstart example trains with TensorFlow
    "zenml-k8s": ["./plugins/zenml-gcp"],
    "zenml-gcaip": ["./plugins/zenml-gcp", ".[testing,tensorflow]"],
    "zenml-dataflow": ["./plugins/zenml-gcp"],
}

# Any plugin problem fails the run; tests talk to loopback only.
TEST_ENV = {"ZENML_STRICT_PLUGINS": "1", "NO_GCE_CHECK": "true"}


def _install(session: nox.Session, *targets: str) -> None:
    session.install(*CONSTRAINTS, *targets)


def _debian(session: nox.Session, *groups: str) -> None:
    """Debian packages the test servers need (MariaDB, Chromium, dockerd): no wheel installs
    packages, the repository's test support does."""
    session.run("python", str(ROOT / "testing" / "debian.py"), *groups)


def _plugin_tests() -> list[str]:
    return [f"plugins/{p}/tests" for p in PLUGINS]


def _pytest(session: nox.Session, *paths: str) -> None:
    session.run("pytest", *paths, *session.posargs, env=TEST_ENV)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    _install(session, "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    plugins = [arg for p in PLUGINS for arg in ("-e", f"./plugins/{p}")]
    _install(session, "mypy", "types-PyYAML", "-e", ".[test]", "-e", f"{LOOPBACK}[test]", *plugins)
    session.run("mypy")


@nox.session(python=PYTHON)
def core(session: nox.Session) -> None:
    """The core alone, installed as a user would (not editable), with no plugin present."""
    _install(session, ".[test]")
    _debian(session, "mariadb", "chromium")
    _pytest(session, "tests")


@nox.session(python=PYTHON)
@nox.parametrize("plugin", PLUGINS, ids=PLUGINS)
def plugin(session: nox.Session, plugin: str) -> None:
    """One plugin in a fresh environment with the core and only what it needs."""
    needs = PLUGIN_NEEDS.get(plugin, [])
    _install(session, ".[testing]", LOOPBACK, f"./plugins/{plugin}[test]", *needs)
    _debian(session, "mariadb")
    _pytest(session, f"plugins/{plugin}/tests")


@nox.session(python=PYTHON)
def loopback(session: nox.Session) -> None:
    """The loopback cloud's emulators, through the real clients of the services they emulate."""
    _install(session, ".[testing]", f"{LOOPBACK}[test]")
    _pytest(session, f"{LOOPBACK}/tests")


@nox.session(python=PYTHON, name="all")
def everything(session: nox.Session) -> None:
    """Every distribution installed together: discovery must still be clean and unambiguous."""
    _install(session, ".[test]", f"{LOOPBACK}[test]", *(f"./plugins/{p}[test]" for p in PLUGINS))
    _debian(session, "mariadb", "chromium")
    session.run("zenml", "plugins", env=TEST_ENV)
    _pytest(session, "--import-mode=importlib", "tests", f"{LOOPBACK}/tests", *_plugin_tests())


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    """The heavy end-to-end tests: workloads in real containers from our base image, on our
    own dockerd (started here, stopped at the end; see zenml_loopback)."""
    _install(session, ".[test]", f"{LOOPBACK}[test]", *(f"./plugins/{p}[test]" for p in PLUGINS))
    _debian(session, "docker", "mariadb")
    env = {**TEST_ENV, "ZENML_LOOPBACK_DOCKER": "1"}
    session.run(
        "pytest",
        "--import-mode=importlib",
        "tests/e2e",
        "plugins/zenml-k8s/tests",
        "plugins/zenml-gcp/tests",
        "plugins/zenml-gcaip/tests",
        "plugins/zenml-dataflow/tests",
        *session.posargs,
        env=env,
    )


@nox.session(python=PYTHON)
def live(session: nox.Session) -> None:
    """The remote backends' tests against real clouds (not part of ./dev test). Each plugin's
    tests read their ZENML_LIVE_* variables and skip, saying which are missing, without them."""
    _install(session, ".[test]", f"{LOOPBACK}[test]", *(f"./plugins/{p}[test]" for p in PLUGINS))
    env = {**TEST_ENV, "ZENML_LIVE_K8S": "1", "ZENML_LIVE_GCP": "1", "ZENML_LIVE_DATAFLOW": "1"}
    env.pop("NO_GCE_CHECK")  # real credentials may come from the metadata server
    session.run(
        "pytest",
        "--import-mode=importlib",
        "plugins/zenml-k8s/tests",
        "plugins/zenml-gcp/tests",
        "plugins/zenml-dataflow/tests",
        *session.posargs,
        env=env,
    )


#: the peer the engine's rows are measured against, in a venv of its own (its dependencies
#: are not ours to pin)
KEDRO = "kedro>=1.7,<2"


@nox.session(python=PYTHON, name="bench")
def bench(session: nox.Session) -> None:
    """Benchmarks (not part of the default run): ``./dev bench``."""
    # the portable-runner row needs zenml-dataflow and the loopback's bind_loopback
    _install(session, ".[test]", LOOPBACK, "./plugins/zenml-gcp", "./plugins/zenml-dataflow")
    _debian(session, "mariadb")  # the history rows run on a MariaDB server too
    kedro = Path(session.virtualenv.location).with_name("bench-kedro")
    if not (kedro / "bin" / "python").exists():
        session.run("uv", "venv", "--quiet", "--python", PYTHON, str(kedro), external=True)
    session.run(
        "uv",
        "pip",
        "install",
        "--quiet",
        "--python",
        str(kedro / "bin" / "python"),
        KEDRO,
        external=True,
    )
    env = {
        "UV": os.environ.get("UV", ""),
        "ZENML_BENCH_KEDRO_PYTHON": str(kedro / "bin" / "python"),
    }
    session.run("python", "bench/run.py", *session.posargs, env=env)
