"""The user's code, shipped with a remote run: a zip of the project in the artifact store.

Content-addressed (its SHA-256 names it), so unchanged code is uploaded once; built
deterministically (sorted entries, fixed timestamps), so the same files give the same hash.
Files the project's .gitignore excludes stay home, and so do .git, .zenml and virtualenvs.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sys
import zipfile
from pathlib import Path

from zenml_core.artifacts.base import BaseArtifactStore
from zenml_core.exceptions import ArtifactStoreError
from zenml_core.pipeline.spec import CodeRef

ALWAYS_EXCLUDED = [".git/", ".zenml/", ".venv*/", "venv/", ".nox/", "__pycache__/", "*.pyc"]
ARCHIVE = "code.zip"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def project_files(root: Path) -> list[Path]:
    """Files under ``root`` that belong to the project, honouring ``root/.gitignore``."""
    import pathspec

    patterns = list(ALWAYS_EXCLUDED)
    gitignore = root / ".gitignore"
    if gitignore.is_file():
        patterns += gitignore.read_text().splitlines()
    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    files = []
    for folder, dirs, names in os.walk(root):
        relative_folder = Path(folder).relative_to(root)
        dirs[:] = sorted(
            d for d in dirs if not spec.match_file(f"{(relative_folder / d).as_posix()}/")
        )
        for name in sorted(names):
            relative = relative_folder / name
            if not spec.match_file(relative.as_posix()):
                files.append(relative)
    return files


def build_archive(root: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in project_files(root):
            info = zipfile.ZipInfo(relative.as_posix(), date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (root / relative).read_bytes())
    return buffer.getvalue()


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


def fetch_code(code: CodeRef, store: BaseArtifactStore, cache: Path) -> Path:
    """Unpack the code package into ``cache/<sha>`` (once) and make it importable."""
    target = cache / code.sha256
    if not target.is_dir():
        with store.reader(code.uri) as folder:
            data = (folder / ARCHIVE).read_bytes()
        if hashlib.sha256(data).hexdigest() != code.sha256:
            raise ArtifactStoreError(
                f"The code package at {code.uri} does not match its hash {code.sha256}; "
                "it was altered after upload. Run the pipeline again to upload it anew."
            )
        staging = cache / f".{code.sha256}.{os.getpid()}"
        staging.mkdir(parents=True)  # exists even for a project with no files
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(staging)
        try:
            staging.rename(target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.is_dir():
                raise
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    return target
