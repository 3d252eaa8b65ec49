"""The local artifact store and the code package."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile

import pytest

from zenml_core.artifacts import ArtifactStore
from zenml_core.artifacts.base import MANIFEST
from zenml_core.artifacts.local import STAGING, LocalArtifactStore
from zenml_core.exceptions import ArtifactStoreError, UnknownBackendError
from zenml_core.pipeline.code import build_archive, fetch_code, package_code, project_files


def test_artifact_store_by_uri_scheme(tmp_path, zenml_plugins):
    assert isinstance(ArtifactStore(str(tmp_path)), LocalArtifactStore)
    assert ArtifactStore(f"file://{tmp_path}").root == str(tmp_path)
    with pytest.raises(UnknownBackendError, match="'gs' is provided by zenml-gcp"):
        ArtifactStore("gs://bucket/root")


def test_publish_is_all_or_nothing(tmp_path):
    store = LocalArtifactStore(str(tmp_path))
    uri = store.uri("p", "s", "out", "1")
    with store.staging() as folder:
        (folder / "a.txt").write_text("a")
        assert not store.exists(uri)
        assert folder.parent == tmp_path / STAGING
        digest = store.publish_folder(folder, uri)
    assert store.exists(uri)
    assert store.fingerprint(uri) == digest
    with store.reader(uri) as folder:
        assert (folder / "a.txt").read_text() == "a"
    assert list((tmp_path / STAGING).iterdir()) == []
    with store.staging() as folder, pytest.raises(ArtifactStoreError, match="already published"):
        store.publish_folder(folder, uri)


def test_a_failed_writer_publishes_nothing(tmp_path):
    store = LocalArtifactStore(str(tmp_path))
    with pytest.raises(RuntimeError), store.staging() as folder:
        (folder / "half.txt").write_text("half")
        raise RuntimeError("crash while writing")
    assert list((tmp_path / STAGING).iterdir()) == []
    with (
        pytest.raises(ArtifactStoreError, match="No complete artifact"),
        store.reader(store.uri("never")),
    ):
        pass


def test_staging_of_dead_writers_is_removed(tmp_path):
    store = LocalArtifactStore(str(tmp_path))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    abandoned = tmp_path / STAGING / f"{dead}-abc"
    abandoned.mkdir(parents=True)
    (abandoned / "partial").write_text("x")
    mine = tmp_path / STAGING / f"{os.getpid()}-mine"
    mine.mkdir()
    store.check_access()
    assert not abandoned.exists() and mine.exists()


def test_fingerprints_follow_content(tmp_path):
    store = LocalArtifactStore(str(tmp_path))
    digests = []
    for i, text in enumerate(["same", "same", "different"]):
        with store.staging() as folder:
            (folder / "f").write_text(text)
            digests.append(store.publish_folder(folder, store.uri(str(i))))
    assert digests[0] == digests[1] != digests[2]
    assert (tmp_path / "0" / MANIFEST).read_text().strip() == digests[0]


def test_a_large_folder_hashed_in_threads_has_the_fingerprint_of_one_hashed_in_one(
    tmp_path, monkeypatch
):
    from zenml_core.artifacts import base

    folder = tmp_path / "data"
    (folder / "train").mkdir(parents=True)
    for i in range(6):
        (folder / "train" / f"part-{i}").write_bytes(bytes([i]) * 100_000)
    (folder / "eval").mkdir()
    (folder / "eval" / "part-0").write_bytes(b"eval" * 1000)
    monkeypatch.setattr(base, "THREADED_FINGERPRINT_BYTES", 0)
    threaded = base.fingerprint(folder)
    monkeypatch.setattr(base, "THREADED_FINGERPRINT_BYTES", 1 << 40)
    assert base.fingerprint(folder) == threaded
    (folder / "train" / "part-3").write_bytes(bytes([3]) * 99_999 + b"x")  # one byte changed
    monkeypatch.setattr(base, "THREADED_FINGERPRINT_BYTES", 0)
    assert base.fingerprint(folder) != threaded
    (folder / "train" / "part-3").write_bytes(bytes([3]) * 100_000)
    (folder / "train" / "part-3").rename(folder / "train" / "part-3b")  # a file renamed
    assert base.fingerprint(folder) != threaded


def test_code_package_honours_gitignore_and_is_content_addressed(tmp_path):
    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "pkg" / "__init__.py").write_text("")
    (project / "pkg" / "steps.py").write_text("VALUE = 42\n")
    (project / ".gitignore").write_text("*.csv\nbuild/\n")
    (project / "data.csv").write_text("big")
    (project / "build").mkdir()
    (project / "build" / "x.py").write_text("")
    for ignored in (".git", ".zenml", "__pycache__", "any-name-env"):
        (project / ignored).mkdir()
        (project / ignored / "f").write_text("")
    (project / "any-name-env" / "pyvenv.cfg").write_text("home = /usr/bin\n")  # a virtualenv
    (project / ".env").write_text("API_TOKEN=secret\n")
    (project / "deploy.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    assert sorted(p.as_posix() for p in project_files(project)) == [
        ".gitignore",
        "pkg/__init__.py",
        "pkg/steps.py",
    ]
    assert build_archive(project) == build_archive(project)  # deterministic
    store = LocalArtifactStore(str(tmp_path / "artifacts"))
    first = package_code(project, store)
    assert package_code(project, store) == first
    assert len(list((tmp_path / "artifacts" / "code").iterdir())) == 1
    (project / "pkg" / "steps.py").write_text("VALUE = 43\n")
    assert package_code(project, store).sha256 != first.sha256

    target = fetch_code(first, store, tmp_path / "cache")
    try:
        assert zipfile.is_zipfile(tmp_path / "artifacts" / "code" / first.sha256 / "code.zip")
        assert (target / "pkg" / "steps.py").read_text() == "VALUE = 42\n"
        import importlib

        assert importlib.import_module("pkg.steps").VALUE == 42
    finally:
        sys.path.remove(str(target))
        sys.modules.pop("pkg.steps", None)
        sys.modules.pop("pkg", None)


def test_a_tampered_code_package_is_refused(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "m.py").write_text("x = 1\n")
    store = LocalArtifactStore(str(tmp_path / "artifacts"))
    ref = package_code(project, store)
    archive = tmp_path / "artifacts" / "code" / ref.sha256 / "code.zip"
    archive.write_bytes(archive.read_bytes() + b"tampered")
    with pytest.raises(ArtifactStoreError, match="does not match its hash"):
        fetch_code(ref, store, tmp_path / "cache")


def _code_project(tmp_path, value="1"):
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "m.py").write_text(f"x = {value}\n")
    return project


def test_a_code_digest_that_is_not_a_digest_is_refused(tmp_path):
    from zenml_core.exceptions import PipelineError
    from zenml_core.pipeline.spec import CodeRef, RunSpec

    evil = tmp_path / "evil_code"
    evil.mkdir()
    (evil / "boom.py").write_text("raise SystemExit('ran code the package does not hold')\n")
    spec = {"version": 1, "run_id": "r1", "pipeline": {"name": "p", "steps": []}}
    for digest in ("../../evil_code", str(evil), "A" * 64, "0" * 63, 7):
        text = json.dumps({**spec, "code": {"uri": "file:///x", "sha256": digest}})
        with pytest.raises(PipelineError, match="SHA-256 digest"):
            RunSpec.from_json(text)
    store = LocalArtifactStore(str(tmp_path / "artifacts"))
    with pytest.raises(ArtifactStoreError, match="not a SHA-256 digest"):
        fetch_code(CodeRef("file:///x", "../../evil_code"), store, tmp_path / "cache")
    assert str(evil) not in sys.path


def test_the_code_cache_is_verified_on_every_use_and_each_process_unpacks_afresh(tmp_path):
    store = LocalArtifactStore(str(tmp_path / "artifacts"))
    ref = package_code(_code_project(tmp_path), store)
    cache = tmp_path / "cache"
    first = fetch_code(ref, store, cache)
    try:
        (first / "m.py").write_text("x = 'changed where it was unpacked'\n")
        (cache / f"{ref.sha256}.zip").write_bytes(b"not the package")  # a damaged cache
        second = fetch_code(ref, store, cache)
        assert second != first and (second / "m.py").read_text() == "x = 1\n"
        assert hashlib.sha256((cache / f"{ref.sha256}.zip").read_bytes()).hexdigest() == ref.sha256
        assert sorted(p.name for p in cache.iterdir()) == [f"{ref.sha256}.zip"]  # nothing partial
    finally:
        for folder in (first, second):
            sys.path.remove(str(folder))


def test_the_code_cache_stays_under_its_cap(tmp_path, monkeypatch):
    store = LocalArtifactStore(str(tmp_path / "artifacts"))
    cache = tmp_path / "cache"
    refs = []
    for value in range(3):
        refs.append(package_code(_code_project(tmp_path, str(value)), store))
        sys.path.remove(str(fetch_code(refs[-1], store, cache)))
    assert len(list(cache.glob("*.zip"))) == 3
    monkeypatch.setenv("ZENML_CODE_CACHE_MB", "0.000001")  # a byte: only the one in use stays
    sys.path.remove(str(fetch_code(refs[0], store, cache)))
    assert [p.name for p in cache.glob("*.zip")] == [f"{refs[0].sha256}.zip"]


def test_secrets_can_be_included_again_by_the_gitignore(tmp_path):
    project = _code_project(tmp_path)
    (project / ".env").write_text("PUBLIC_SETTING=1\n")
    (project / "server.key").write_text("key")
    assert sorted(p.as_posix() for p in project_files(project)) == ["m.py"]
    (project / ".gitignore").write_text("!.env\n")
    assert sorted(p.as_posix() for p in project_files(project)) == [".env", ".gitignore", "m.py"]


def test_a_code_package_over_its_limit_is_refused_naming_what_is_big(tmp_path, monkeypatch):
    from zenml_core.exceptions import ConfigError

    project = _code_project(tmp_path)
    (project / "datasets").mkdir()
    (project / "datasets" / "huge.bin").write_bytes(b"\0" * 3_000_000)
    monkeypatch.setenv("ZENML_CODE_PACKAGE_MB", "2")
    store = LocalArtifactStore(str(tmp_path / "artifacts"))
    with pytest.raises(ConfigError, match=r"over the 2 MB limit.*datasets/ \(3 MB\)"):
        package_code(project, store)
    assert not (tmp_path / "artifacts" / "code").exists()  # nothing was written


def test_a_file_that_vanishes_while_packaging_is_left_out(tmp_path, monkeypatch):
    from zenml_core.pipeline import code

    project = _code_project(tmp_path)
    (project / "fleeting.tmp").write_text("here for a moment")
    listed = code.project_files(project)

    def vanished(root):
        (root / "fleeting.tmp").unlink()
        return listed

    monkeypatch.setattr(code, "project_files", vanished)
    with zipfile.ZipFile(io.BytesIO(code.build_archive(project))) as archive:
        assert archive.namelist() == ["m.py"]


def test_the_code_package_outside_a_project_holds_the_pipelines_own_folder(tmp_path, monkeypatch):
    """Run from some other folder, the package is the folder the step modules come from,
    not the working directory."""
    from zenml_core.pipeline.sources import code_root

    elsewhere = tmp_path / "shared-tmp"
    elsewhere.mkdir()
    (elsewhere / "other-venv").mkdir()
    monkeypatch.chdir(elsewhere)
    project = tmp_path / "mine"
    (project / "pkg").mkdir(parents=True)
    (project / "pkg" / "__init__.py").write_text("")
    (project / "pkg" / "own_steps.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(project))
    import importlib

    importlib.import_module("pkg.own_steps")
    try:
        assert code_root(["pkg.own_steps:thing"]) == project.resolve()
        # steps of installed distributions (zenml-core's own) need no package at all
        assert code_root(["zenml_core.testing.steps:numbers"]) is None
    finally:
        sys.modules.pop("pkg.own_steps", None)
        sys.modules.pop("pkg", None)
