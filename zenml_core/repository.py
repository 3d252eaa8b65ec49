"""Where a project keeps its defaults: ``.zenml/`` (made by ``zenml init``) or a user data dir.

Without configuration, metadata goes to an embedded SQLite file and artifacts to a local
folder, both under that place, so a first pipeline runs with no set-up at all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zenml_core.exceptions import ConfigError
from zenml_core.yamlio import load_yaml

PROJECT_DIR = ".zenml"
CONFIG_FILE = "config.yaml"


def find_project_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: cwd) that holds ``.zenml/``."""
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / PROJECT_DIR).is_dir():
            return folder
    return None


def user_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "zenml"


def home() -> Path:
    """``.zenml/`` of the current project, else the user data dir."""
    root = find_project_root()
    return root / PROJECT_DIR if root else user_data_dir()


def default_components(where: Path | None = None) -> dict[str, dict[str, Any]]:
    """The embedded defaults, overridden by ``config.yaml`` in ``where`` (default: ``home()``)."""
    where = where or home()
    components: dict[str, dict[str, Any]] = {
        "orchestrator": {"kind": "orchestrator", "name": "local"},
        "processing": {"kind": "processing", "name": "local"},
        "training": {"kind": "training", "name": "local"},
        **_embedded_stores(where),
    }
    config_file = where / CONFIG_FILE
    if config_file.is_file():
        fix = f"fix it, or delete it and run `zenml init {where.parent}` to write a fresh one"
        try:
            configured = load_yaml(config_file.read_bytes(), f"The project config {config_file}")
        except ConfigError as error:
            raise ConfigError(f"{error} ({fix}).") from None
        if configured is None:
            configured = {}
        given = configured.get("components", {}) if isinstance(configured, dict) else None
        if not isinstance(given, dict) or not all(isinstance(c, dict) for c in given.values()):
            raise ConfigError(
                f"The project config {config_file} must be a mapping with 'components': "
                f"{{kind: {{name: ..., params: {{...}}}}}} ({fix})."
            )
        components.update(given)
    return components


def init(root: Path) -> Path:
    """Create ``root/.zenml`` with a config naming the embedded defaults; idempotent."""
    import yaml

    folder = root / PROJECT_DIR
    config_file = folder / CONFIG_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not config_file.exists():
            config_file.write_text(
                "# zenml-core project defaults; any component here can be replaced by a "
                "plugin's.\n"
                + yaml.safe_dump({"components": _embedded_stores(folder)}, sort_keys=False)
            )
    except OSError as error:
        raise ConfigError(
            f"Cannot make a zenml project in {root}: {error.strerror} ({error.filename}). "
            "Choose a folder you can write to."
        ) from None
    return folder


def _embedded_stores(folder: Path) -> dict[str, dict[str, Any]]:
    """SQLite metadata and local artifacts, both inside ``folder``."""
    return {
        "metadata_store": {
            "kind": "metadata_store",
            "name": "sqlite",
            "params": {"path": str(folder / "metadata.db")},
        },
        "artifact_store": {
            "kind": "artifact_store",
            "name": "file",
            "params": {"root": str(folder / "artifacts")},
        },
    }
