"""How step outputs become files in an artifact and come back as values.

An output's annotation picks the materializer; its name is recorded with the artifact, so a
reader knows how to load it without the producer's code.
"""

from __future__ import annotations

import json
import shutil
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zenml_core.exceptions import ConfigError

DATA = "data"


@dataclass(frozen=True)
class Materializer:
    name: str
    matches: Callable[[Any], bool]
    save: Callable[[Any, Path], None]
    load: Callable[[Path], Any]


_JSON_TYPES = (int, float, str, bool, list, dict, type(None))


def _is_json(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    if origin in (typing.Union, types.UnionType):
        return all(_is_json(a) for a in typing.get_args(annotation))
    return origin in _JSON_TYPES


def _save_json(value: Any, folder: Path) -> None:
    try:
        text = json.dumps(value, sort_keys=True)
    except TypeError as error:
        raise ConfigError(f"Output value is not JSON-serialisable: {error}") from error
    (folder / f"{DATA}.json").write_text(text)


def _load_json(folder: Path) -> Any:
    return json.loads((folder / f"{DATA}.json").read_text())


def _save_path(value: Any, folder: Path) -> None:
    source = Path(value)
    if source.is_dir():
        shutil.copytree(source, folder / DATA)
    elif source.is_file():
        (folder / DATA).mkdir()
        shutil.copy2(source, folder / DATA / source.name)
    else:
        raise ConfigError(f"The step returned path {source}, which does not exist.")


def _load_path(folder: Path) -> Path:
    return folder / DATA


def _is_path(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Path)


_REGISTRY: list[Materializer] = [
    Materializer("json", _is_json, _save_json, _load_json),
    Materializer("path", _is_path, _save_path, _load_path),
]


def register_materializer(materializer: Materializer) -> None:
    """Add a materializer; later registrations win over earlier ones for the same type."""
    _REGISTRY.insert(0, materializer)


def for_annotation(annotation: Any, where: str) -> Materializer:
    for materializer in _REGISTRY:
        if materializer.matches(annotation):
            return materializer
    known = ", ".join(m.name for m in _REGISTRY)
    raise ConfigError(
        f"{where}: no materializer for type {annotation!r} (known: {known}); use one of "
        "those types, return a pathlib.Path, or register a materializer."
    )


#: materializers of zenml-core's own types that register when their module is imported
_LAZY = {"dataset": "zenml_core.steps.dataset", "model": "zenml_core.steps.trainer"}


def by_name(name: str) -> Materializer:
    if name in _LAZY:
        import importlib

        importlib.import_module(_LAZY[name])
    for materializer in _REGISTRY:
        if materializer.name == name:
            return materializer
    raise ConfigError(f"No materializer named {name!r}; is the plugin that wrote it installed?")
