"""Artifacts on the local filesystem (plain paths and file:// URIs)."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from zenml_core.artifacts.base import MANIFEST, BaseArtifactStore, content_fingerprint
from zenml_core.exceptions import ArtifactStoreError, ConfigError

STAGING = ".staging"


@dataclass
class LocalArtifactStore(BaseArtifactStore):
    """Artifacts under a local folder; publishing is one atomic ``rename``."""

    MACHINE_LOCAL = True
    READS_IN_PLACE = True
    root: str

    def validate(self) -> None:
        if not self.root:
            raise ConfigError("LocalArtifactStore needs a root folder, e.g. '.zenml/artifacts'.")
        path = self.root.removeprefix("file://")
        self.root = str(Path(path).expanduser().absolute())

    def path(self, uri: str) -> Path:
        return Path(uri.removeprefix("file://"))

    def staging_parent(self) -> Path:
        return Path(self.root) / STAGING

    def publish(self, local_dir: Path, uri: str) -> None:
        target = self.path(uri)
        root = os.path.normpath(self.root)
        if os.path.commonpath([root, os.path.normpath(target)]) != root:
            raise ArtifactStoreError(
                f"Refusing to publish at {uri}: it is outside the artifact store's root {root}."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # rename of a folder is atomic and refuses a non-empty target
            os.rename(local_dir, target)
        except OSError as error:
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise ArtifactStoreError(f"An artifact is already published at {uri}.") from error
            raise

    def exists(self, uri: str) -> bool:
        return (self.path(uri) / MANIFEST).is_file()

    @contextlib.contextmanager
    def reader(self, uri: str) -> Iterator[Path]:
        if not self.exists(uri):
            raise ArtifactStoreError(
                f"No complete artifact at {uri}: it was deleted or never published."
            )
        yield self.path(uri)

    def local_copy(self, uri: str, target: Path) -> Path:
        return self.path(uri)  # already local: nothing to copy

    def source_fingerprint(self, uri: str) -> str:
        return content_fingerprint(self.path(uri))

    def check_access(self) -> None:
        root = Path(self.root)
        try:
            self.staging_parent().mkdir(parents=True, exist_ok=True)
            probe = self.staging_parent() / f"probe-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as error:
            raise ConfigError(
                f"Artifact store {root} is not writable ({error.strerror}); choose a folder you "
                "can write to, e.g. ArtifactStore('.zenml/artifacts')."
            ) from error
        self.remove_abandoned_staging()

    def remove_abandoned_staging(self) -> None:
        """Delete private folders of writers that died (a killed run), so they never linger."""
        import shutil

        for staging in self.staging_parent().glob("*"):
            pid = staging.name.split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
