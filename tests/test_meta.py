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
