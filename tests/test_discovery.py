"""Discovery for real: small plugin distributions are built into wheels, pip-installed into a
folder, and found through their entry points by a fresh interpreter running the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from zenml_core.testing.plugin_factory import (
    build_wheels,
    install_wheels,
    orchestrator_plugin_source,
    write_plugin_project,
)

BROKEN_IMPORT = "import definitely_not_installed_sdk  # noqa\n"
EXPLODING = """
from zenml_core import hookimpl
from zenml_core.backends import LocalOrchestrator

@hookimpl
def register_orchestrators(register):
    register("boom", LocalOrchestrator)
    raise RuntimeError("no credentials found")
"""
BAD_SIGNATURE = """
from zenml_core import hookimpl

@hookimpl
def register_orchestrators(register, cluster):
    pass
"""
# Would fail loudly if imported: proves refused plugins are never imported.
NEVER_IMPORT = "raise RuntimeError('this module must not be imported')\n"

PROJECTS = {
    # distribution: (module source, version, core requirement)
    "zenml-acme": (orchestrator_plugin_source("acme"), "1.2.0", ">=0.1,<1"),
    "zenml-missingdep": (BROKEN_IMPORT, "0.5.0", ">=0.1,<1"),
    "zenml-exploding": (EXPLODING, "0.2.0", ">=0.1,<1"),
    "zenml-twin-a": (orchestrator_plugin_source("twin", "TwinA"), "1.0.0", ">=0.1,<1"),
    "zenml-twin-b": (orchestrator_plugin_source("twin", "TwinB"), "1.0.0", ">=0.1,<1"),
    "zenml-future": (NEVER_IMPORT, "3.0.0", ">=5,<6"),
    "zenml-undeclared": (NEVER_IMPORT, "1.0.0", None),
    "zenml-badsig": (BAD_SIGNATURE, "0.1.0", ">=0.1,<1"),
}


@pytest.fixture(scope="session")
def wheels(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("plugin-projects")
    projects = [
        write_plugin_project(root, dist, source, version=version, core_requirement=core)
        for dist, (source, version, core) in PROJECTS.items()
    ]
    projects.append(
        write_plugin_project(
            root / "fake-first-party",
            "zenml-k8s",
            BROKEN_IMPORT,
            version="0.1.0",
            core_requirement=">=0.1,<1",
            entry_point_name="k8s",
        )
    )
    wheel_dir = tmp_path_factory.mktemp("wheels")
    build_wheels(projects, wheel_dir)
    return {p.name.split("-")[0].replace("_", "-"): p for p in wheel_dir.glob("*.whl")}


@pytest.fixture(scope="session")
def mixed(tmp_path_factory, wheels) -> Path:
    target = tmp_path_factory.mktemp("site-mixed")
    install_wheels([wheels[d] for d in PROJECTS], target)
    return target


@pytest.fixture(scope="session")
def fake_k8s(tmp_path_factory, wheels) -> Path:
    target = tmp_path_factory.mktemp("site-fake-k8s")
    install_wheels([wheels["zenml-k8s"]], target)
    return target


def run(site: Path, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    environment.update(env, PYTHONPATH=str(site))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=environment, check=False
    )


def plugins_json(site: Path, **env: str) -> dict[str, dict]:
    result = run(site, ["-m", "zenml_core", "plugins", "--json"], **env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    return {p["distribution"]: p for p in report["plugins"]} | {
        "__conflicts__": report["conflicts"]
    }


def ask(site: Path, code: str, **env: str) -> str:
    result = run(site, ["-c", textwrap.dedent(code)], **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


ASK_FOR = """
from zenml_core.plugins import get_backend_class
try:
    print(get_backend_class("orchestrator", {name!r}).__qualname__)
except Exception as error:
    print(type(error).__name__, error)
"""


def test_each_distribution_is_listed_with_its_version_and_state(mixed):
    found = plugins_json(mixed)
    assert found["zenml-core"]["status"] == "loaded"
    acme = found["zenml-acme"]
    assert (acme["version"], acme["name"], acme["status"]) == ("1.2.0", "zenml_acme", "loaded")
    assert acme["backends"] == {"orchestrator": ["acme"]}
    missing = found["zenml-missingdep"]
    assert missing["status"] == "failed" and missing["version"] == "0.5.0"
    assert "No module named 'definitely_not_installed_sdk'" in missing["errors"][0]
    assert found["zenml-exploding"]["status"] == "failed"
    assert "RuntimeError: no credentials found" in found["zenml-exploding"]["errors"][0]
    assert found["zenml-badsig"]["status"] == "failed"
    assert "bad hook" in found["zenml-badsig"]["errors"][0]
    future = found["zenml-future"]
    assert future["status"] == "incompatible"
    assert "supports zenml-core<6,>=5 but zenml-core 0.1.0 is running" in future["errors"][0]
    undeclared = found["zenml-undeclared"]
    assert undeclared["status"] == "incompatible"
    assert "declares no zenml-core requirement" in undeclared["errors"][0]
    (conflict,) = found["__conflicts__"]
    assert conflict["name"] == "twin"
    assert conflict["distributions"] == [
        "zenml-twin-a 1.0.0 (plugin 'zenml_twin_a')",
        "zenml-twin-b 1.0.0 (plugin 'zenml_twin_b')",
    ]


def test_the_table_shows_problems_with_distribution_names(mixed):
    result = run(mixed, ["-m", "zenml_core", "plugins"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["DISTRIBUTION", "VERSION", "PLUGIN", "STATUS"]
    assert any(
        line.split()[:4] == ["zenml-acme", "1.2.0", "zenml_acme", "loaded"] for line in lines
    )
    problems = result.stdout.split("Problems:")[1]
    for dist in (
        "zenml-missingdep 0.5.0",
        "zenml-exploding 0.2.0",
        "zenml-future 3.0.0",
        "zenml-undeclared 1.0.0",
        "zenml-badsig 0.1.0",
        "zenml-twin-a 1.0.0",
    ):
        assert dist in problems


def test_a_found_plugin_is_used_by_name_and_round_trips(mixed):
    out = ask(
        mixed,
        """
        from zenml_core.backends import BaseOrchestrator
        backend = BaseOrchestrator.from_yaml("name: acme\\nparams: {region: mars}")
        print(type(backend).__module__, backend.region, backend.to_config())
    """,
    )
    assert out == (
        "zenml_acme.plugin mars "
        "{'kind': 'orchestrator', 'name': 'acme', 'params': {'region': 'mars'}}"
    )
    listed = run(mixed, ["-m", "zenml_core", "backends", "orchestrator", "--json"])
    rows = json.loads(listed.stdout)
    assert {
        "kind": "orchestrator",
        "name": "acme",
        "class": "zenml_acme.plugin.AcmeOrchestrator",
        "distribution": "zenml-acme",
        "version": "1.2.0",
    } in rows


def test_broken_plugins_break_only_what_they_provide(mixed):
    assert ask(mixed, ASK_FOR.format(name="local")) == "LocalOrchestrator"
    boom = ask(mixed, ASK_FOR.format(name="boom"))
    assert boom.startswith("PluginLoadError No orchestrator backend named 'boom'")
    assert "zenml-exploding 0.2.0 (plugin 'zenml_exploding') provides it but failed to load" in boom
    twin = ask(mixed, ASK_FOR.format(name="twin"))
    assert twin.startswith(
        "PluginConflictError orchestrator backend name 'twin' is registered by both"
    )
    assert "zenml-twin-a 1.0.0" in twin and "zenml-twin-b 1.0.0" in twin
    unknown = ask(mixed, ASK_FOR.format(name="nowhere"))
    assert unknown.startswith("UnknownBackendError No orchestrator backend named 'nowhere'.")
    # what loaded, whatever else this environment has installed (e.g. kubernetes in `all`)
    available = set(unknown.split("Available: ", 1)[1].split(".", 1)[0].split(", "))
    assert {"acme", "local"} <= available and not {"boom", "twin"} & available
    assert "might provide it: zenml-badsig 0.1.0" in unknown and "zenml-missingdep 0.5.0" in unknown


def test_strict_mode_fails_on_any_problem(mixed):
    result = run(mixed, ["-m", "zenml_core", "plugins"], ZENML_STRICT_PLUGINS="1")
    assert result.returncode == 1
    assert "ZENML_STRICT_PLUGINS is set" in result.stderr
    assert "zenml-missingdep 0.5.0" in result.stderr and "zenml-twin-b 1.0.0" in result.stderr


def test_allow_list_loads_only_the_named_plugins(mixed):
    found = plugins_json(mixed, ZENML_PLUGINS="zenml-acme")
    assert found["zenml-acme"]["status"] == "loaded"
    assert found["zenml-missingdep"]["status"] == "disabled"
    assert "not in ZENML_PLUGINS=zenml-acme" in found["zenml-missingdep"]["errors"][0]
    assert found["__conflicts__"] == []
    # an empty allow-list loads no external plugin at all, strict mode has nothing to fail on
    result = run(mixed, ["-m", "zenml_core", "plugins"], ZENML_PLUGINS="", ZENML_STRICT_PLUGINS="1")
    assert result.returncode == 0, result.stderr


def test_block_list_by_entry_point_or_distribution_name(mixed):
    found = plugins_json(mixed, ZENML_PLUGINS_BLOCK="zenml_twin_a, zenml-missingdep")
    assert found["zenml-twin-a"]["status"] == "disabled"
    assert found["zenml-missingdep"]["status"] == "disabled"
    assert found["__conflicts__"] == []
    assert ask(mixed, ASK_FOR.format(name="twin"), ZENML_PLUGINS_BLOCK="zenml_twin_a") == "TwinB"


def test_first_party_name_raises_its_broken_distributions_error(fake_k8s):
    out = ask(fake_k8s, ASK_FOR.format(name="kubernetes"))
    assert out.startswith(
        "PluginLoadError No orchestrator backend named 'kubernetes'. "
        "Available: local. It comes from zenml-k8s 0.1.0 (plugin 'k8s'), which "
        "failed to load: import of 'zenml_k8s.plugin' failed: ModuleNotFoundError"
    )
    blocked = ask(fake_k8s, ASK_FOR.format(name="kubernetes"), ZENML_PLUGINS_BLOCK="k8s")
    assert "which is installed but disabled (blocked by ZENML_PLUGINS_BLOCK=k8s)" in blocked
