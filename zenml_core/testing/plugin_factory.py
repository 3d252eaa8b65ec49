"""Write small, real plugin distributions (pyproject + module) for tests and benchmarks.

The projects build with hatchling like any third-party plugin, so discovery is tested through
a real wheel, real metadata and a real entry point.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

from zenml_core._version import __version__

DEFAULT_CORE_RANGE = f">={__version__},<1"

#: A module body registering one orchestrator named NAME (a dataclass with one parameter).
ORCHESTRATOR_PLUGIN = """
from dataclasses import dataclass

from zenml_core import hookimpl
from zenml_core.backends import BaseOrchestrator


@dataclass
class {class_name}(BaseOrchestrator):
    region: str = "local"

    def run(self, request):
        return request.execute()


@hookimpl
def register_orchestrators(register):
    register({name!r}, {class_name})
"""


def write_plugin_project(
    root: Path,
    distribution: str,
    module_source: str,
    *,
    version: str = "1.0.0",
    core_requirement: str | None = DEFAULT_CORE_RANGE,
    entry_point_name: str | None = None,
    extra_dependencies: Iterable[str] = (),
) -> Path:
    """Create ``root/distribution`` as a buildable plugin project and return its folder.

    ``core_requirement=None`` leaves out the zenml-core dependency (a plugin that declares no
    supported range).
    """
    package = distribution.replace("-", "_")
    project = root / distribution
    (project / package).mkdir(parents=True, exist_ok=True)
    dependencies = [*extra_dependencies]
    if core_requirement is not None:
        dependencies.append(f"zenml-core{core_requirement}")
    (project / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "{distribution}"
        version = "{version}"
        dependencies = {dependencies!r}

        [project.entry-points."zenml_core.plugins"]
        {entry_point_name or package} = "{package}.plugin"

        [tool.hatch.build.targets.wheel]
        packages = ["{package}"]
        """)
    )
    (project / package / "__init__.py").write_text("")
    (project / package / "plugin.py").write_text(textwrap.dedent(module_source))
    return project


def orchestrator_plugin_source(name: str, class_name: str = "AcmeOrchestrator") -> str:
    return ORCHESTRATOR_PLUGIN.format(name=name, class_name=class_name)


def build_wheels(projects: Iterable[Path], wheel_dir: Path) -> None:
    """Build wheels with the hatchling of this environment (no network, no isolation)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheel_dir),
            *map(str, projects),
        ],
        check=True,
    )


def install_wheels(wheels: Iterable[Path], target: Path) -> None:
    """pip-install wheels into ``target`` (a folder to put on PYTHONPATH), without deps."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(target),
            *map(str, wheels),
        ],
        check=True,
    )
