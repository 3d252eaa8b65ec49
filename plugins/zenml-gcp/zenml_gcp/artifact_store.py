"""Artifacts in Google Cloud Storage (``gs://bucket/prefix``).

An artifact is the objects under its URI; the seal (``.zenml-artifact``, holding the
fingerprint) is uploaded last and is what "published" means, so a reader never takes a
half-uploaded artifact for a complete one. google-cloud-storage honours
``STORAGE_EMULATOR_HOST`` (tests use gcp-storage-emulator on loopback).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zenml_core.artifacts.base import MANIFEST, BaseArtifactStore
from zenml_core.exceptions import ArtifactStoreError, ConfigError


@dataclass
class GCSArtifactStore(BaseArtifactStore):
    """``root`` is ``gs://bucket`` or ``gs://bucket/prefix``; ``project`` bills the requests
    (default: the credentials' project)."""

    root: str
    project: str | None = None

    def validate(self) -> None:
        if not self.root.startswith("gs://") or not self.root[5:].strip("/"):
            raise ConfigError(
                f"GCSArtifactStore: root must look like gs://bucket/prefix, got {self.root!r}."
            )
        self.root = self.root.rstrip("/")

    # -- helpers ---------------------------------------------------------------------------------

    def _client(self) -> Any:
        client = self.__dict__.get("_gcs_client")
        if client is None:
            import warnings

            with warnings.catch_warnings():  # api_core's "Python 3.11 reaches its end of life"
                warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")
                from google.cloud import storage

            client = self.__dict__["_gcs_client"] = storage.Client(project=self.project)
        return client

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        if not uri.startswith("gs://"):
            raise ArtifactStoreError(f"{uri} is not a gs:// URI.")
        bucket, _, prefix = uri[5:].partition("/")
        return bucket, prefix.strip("/")

    def _blob(self, uri: str) -> Any:
        bucket, name = self._split(uri)
        return self._client().bucket(bucket).blob(name)

    # -- the contract ----------------------------------------------------------------------------

    def publish(self, local_dir: Path, uri: str) -> None:
        if self.exists(uri):
            raise ArtifactStoreError(f"An artifact is already published at {uri}.")
        files = sorted(p for p in local_dir.rglob("*") if p.is_file())
        for path in [p for p in files if p.name != MANIFEST] + [local_dir / MANIFEST]:
            relative = path.relative_to(local_dir).as_posix()
            self._blob(f"{uri}/{relative}").upload_from_filename(str(path))

    def exists(self, uri: str) -> bool:
        return bool(self._blob(f"{uri}/{MANIFEST}").exists())

    @contextlib.contextmanager
    def reader(self, uri: str) -> Iterator[Path]:
        if not self.exists(uri):
            raise ArtifactStoreError(
                f"No complete artifact at {uri}: it was deleted, never published, or its upload "
                "was cut short."
            )
        bucket, prefix = self._split(uri)
        folder = Path(tempfile.mkdtemp(prefix="zenml-gcs-"))
        try:
            for blob in self._client().list_blobs(bucket, prefix=f"{prefix}/"):
                target = folder / blob.name[len(prefix) + 1 :]
                target.parent.mkdir(parents=True, exist_ok=True)
                blob.download_to_filename(str(target))
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def check_access(self) -> None:
        from google.api_core import exceptions

        bucket, prefix = self._split(self.root)
        probe = self._client().bucket(bucket).blob(f"{prefix}/.zenml-probe".lstrip("/"))
        try:
            probe.upload_from_string(b"ok")
            probe.delete()
        except exceptions.NotFound as error:
            raise ConfigError(
                f"GCSArtifactStore: bucket {bucket!r} does not exist; create it "
                f"(gsutil mb gs://{bucket}) or choose another root."
            ) from error
        except exceptions.Forbidden as error:
            raise ConfigError(
                f"GCSArtifactStore: no permission to write to gs://{bucket}; grant the "
                "credentials roles/storage.objectAdmin on it."
            ) from error

    def source_fingerprint(self, uri: str) -> str:
        """An object's generation and checksum (a folder's: of every object under it): what
        GCS changes on every write, without downloading anything."""
        bucket, name = self._split(uri)
        blob = self._client().bucket(bucket).get_blob(name)
        if blob is not None:
            return f"gs:{blob.generation}:{blob.crc32c or blob.md5_hash}"
        blobs = sorted(
            (b.name, b.generation, b.crc32c)
            for b in self._client().list_blobs(bucket, prefix=f"{name.rstrip('/')}/")
        )
        if not blobs:
            return "missing"
        return "gs-folder:" + hashlib.sha256(repr(blobs).encode()).hexdigest()

    def local_copy(self, uri: str, target: Path) -> Path:
        from google.api_core import exceptions

        try:
            self._blob(uri).download_to_filename(str(target))
        except exceptions.NotFound as error:
            raise ConfigError(f"No object at {uri}.") from error
        return target
