"""The artifact-store contract: write privately, publish atomically, read back by URI."""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from zenml_core.component import BaseComponent
from zenml_core.exceptions import ArtifactStoreError

#: Written last inside every published artifact: its presence is what "complete" means for
#: stores that cannot rename a folder atomically (object stores).
MANIFEST = ".zenml-artifact"


class BaseArtifactStore(BaseComponent, abc.ABC):
    """Stores artifacts under URIs of one scheme, rooted at ``root``.

    A step writes into a private local folder (``staging``); the store then publishes it under
    its final URI so that readers either see the complete artifact or nothing.
    Subclasses are dataclasses with a ``root: str`` field and implement the four primitives.
    """

    KIND = "artifact_store"
    #: True for stores on this machine's disk, which a run elsewhere (a pod, a VM) cannot reach
    MACHINE_LOCAL: ClassVar[bool] = False
    #: True when ``reader`` yields the artifact's own folder (it outlives the block), False
    #: when it yields a temporary copy (a download), removed when the block ends
    READS_IN_PLACE: ClassVar[bool] = False
    root: str

    # -- primitives a store implements ---------------------------------------------------------

    @abc.abstractmethod
    def publish(self, local_dir: Path, uri: str) -> None:
        """Make the folder's contents appear at ``uri`` all at once; ``uri`` must not exist."""

    @abc.abstractmethod
    def exists(self, uri: str) -> bool:
        """Whether a *complete* artifact is published at ``uri``."""

    @abc.abstractmethod
    def reader(self, uri: str) -> contextlib.AbstractContextManager[Path]:
        """A local folder holding the artifact's files, for the duration of the block."""

    @abc.abstractmethod
    def check_access(self) -> None:
        """Raise ``ConfigError`` unless this process can write under ``root`` (before a run)."""

    def local_copy(self, uri: str, target: Path) -> Path:
        """Copy one plain file under ``root`` (not an artifact: e.g. a user's CSV) to
        ``target``. Stores that can read plain files override this."""
        from zenml_core.exceptions import ConfigError

        raise ConfigError(
            f"{type(self).__name__} cannot read plain files such as {uri}; copy it to a local "
            "path first."
        )

    # -- shared behaviour ----------------------------------------------------------------------

    def uri(self, *parts: str) -> str:
        """The address of ``parts`` under ``root``; never outside it."""
        for part in parts:
            segments = str(part).split("/")
            if any(s in ("..", ".") for s in segments) or any(c in str(part) for c in "\0\n\r"):
                raise ArtifactStoreError(
                    f"Refusing the artifact address part {part!r}: it would leave the store's "
                    f"root {self.root} ('..', '.', newlines and NUL are not allowed)."
                )
        return "/".join([self.root.rstrip("/"), *(p.strip("/") for p in parts)])

    def staging_parent(self) -> Path | None:
        """Where private folders are made; a store that renames needs the same filesystem."""
        return None

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A private local folder to write an artifact into; removed when the block ends."""
        parent = self.staging_parent()
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        # the pid in the name lets a later run remove folders of writers that were killed
        folder = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=parent))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def publish_folder(self, folder: Path, uri: str) -> str:
        """Seal a staged folder with its fingerprint and publish it; returns the fingerprint."""
        digest = fingerprint(folder)
        (folder / MANIFEST).write_text(digest + "\n")
        self.publish(folder, uri)
        return digest

    def fingerprint(self, uri: str) -> str:
        with self.reader(uri) as path:
            return (path / MANIFEST).read_text().strip()

    def source_fingerprint(self, uri: str) -> str:
        """What identifies the content of a plain file (not an artifact) a step reads, e.g. a
        user's CSV: part of that step's cache key, so changed data is never served from the
        cache. This default copies the file here and hashes it; stores that know a cheaper
        identity (an object's generation and checksum) override it. 'missing' if absent."""
        with tempfile.TemporaryDirectory(prefix="zenml-source-") as folder:
            try:
                copy = self.local_copy(uri, Path(folder) / "source")
            except (ArtifactStoreError, FileNotFoundError):
                return "missing"
            return content_fingerprint(copy)


def content_fingerprint(path: Path) -> str:
    """A file's or folder's content hash, remembered by (size, mtime, ctime, inode) so that a
    large file unchanged since the last run is not read again; 'missing' if absent."""
    path = path.absolute()
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
            digest.update(content_fingerprint(file).encode() + b"\0")
        return digest.hexdigest()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "missing"
    identity = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
    memo = _fingerprint_memo(path)
    try:
        known = json.loads(memo.read_text())
        if known["identity"] == identity:
            return str(known["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = f"sha256:{digest.hexdigest()}"
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        partial = memo.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"identity": identity, "digest": value}))
        partial.replace(memo)
    except OSError:
        pass  # a memo is a convenience
    return value


def _fingerprint_memo(path: Path) -> Path:
    root = os.environ.get("ZENML_FINGERPRINT_CACHE") or Path.home() / ".cache/zenml/fingerprints"
    return Path(root) / f"{hashlib.sha256(str(path).encode()).hexdigest()[:32]}.json"


#: a folder with more bytes than this has its files hashed in threads
THREADED_FINGERPRINT_BYTES = 1 << 24


def fingerprint(folder: Path) -> str:
    """A content hash of a folder: its files' relative paths, sizes and SHA-256s, in a stable
    order. A large folder's files are hashed in threads (hashlib releases the GIL): a data
    step's output of 230 MiB took 0.3 s in one thread on 2 cores."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    sizes = [path.stat().st_size for path in files]
    if len(files) > 1 and sum(sizes) > THREADED_FINGERPRINT_BYTES:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(len(files), os.cpu_count() or 1)) as pool:
            digests = list(pool.map(_file_sha256, files))
    else:
        digests = [_file_sha256(path) for path in files]
    digest = hashlib.sha256()
    for path, size, file_digest in zip(files, sizes, digests, strict=True):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{size}\0{file_digest}\0".encode())
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
