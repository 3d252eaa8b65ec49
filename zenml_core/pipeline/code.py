"""The user's code, shipped with a remote run: a zip of the project in the artifact store.

Content-addressed (its SHA-256 names it), so unchanged code is uploaded once; built
deterministically (sorted entries, fixed timestamps), so the same files give the same hash.
Files the project's .gitignore excludes stay home, and so do .git, .zenml, virtualenvs and
secrets (.env, keys); a package over ZENML_CODE_PACKAGE_MB is refused.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from zenml_core.artifacts.base import BaseArtifactStore
from zenml_core.exceptions import ArtifactStoreError, ConfigError
from zenml_core.pipeline.spec import CodeRef

ALWAYS_EXCLUDED = [".git/", ".zenml/", ".nox/", ".tox/", "__pycache__/", "*.pyc"]
#: secrets stay home unless the project's .gitignore includes them again (``!.env``)
SECRETS_EXCLUDED = [
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_ed25519*",
    ".netrc",
    ".pypirc",
    "*credentials*.json",
]
ARCHIVE = "code.zip"
_EPOCH = (1980, 1, 1, 0, 0, 0)
#: the largest code package a run makes, in MB (ZENML_CODE_PACKAGE_MB)
DEFAULT_PACKAGE_MB = 100


def project_files(root: Path) -> list[Path]:
    """Files under ``root`` that belong to the project: not .git or .zenml, not a virtualenv
    (any folder with a pyvenv.cfg, whatever its name), no secrets (.env, keys) unless
    ``root/.gitignore`` includes them again, and nothing ``root/.gitignore`` excludes."""
    import pathspec

    patterns = [*ALWAYS_EXCLUDED, *SECRETS_EXCLUDED]
    gitignore = root / ".gitignore"
    if gitignore.is_file():
        patterns += gitignore.read_text(errors="replace").splitlines()
    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    files = []
    for folder, dirs, names in os.walk(root):
        relative_folder = Path(folder).relative_to(root)
        dirs[:] = sorted(
            d
            for d in dirs
            if not spec.match_file(f"{(relative_folder / d).as_posix()}/")
            and not (Path(folder) / d / "pyvenv.cfg").is_file()
        )
        for name in sorted(names):
            relative = relative_folder / name
            if not spec.match_file(relative.as_posix()):
                files.append(relative)
    return files


def build_archive(root: Path) -> bytes:
    files = project_files(root)
    sizes = {}
    for relative in files:
        try:
            sizes[relative] = (root / relative).stat().st_size
        except FileNotFoundError:  # gone since the walk: not part of the package
            continue
    _check_size(root, sizes)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in sizes:
            try:
                data = (root / relative).read_bytes()
            except FileNotFoundError:  # removed while the package was made
                continue
            info = zipfile.ZipInfo(relative.as_posix(), date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def _check_size(root: Path, sizes: dict[Path, int]) -> None:
    try:
        limit_mb = float(os.environ.get("ZENML_CODE_PACKAGE_MB", DEFAULT_PACKAGE_MB))
    except ValueError:
        raise ConfigError(
            f"ZENML_CODE_PACKAGE_MB={os.environ['ZENML_CODE_PACKAGE_MB']!r} is not a number of MB."
        ) from None
    total = sum(sizes.values())
    if total <= limit_mb * 1024 * 1024:
        return
    by_top: dict[str, int] = {}
    for relative, size in sizes.items():
        top = relative.parts[0] + ("/" if len(relative.parts) > 1 else "")
        by_top[top] = by_top.get(top, 0) + size
    biggest = sorted(by_top.items(), key=lambda item: -item[1])[:3]
    listed = ", ".join(f"{name} ({size / 1e6:.0f} MB)" for name, size in biggest)
    raise ConfigError(
        f"The code package of {root} would be {total / 1e6:.0f} MB, over the "
        f"{limit_mb:g} MB limit; the biggest parts: {listed}. Leave data out of it with a "
        ".gitignore in that folder, run from your project (`zenml init` at its root), or raise "
        "the limit with ZENML_CODE_PACKAGE_MB."
    )


def package_code(root: Path, store: BaseArtifactStore) -> CodeRef:
    """Upload the project's code unless the same content is already there."""
    data = build_archive(root)
    digest = hashlib.sha256(data).hexdigest()
    uri = store.uri("code", digest)
    if not store.exists(uri):
        with store.staging() as folder:
            (folder / ARCHIVE).write_bytes(data)
            try:
                store.publish_folder(folder, uri)
            except ArtifactStoreError:
                if not store.exists(uri):  # another run published the same code first
                    raise
    return CodeRef(uri, digest)


#: the code cache's size cap in MB (ZENML_CODE_CACHE_MB); least recently used packages go first
DEFAULT_CACHE_MB = 1024


def fetch_code(code: CodeRef, store: BaseArtifactStore, cache: Path) -> Path:
    """Make the code package importable in this process and return the folder it is in.

    The verified zip is cached under ``cache/<sha>.zip`` (its hash checked on every use, the
    cache kept under its size cap); each process unpacks it afresh into a folder of its own,
    removed when the process ends, so a changed file in a cache can never be imported.
    """
    digest = code.sha256
    if not is_digest(digest):  # it names files: never a path
        raise ArtifactStoreError(f"The run spec's code.sha256 {digest!r} is not a SHA-256 digest.")
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / f"{digest}.zip"
    data = cached.read_bytes() if cached.is_file() else b""
    if hashlib.sha256(data).hexdigest() != digest:
        with store.reader(code.uri) as folder:
            data = (folder / ARCHIVE).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise ArtifactStoreError(
                f"The code package at {code.uri} does not match its hash {digest}; "
                "it was altered after upload. Run the pipeline again to upload it anew."
            )
        partial = cache / f".{digest}.{os.getpid()}.zip"
        partial.write_bytes(data)
        partial.replace(cached)  # whole or not at all
    os.utime(cached)  # most recently used
    _evict(cache, keep=cached)
    target = Path(tempfile.mkdtemp(prefix=f"zenml-code-{digest[:12]}-"))
    atexit.register(shutil.rmtree, target, True)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(target)  # zipfile drops absolute and '..' parts of names
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # no half-unpacked package is left
        raise
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    _fetched.append(target)
    return target


_fetched: list[Path] = []


def running_code_root() -> Path | None:
    """The folder this process's user code comes from: the project root (``zenml init``) it
    runs in, else the code package it fetched (a remote run); None when there is neither."""
    from zenml_core.repository import find_project_root

    return find_project_root() or (_fetched[-1] if _fetched else None)


def is_digest(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) is not None


def _evict(cache: Path, keep: Path) -> None:
    """Remove the least recently used packages while the cache is over its cap."""
    try:
        cap = float(os.environ.get("ZENML_CODE_CACHE_MB", DEFAULT_CACHE_MB)) * 1024 * 1024
    except ValueError:
        cap = DEFAULT_CACHE_MB * 1024 * 1024
    packages = []
    for path in cache.glob("*.zip"):
        try:
            stat = path.stat()
        except FileNotFoundError:  # another process evicted it meanwhile
            continue
        packages.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in packages)
    for _, size, path in sorted(packages):
        if total <= cap:
            break
        if path != keep:
            path.unlink(missing_ok=True)
            total -= size
