"""Meta-tests that keep the plugin surface and the packaging honest."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from zenml_core import __version__, hookspecs
from zenml_core.kinds import KINDS
from zenml_core.testing import heavy_modules_imported

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIRS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
HOOKS = sorted(
    name
    for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(obj, f"{hookspecs.PROJECT_NAME}_spec")
)


def test_the_kinds_table_covers_every_hook():
    assert sorted(hook for hook, _ in KINDS.values()) == HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    docs = (ROOT / "docs" / "plugins.md").read_text()
    assert f"### `{hook}`" in docs, f"document {hook} in docs/plugins.md"
    assert getattr(hookspecs, hook).__doc__, f"give {hook} a docstring"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    tested = [
        path.name
        for path in (ROOT / "tests").glob("test_*.py")
        if path.name != "test_meta.py" and f"def {hook}(" in path.read_text()
    ]
    assert tested, f"no test implements {hook}"


def _pyproject(path: Path) -> dict:
    return tomllib.loads((path / "pyproject.toml").read_text())


@pytest.mark.parametrize("plugin_dir", PLUGIN_DIRS, ids=lambda p: p.name)
def test_plugins_move_in_lockstep_and_support_this_core(plugin_dir):
    project = _pyproject(plugin_dir)["project"]
    assert project["version"] == __version__
    core = [Requirement(r) for r in project["dependencies"] if r.startswith("zenml-core")]
    assert len(core) == 1, "declare the supported zenml-core range exactly once"
    assert core[0].specifier.contains(__version__)
    assert core[0].specifier.contains("0.1.99") and not core[0].specifier.contains("1.0.0")


@pytest.mark.parametrize("plugin_dir", PLUGIN_DIRS, ids=lambda p: p.name)
def test_plugins_name_a_light_module_in_the_entry_point(plugin_dir):
    entry_points = _pyproject(plugin_dir)["project"]["entry-points"][hookspecs.ENTRY_POINT_GROUP]
    assert len(entry_points) == 1
    (module,) = entry_points.values()
    package = plugin_dir.name.replace("-", "_")
    assert module == f"{package}.plugin"
    assert (plugin_dir / package / "plugin.py").exists()
    assert (plugin_dir / "tests").is_dir()


def test_importing_the_core_is_light():
    assert heavy_modules_imported("import zenml_core") == []


def test_listing_plugins_imports_no_heavy_module():
    assert (
        heavy_modules_imported(
            "import contextlib, io\n"
            "from zenml_core.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()): main(['plugins'])"
        )
        == []
    )


LOOPBACK_DIR = ROOT / "testing" / "zenml-loopback"
#: every distribution this repository builds a wheel of, with its package folder
DISTRIBUTIONS = {
    "zenml-core": ROOT / "zenml_core",
    "zenml-loopback": LOOPBACK_DIR / "zenml_loopback",
    **{p.name: p / p.name.replace("-", "_") for p in PLUGIN_DIRS},
}


def _commands_run(path: Path) -> list[str]:
    """The program names that list literals in ``path`` start with (``["apt-get", ...]``)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.List) and node.elts:
            first = node.elts[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append(first.value)
    return found


@pytest.mark.parametrize("distribution", sorted(DISTRIBUTIONS))
def test_no_wheel_installs_system_packages(distribution):
    """Installing Debian packages is the repository's test support (testing/debian.py), never
    something a published wheel does."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in DISTRIBUTIONS[distribution].rglob("*.py")
        if {"apt-get", "apt", "dpkg"} & set(_commands_run(path)) or "apt-get" in path.read_text()
    ]
    # not even in a message: which package manager to use is the repository's to say
    assert offenders == [], f"these modules of {distribution} mention apt-get: {offenders}"


def test_the_package_manager_check_sees_a_command():
    assert "apt-get" in _commands_run(ROOT / "testing" / "debian.py")


def test_the_loopback_cloud_moves_in_lockstep_and_is_a_pytest_plugin():
    project = _pyproject(LOOPBACK_DIR)["project"]
    assert project["version"] == __version__
    core = [Requirement(r) for r in project["dependencies"] if r.startswith("zenml-core")]
    assert len(core) == 1 and core[0].specifier.contains(__version__)
    assert project["entry-points"]["pytest11"] == {"zenml_loopback": "zenml_loopback.fixtures"}
    assert not (ROOT / "zenml_core" / "testing" / "loopback").exists()


def test_type_checking_and_import_sorting_cover_every_distribution():
    from fnmatch import fnmatch

    tools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    for distribution, package in DISTRIBUTIONS.items():
        relative = str(package.relative_to(ROOT))
        assert any(fnmatch(relative, pattern) for pattern in tools["mypy"]["files"]), distribution
        folder = str(package.parent.relative_to(ROOT))
        assert any(fnmatch(folder, pattern) for pattern in tools["ruff"]["src"]), distribution


@pytest.mark.parametrize("plugin_dir", PLUGIN_DIRS, ids=lambda p: p.name)
def test_first_party_names_point_at_their_distribution(plugin_dir):
    """`No orchestrator named 'gcp'... pip install zenml-gcp` stays true for every backend a
    first-party plugin provides."""
    from zenml_core.plugins import FIRST_PARTY, PluginManager

    provided = [p for p in PluginManager().plugins() if p.distribution == plugin_dir.name]
    if not provided:
        pytest.skip(f"{plugin_dir.name} is not installed in this session")
    for info in provided:
        for kind, names in info.backends.items():
            for name in names:
                assert FIRST_PARTY.get((kind, name)) == plugin_dir.name, (kind, name)
