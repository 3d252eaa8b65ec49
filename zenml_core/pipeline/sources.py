"""Steps travel in run specs as importable addresses ('package.module:Name'), never pickles."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zenml_core.exceptions import PipelineError


def source_root() -> Path:
    """The folder user code is imported relative to: the project (where .zenml/ is) or cwd."""
    from zenml_core.repository import find_project_root

    return find_project_root() or Path.cwd()


def code_root(sources: Iterable[str]) -> Path | None:
    """The folder a run's code package holds: the project root (where .zenml/ is), else the
    one folder the pipeline's own step modules are imported from; None when every step comes
    from an installed distribution (nothing to ship). Never simply the working directory: run
    from elsewhere, that can be anything (a shared temp folder, another virtualenv)."""
    from zenml_core.repository import find_project_root

    project = find_project_root()
    if project is not None:
        return project
    roots: dict[Path, str] = {}
    for source in sources:
        module_name = source.partition(":")[0]
        file = _module_file(module_name)
        if file is None or _installed(file):
            continue
        depth = module_name.count(".") + (1 if file.name == "__init__.py" else 0)
        roots.setdefault(file.parents[depth], module_name)
    if len(roots) > 1:
        listed = "; ".join(f"{m} from {root}" for root, m in roots.items())
        raise PipelineError(
            f"The pipeline's steps come from several folders ({listed}), so no one code "
            "package holds them: put them in one project and run `zenml init` at its root."
        )
    return next(iter(roots), None)


def _module_file(module_name: str) -> Path | None:
    main = sys.modules.get("__main__")
    module = sys.modules.get(module_name)
    if module is None and main is not None and _is_main(module_name, main):
        module = main
    path = getattr(module, "__file__", None)
    return Path(path).resolve() if path else None


def _installed(file: Path) -> bool:
    """In the standard library, a site-packages folder or zenml-core itself."""
    import site
    import sysconfig

    import zenml_core

    places = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    places |= set(site.getsitepackages()) | {site.getusersitepackages()}
    places.add(str(Path(zenml_core.__file__).parent))
    return any(file.is_relative_to(Path(p).resolve()) for p in places if p)


def source_of(obj: Any) -> str:
    module = obj.__module__
    if module == "__main__":
        module = _main_module_name()
    if "<locals>" in obj.__qualname__:
        raise PipelineError(
            f"{obj.__qualname__} is defined inside a function, so no other process can import "
            "it; define steps at module level."
        )
    return f"{module}:{obj.__qualname__}"


def _main_module_name() -> str:
    """The importable name of the script running as __main__, relative to the source root."""
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return str(spec.name)  # run with python -m
    path = getattr(main, "__file__", None)
    if path is None:
        raise PipelineError(
            "Steps defined in an interactive session cannot be imported by a run elsewhere; "
            "put them in a module file."
        )
    file = Path(path).resolve()
    for root in (source_root().resolve(), file.parent):
        if file.is_relative_to(root):
            return ".".join(file.relative_to(root).with_suffix("").parts)
    raise PipelineError(f"Cannot name a module for {file}.")  # pragma: no cover


def load_source(source: str) -> Any:
    """Import 'package.module:Name' (also 'a.b:Outer.Inner')."""
    module_name, _, qualname = source.partition(":")
    if not module_name or not qualname:
        raise PipelineError(f"Bad source {source!r}; expected 'package.module:Name'.")
    main = sys.modules.get("__main__")
    if main is not None and _is_main(module_name, main):
        module: Any = main
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise PipelineError(
                f"Cannot import {module_name!r} for step {source!r}: {error}. Is the project's "
                "code installed or packaged with the run, and is the module name right?"
            ) from error
    target = module
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as error:
            raise PipelineError(
                f"{module_name!r} has no {qualname!r} (from {source!r})."
            ) from error
    return target


def _is_main(module_name: str, main: Any) -> bool:
    path = getattr(main, "__file__", None)
    if path is None:
        return False
    try:
        return _main_module_name() == module_name
    except PipelineError:
        return False
