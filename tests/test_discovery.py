"""Discovery for real: small plugin distributions are built into wheels, pip-installed into a
folder, and found through their entry points by a fresh interpreter running the real CLI."""

from __future__ import annotations

import json
import os
import re
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
    # a real backend for a core that is not this one
    "zenml-oldcore": (orchestrator_plugin_source("old", "OldOrchestrator"), "0.0.1", ">=5,<6"),
    # registers zenml-core's own name: refused for that name, the built-in stays
    "zenml-hijack": (
        orchestrator_plugin_source("local", "HijackOrchestrator"),
        "6.6.6",
        ">=0.1,<1",
    ),
}
# Entry modules that cost every `zenml` command: one sleeps, one imports pandas.
SLOW = "import time\ntime.sleep(1.5)\n" + orchestrator_plugin_source("sleepy", "Sleepy")
HEAVY = "import pandas  # noqa: F401\n" + orchestrator_plugin_source("hefty", "Hefty")
SLOW_PROJECTS = {"zenml-sleepy": SLOW, "zenml-hefty": HEAVY}


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
    projects += [
        write_plugin_project(root, dist, source, core_requirement=">=0.1,<1")
        for dist, source in SLOW_PROJECTS.items()
    ]
    wheel_dir = tmp_path_factory.mktemp("wheels")
    build_wheels(projects, wheel_dir)
    return {p.name.split("-")[0].replace("_", "-"): p for p in wheel_dir.glob("*.whl")}


@pytest.fixture(scope="session")
def mixed(tmp_path_factory, wheels) -> Path:
    target = tmp_path_factory.mktemp("site-mixed")
    install_wheels([wheels[d] for d in PROJECTS], target)
    return target


@pytest.fixture(scope="session")
def slow(tmp_path_factory, wheels) -> Path:
    target = tmp_path_factory.mktemp("site-slow")
    install_wheels([wheels[d] for d in SLOW_PROJECTS], target)
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
    assert result.returncode in (0, 1), result.stderr  # 1: a plugin failed
    report = json.loads(result.stdout)
    return {p["distribution"]: p for p in report["plugins"]} | {
        "__conflicts__": report["conflicts"],
        "__problems__": report["problems"],
        "__exit__": result.returncode,
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
    exploding = found["zenml-exploding"]
    assert exploding["status"] == "failed"
    assert "RuntimeError: no credentials found" in exploding["errors"][0]
    # a failed plugin provides nothing; what it tried to register is kept apart
    assert exploding["backends"] == {} and exploding["attempted"] == {"orchestrator": ["boom"]}
    hijack = found["zenml-hijack"]
    assert hijack["status"] == "loaded" and hijack["refused"] == ["orchestrator 'local'"]
    assert hijack["backends"] == {}
    assert found["__exit__"] == 1  # plugins failed
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
    assert result.returncode == 1, result.stderr  # plugins failed
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
        "zenml-hijack 6.6.6",
    ):
        assert dist in problems
    exploding = next(line.split() for line in lines if line.startswith("zenml-exploding"))
    assert exploding[3] == "failed" and set(exploding[4:]) == {"-"}  # no usable backends


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
    # plugins that failed before saying what they provide are blamed, as PluginLoadError
    assert unknown.startswith("PluginLoadError No orchestrator backend named 'nowhere'.")
    # what loaded, whatever else this environment has installed (e.g. kubernetes in `all`)
    available = set(unknown.split("Available: ", 1)[1].split(".", 1)[0].split(", "))
    assert {"acme", "local"} <= available and not {"boom", "twin"} & available
    assert "zenml-badsig 0.1.0 (plugin 'zenml_badsig') might provide it but failed" in unknown
    assert "zenml-missingdep 0.5.0" in unknown and "definitely_not_installed_sdk" in unknown


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
    # "Available:" names every orchestrator installed beside it (zenml-gcp's, in the all session)
    assert re.match(
        r"PluginLoadError No orchestrator backend named 'kubernetes'\. Available: "
        r"([a-z]+, )*local(, [a-z]+)*\. It comes from zenml-k8s 0\.1\.0 \(plugin 'k8s'\), which "
        r"failed to load: import of 'zenml_k8s\.plugin' failed: ModuleNotFoundError",
        out,
    ), out
    blocked = ask(fake_k8s, ASK_FOR.format(name="kubernetes"), ZENML_PLUGINS_BLOCK="k8s")
    assert "which is installed but disabled (blocked by ZENML_PLUGINS_BLOCK=k8s)" in blocked


def test_a_built_in_name_cannot_be_hijacked(mixed, tmp_path):
    out = ask(
        mixed,
        f"""
        from pathlib import Path

        from zenml_core import Pipeline
        from zenml_core.repository import init
        from zenml_core.testing.steps import numbers

        init(Path({str(tmp_path)!r}))
        pipeline = Pipeline("defaults")
        pipeline.add_step(numbers())
        result = pipeline.run()
        print(result.status, result.metadata_store.get_run(result.run_id).orchestrator)
        """,
    )
    assert out.splitlines()[-1] == "completed local"
    table = run(mixed, ["-m", "zenml_core", "plugins"]).stdout
    assert "zenml-hijack 6.6.6 (plugin 'zenml_hijack'): registers orchestrator 'local'" in table


def test_the_exit_code_says_whether_plugins_are_sound(mixed):
    def code(*args, **env):
        return run(mixed, ["-m", "zenml_core", "plugins", *args], **env).returncode

    assert code() == 1  # failed plugins
    assert code(ZENML_PLUGINS="zenml-acme") == 0
    assert code("--check", ZENML_PLUGINS="zenml-acme") == 0
    # a refused name is a problem, not a failure: only --check turns it into an exit code
    assert code(ZENML_PLUGINS="zenml-hijack") == 0
    assert code("--check", ZENML_PLUGINS="zenml-hijack") == 1


def test_an_allow_list_naming_nothing_installed_is_reported(mixed):
    found = plugins_json(mixed, ZENML_PLUGINS="zenml-acme,zenml-acmee")
    (problem,) = found["__problems__"]
    assert "ZENML_PLUGINS=zenml-acme,zenml-acmee names 'zenml-acmee'" in problem
    assert "no installed plugin is called that" in problem
    assert (
        run(mixed, ["-m", "zenml_core", "plugins", "--check"], ZENML_PLUGINS="nothing").returncode
        == 1
    )


def test_a_blocked_plugin_is_named_as_blocked_not_missing(mixed):
    out = ask(
        mixed,
        ASK_FOR.format(name="acme"),
        ZENML_PLUGINS_BLOCK="zenml-acme",
        ZENML_PLUGINS="zenml-acme,zenml-twin-a",
    )
    assert out.startswith("UnknownBackendError No orchestrator backend named 'acme'.")
    assert "zenml-acme 1.2.0 (plugin 'zenml_acme'), blocked by ZENML_PLUGINS_BLOCK" in out
    assert "Install the plugin" not in out


def test_slow_and_heavy_plugins_are_visible_and_fatal_when_strict(slow):
    found = plugins_json(slow)
    assert found["zenml-sleepy"]["import_seconds"] >= 1.5
    assert "pandas" in found["zenml-hefty"]["heavy_imports"]
    problems = " ".join(found["__problems__"])
    assert "zenml-sleepy 1.0.0" in problems and "took" in problems
    assert "zenml-hefty 1.0.0" in problems and "imports pandas" in problems
    verbose = run(slow, ["-m", "zenml_core", "plugins", "-v"]).stdout
    hefty = next(line.split() for line in verbose.splitlines() if line.startswith("zenml-hefty"))
    assert "pandas" in hefty[-1].split(",") and hefty[-2] == "ms"
    strict = run(slow, ["-m", "zenml_core", "plugins"], ZENML_STRICT_PLUGINS="1")
    assert strict.returncode == 1 and "zenml-sleepy" in strict.stderr
    # a generous limit lets the slow one pass; the heavy one still fails
    relaxed = plugins_json(slow, ZENML_PLUGIN_IMPORT_LIMIT="30")
    assert not any("sleepy" in p for p in relaxed["__problems__"])


USE_CLASS = """
from zenml_oldcore.plugin import OldOrchestrator
from zenml_acme.plugin import AcmeOrchestrator
from zenml_core.plugins import get_plugin_manager

for cls in (OldOrchestrator, AcmeOrchestrator):
    try:
        get_plugin_manager().name_of(cls)
    except Exception as error:
        print(type(error).__name__, error)
"""


def test_using_the_class_of_a_plugin_that_did_not_load_says_why(mixed):
    incompatible, blocked = ask(mixed, USE_CLASS, ZENML_PLUGINS_BLOCK="zenml-acme").splitlines()
    assert incompatible.startswith("IncompatiblePluginError zenml_oldcore.plugin.OldOrchestrator")
    assert "zenml-oldcore 0.0.1" in incompatible and "supports zenml-core<6,>=5" in incompatible
    assert blocked.startswith("PluginError zenml_acme.plugin.AcmeOrchestrator comes from")
    assert "blocked by ZENML_PLUGINS_BLOCK" in blocked and "is not registered" not in blocked
