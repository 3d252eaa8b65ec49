"""The gs:// artifact store against a GCS emulator on loopback, through the real client."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from zenml_core.artifacts import ArtifactStore
from zenml_core.artifacts.base import MANIFEST
from zenml_core.exceptions import ArtifactStoreError, ConfigError
from zenml_gcp.artifact_store import GCSArtifactStore
from zenml_loopback.gcs import GCSEmulator

BUCKET = "zenml-test"


@pytest.fixture(scope="module")
def gcs():
    with GCSEmulator() as emulator:
        saved = {k: os.environ.get(k) for k in emulator.environment()}
        os.environ.update(emulator.environment())
        emulator.create_bucket(BUCKET)
        yield emulator
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _blobs(prefix: str) -> list[str]:
    from google.cloud import storage

    return sorted(b.name for b in storage.Client().list_blobs(BUCKET, prefix=prefix))


def test_publish_read_and_seal(gcs, tmp_path):
    store = ArtifactStore(f"gs://{BUCKET}/unit")
    assert isinstance(store, GCSArtifactStore)
    uri = store.uri("p", "s", "out", "1")
    with store.staging() as folder:
        (folder / "a.txt").write_text("alpha")
        (folder / "sub").mkdir()
        (folder / "sub" / "b.txt").write_text("beta")
        digest = store.publish_folder(folder, uri)
    assert store.exists(uri) and store.fingerprint(uri) == digest
    assert _blobs("unit/p/s/out/1/") == [
        "unit/p/s/out/1/.zenml-artifact",
        "unit/p/s/out/1/a.txt",
        "unit/p/s/out/1/sub/b.txt",
    ]
    with store.reader(uri) as local:
        assert (local / "sub" / "b.txt").read_text() == "beta"
    with store.staging() as folder, pytest.raises(ArtifactStoreError, match="already published"):
        store.publish_folder(folder, uri)


def test_an_upload_cut_short_is_not_an_artifact(gcs):
    from google.cloud import storage

    store = GCSArtifactStore(f"gs://{BUCKET}/unit")
    uri = store.uri("half")
    storage.Client().bucket(BUCKET).blob("unit/half/data.json").upload_from_string("{}")
    assert not store.exists(uri)  # objects, but no seal
    with pytest.raises(ArtifactStoreError, match="cut short"), store.reader(uri):
        pass


def test_a_missing_bucket_is_named_before_a_run(gcs):
    with pytest.raises(ConfigError, match="bucket 'no-such-bucket' does not exist"):
        GCSArtifactStore("gs://no-such-bucket/x").check_access()
    with pytest.raises(ConfigError, match="root must look like gs://bucket/prefix"):
        GCSArtifactStore("s3://bucket")


def test_a_pipeline_runs_with_its_artifacts_in_gcs(gcs, tmp_path, monkeypatch):
    (tmp_path / ".zenml").mkdir()
    (tmp_path / "cloud_steps.py").write_text(
        textwrap.dedent("""
        from zenml_core import step

        @step
        def numbers(count: int = 4) -> list:
            return list(range(count))

        @step
        def total(values: list) -> int:
            return sum(values)
    """)
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import cloud_steps

    from zenml_core import Pipeline

    pipeline = Pipeline("on-gcs")
    values = pipeline.add_step(cloud_steps.numbers(count=5))
    pipeline.add_step(cloud_steps.total(values=values))
    result = pipeline.run(artifact_store=f"gs://{BUCKET}/runs")
    assert result.load("total") == 10
    uri = result.steps["total"].outputs["output"].uri
    assert uri.startswith(f"gs://{BUCKET}/runs/on-gcs/{result.run_id}/total/output/")
    assert f"{uri[len('gs://' + BUCKET + '/') :]}/{MANIFEST}" in _blobs("runs/on-gcs/")
    again = pipeline.run(artifact_store=f"gs://{BUCKET}/runs")
    assert {s.state for s in again.steps.values()} == {"cached"}
    sys.modules.pop("cloud_steps", None)


def test_csv_source_reads_a_gcs_object(gcs, tmp_path, monkeypatch):
    from google.cloud import storage

    from zenml_core import Pipeline
    from zenml_core.steps import CSVSource

    storage.Client().bucket(BUCKET).blob("inputs/d.csv").upload_from_string("a,b\n1,2\n3,4\n")
    (tmp_path / ".zenml").mkdir()
    monkeypatch.chdir(tmp_path)
    pipeline = Pipeline("csv-from-gcs")
    pipeline.add_step(CSVSource(path=f"gs://{BUCKET}/inputs/d.csv"))
    assert pipeline.run().load("csv_source").read().to_pydict() == {"a": [1, 3], "b": [2, 4]}


def test_importing_the_store_does_not_import_the_sdk():
    from zenml_core.testing import heavy_modules_imported

    assert heavy_modules_imported("import zenml_gcp.artifact_store") == []


def test_a_gcs_source_rewritten_is_a_new_fingerprint(gcs):
    """An object's generation and checksum identify it: rewriting it (even with the same
    bytes) changes the fingerprint a reading step's cache key holds; no download needed."""
    from google.cloud import storage

    from zenml_core.artifacts import source_fingerprint

    blob = storage.Client().bucket(BUCKET).blob("inputs/changing.csv")
    blob.upload_from_string("a\n1\n")
    first = source_fingerprint(f"gs://{BUCKET}/inputs/changing.csv")
    assert first.startswith("gs:") and first == source_fingerprint(
        f"gs://{BUCKET}/inputs/changing.csv"
    )
    blob.upload_from_string("a\n2\n")
    assert source_fingerprint(f"gs://{BUCKET}/inputs/changing.csv") != first
    storage.Client().bucket(BUCKET).blob("inputs/folder/x.csv").upload_from_string("a\n1\n")
    folder = source_fingerprint(f"gs://{BUCKET}/inputs/folder")
    assert folder.startswith("gs-folder:")
    assert source_fingerprint(f"gs://{BUCKET}/inputs/nothing-here") == "missing"


def test_a_loaded_dataset_outlives_the_download(gcs, tmp_path, monkeypatch):
    """result.load of a folder-backed value (a Dataset) from gs:// is still readable after:
    the store's download is temporary, so the value is kept in a copy of its own."""
    from zenml_core import Pipeline
    from zenml_core.steps import CSVSource

    (tmp_path / ".zenml").mkdir()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("a,label\n1,0\n2,1\n3,0\n")
    pipeline = Pipeline("dataset-on-gcs")
    pipeline.add_step(CSVSource(path=str(tmp_path / "d.csv"), label="label"))
    dataset = pipeline.run(artifact_store=f"gs://{BUCKET}/loaded").load("csv_source")
    assert dataset.num_rows() == 3 and dataset.read()["a"].to_pylist() == [1, 2, 3]
