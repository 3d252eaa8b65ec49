"""Standard data steps: CSV ingestion and splits, as Beam jobs on the local runners."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from zenml_core import Pipeline, hookimpl, step
from zenml_core.backends import LocalProcessingBackend
from zenml_core.exceptions import ConfigError, StepFailedError
from zenml_core.steps import CategoricalSplit, CSVSource, RandomSplit, StandardPreprocesser

IN_MEMORY = LocalProcessingBackend()
TWO_PROCESSES = LocalProcessingBackend(
    running_mode="multi_processing", num_workers=2, listen_on_all_interfaces=True
)


def write_csv(path, rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    table = pa.table(
        {
            "id": np.arange(rows),
            "x": rng.normal(size=rows),
            "y": rng.normal(size=rows),
            "colour": rng.choice(["red", "green", "blue"], size=rows),
            "label": rng.integers(0, 2, size=rows),
        }
    )
    pacsv.write_csv(table, path)
    return path


def run_single(project, step):
    pipeline = Pipeline("data")
    pipeline.add_step(step)
    return pipeline


@pytest.fixture
def big_csv(tmp_path_factory):
    # more rows than one Parquet file holds, so a Beam job gets several files to spread
    return write_csv(tmp_path_factory.mktemp("csv") / "big.csv", 300_000)


@pytest.mark.parametrize("backend", [IN_MEMORY, TWO_PROCESSES], ids=["in_memory", "2 processes"])
def test_rows_in_equal_rows_out_and_splits_are_deterministic(project, big_csv, backend):
    pipeline = Pipeline("counts")
    source = pipeline.add_step(CSVSource(path=str(big_csv), label="label"))
    pipeline.add_step(
        RandomSplit(data=source, split_map={"train": 0.8, "eval": 0.2}, seed=3).with_backend(
            backend
        )
    )
    pipeline.add_step(
        CategoricalSplit(
            data=source, column="colour", split_map={"warm": ["red"], "cold": ["green", "blue"]}
        ).with_backend(backend)
    )
    result = pipeline.run(enable_cache=False)
    ingested = result.load("csv_source")
    assert ingested.num_rows() == 300_000 and len(ingested.files()) == 2
    by_ratio = result.load("random_split")
    counts = {s: by_ratio.num_rows(s) for s in by_ratio.splits}
    assert sum(counts.values()) == 300_000
    assert abs(counts["eval"] / 300_000 - 0.2) < 0.01
    ids = {s: set(by_ratio.read(s, ["id"])["id"].to_pylist()) for s in by_ratio.splits}
    assert not ids["train"] & ids["eval"] and len(ids["train"] | ids["eval"]) == 300_000
    by_value = result.load("categorical_split")
    assert by_value.num_rows("warm") + by_value.num_rows("cold") == 300_000
    assert set(by_value.read("warm", ["colour"])["colour"].to_pylist()) == {"red"}
    # the same rows land in the same split whatever the runner mode
    reference = Pipeline("reference")
    src = reference.add_step(CSVSource(path=str(big_csv), label="label"))
    reference.add_step(RandomSplit(data=src, split_map={"train": 0.8, "eval": 0.2}, seed=3))
    again = reference.run(enable_cache=False).load("random_split")
    assert set(again.read("eval", ["id"])["id"].to_pylist()) == ids["eval"]


@pytest.mark.parametrize(
    ("content", "step_args", "message"),
    [
        ("a,label\n", {"label": "label"}, "has a header but no rows"),
        ("", {"label": "label"}, "is empty; it needs a header line and rows"),
        (
            "a,b\n1,2\n",
            {"label": "label"},
            "has no column(s) ['label']; its columns are ['a', 'b']",
        ),
        ("a,label\n1,0\nabc,1\n", {"label": "label", "columns": {"a": "float"}}, "column 'a' of"),
        ("a,label\n1,0\n", {"columns": {"a": "decimal"}}, "has type 'decimal'"),
    ],
)
def test_bad_csv_input_is_named(project, tmp_path, content, step_args, message):
    path = tmp_path / "in.csv"
    path.write_text(content)
    pipeline = run_single(project, CSVSource(path=str(path), **step_args))
    with pytest.raises(StepFailedError) as caught:
        pipeline.run()
    assert message in str(caught.value)


def test_mistyped_value_names_row_and_value(project, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("a,label\n1,0\n2,1\nabc,1\n")
    # "abc" is on the file's line 4: the third data row, under the header
    with pytest.raises(
        StepFailedError, match=r"should be float, but data row 3 \(line 4 of the file\) holds 'abc'"
    ):
        run_single(project, CSVSource(path=str(path), columns={"a": "float"})).run()


def test_a_stray_word_in_a_numeric_column_is_reported(project, tmp_path):
    from zenml_core.exceptions import DataWarning

    path = tmp_path / "in.csv"
    values = [str(i * 1.5) for i in range(30)]
    values[11] = "abc"
    path.write_text("a,label\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate(values)))
    expected = (
        r"'a' .* holds numbers but for 1 value\(s\), the first 'abc' at data row 12 \(line 13"
    )
    with pytest.warns(DataWarning, match=expected):
        run_single(project, CSVSource(path=str(path))).run()
    with pytest.raises(StepFailedError, match=expected):
        run_single(project, CSVSource(path=str(path), strict=True)).run(enable_cache=False)
    # a text column is text: no report
    path.write_text("a,label\n" + "".join(f"w{i},{i % 2}\n" for i in range(30)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        run_single(project, CSVSource(path=str(path))).run()


def test_a_csv_is_read_whole_without_a_last_line_end_and_gzipped(project, tmp_path):
    import gzip

    content = "a,city,label\n1.5,Oslo,0\n2,Rome,1\n-3,Oslo,1"  # no line end after the last row
    plain, zipped = tmp_path / "in.csv", tmp_path / "in.csv.gz"
    plain.write_text(content)
    zipped.write_bytes(gzip.compress(content.encode()))
    for path in (plain, zipped):
        dataset = (
            run_single(project, CSVSource(path=str(path), label="label")).run().load("csv_source")
        )
        assert dataset.read().equals(pacsv.read_csv(plain)), path


def test_missing_file_is_named(project, tmp_path):
    with pytest.raises(StepFailedError, match="no file"):
        run_single(project, CSVSource(path=str(tmp_path / "nope.csv"))).run()


@pytest.mark.parametrize(
    ("split_map", "message"),
    [
        ({"train": 0.7, "eval": 0.2}, "add up to 0.9, not 1"),
        ({"train": 1.2, "eval": -0.2}, "every ratio must be above 0"),
        ({}, "needs at least one split"),
        ({"train set": 1.0}, "must be letters, digits"),
    ],
)
def test_bad_split_ratios_are_refused_when_the_step_is_made(project, tmp_path, split_map, message):
    pipeline = Pipeline("bad-split")
    pipeline.add_step(CSVSource(path=str(write_csv(tmp_path / "d.csv", 20))))
    with pytest.raises(ConfigError, match=message):  # before any step has run
        RandomSplit(split_map=split_map)
    with pytest.raises(ConfigError, match="in both 'a' and 'b'"):
        CategoricalSplit(column="c", split_map={"a": ["x"], "b": ["x"]})


def test_a_label_that_is_not_the_source_s_is_refused(project, tmp_path):
    csv = write_csv(tmp_path / "d.csv", 40)
    pipeline = Pipeline("labels")
    src = pipeline.add_step(CSVSource(path=str(csv), label="y"))
    split = pipeline.add_step(RandomSplit(data=src, split_map={"train": 0.5, "eval": 0.5}))
    pipeline.add_step(StandardPreprocesser(data=split, label="x"))
    with pytest.raises(StepFailedError, match="the data source says its label is 'y'"):
        pipeline.run()
    agreeing = Pipeline("labels-agree")
    src = agreeing.add_step(CSVSource(path=str(csv), label="y"))
    split = agreeing.add_step(RandomSplit(data=src, split_map={"train": 0.5, "eval": 0.5}))
    agreeing.add_step(StandardPreprocesser(data=split))  # the source's label is the default
    result = agreeing.run()
    assert result.load("standard_preprocesser", "transform")["label"] == "y"


def test_categorical_split_unmapped_values(project, tmp_path):
    csv = write_csv(tmp_path / "d.csv", 50)
    pipeline = Pipeline("cat")
    src = pipeline.add_step(CSVSource(path=str(csv)))
    pipeline.add_step(CategoricalSplit(data=src, column="colour", split_map={"a": ["red"]}))
    with pytest.raises(StepFailedError, match=r"values \['blue', 'green'\] of column 'colour'"):
        pipeline.run()
    with_default = Pipeline("cat-default")
    src = with_default.add_step(CSVSource(path=str(csv)))
    with_default.add_step(
        CategoricalSplit(data=src, column="colour", split_map={"a": ["red"]}, default="rest")
    )
    result = with_default.run().load("categorical_split")
    assert result.splits == ["a", "rest"]
    assert result.num_rows("a") + result.num_rows("rest") == 50


@pytest.mark.parametrize("backend", [IN_MEMORY, TWO_PROCESSES], ids=["in_memory", "2 processes"])
def test_preprocesser_keeps_every_row_and_standardises_on_train(project, big_csv, backend):
    from zenml_core.steps import StandardPreprocesser
    from zenml_core.steps.preprocess import apply_transform

    pipeline = Pipeline("prep")
    source = pipeline.add_step(CSVSource(path=str(big_csv), label="label"))
    split = pipeline.add_step(RandomSplit(data=source, split_map={"train": 0.8, "eval": 0.2}))
    pipeline.add_step(
        StandardPreprocesser(data=split, label="label", features=["x", "y", "colour"]).with_backend(
            backend
        )
    )
    result = pipeline.run(enable_cache=False)
    raw = result.load("random_split")
    out = result.load("standard_preprocesser", "transformed")
    for name in ("train", "eval"):
        assert out.num_rows(name) == raw.num_rows(name)
    train = out.read("train")
    # numeric features, then one-hot columns in vocabulary order (most frequent first), label
    assert train.column_names[:2] == ["x", "y"] and train.column_names[-1] == "label"
    assert set(train.column_names[2:5]) == {"colour=red", "colour=green", "colour=blue"}
    x = train["x"].to_numpy()
    assert abs(x.mean()) < 1e-3 and abs(x.std() - 1) < 1e-3  # fitted on train
    onehot = sum(train[f"colour={c}"].to_numpy() for c in ("red", "green", "blue"))
    assert set(onehot.tolist()) == {1.0}
    statistics = result.load("standard_preprocesser", "statistics")
    assert statistics["train"]["rows"] == raw.num_rows("train")
    assert statistics["eval"]["numeric"]["x"]["count"] == raw.num_rows("eval")
    # serving applies the saved transform to raw rows and gets the same features
    transform = result.load("standard_preprocesser", "transform")
    raw_eval = raw.read("eval").slice(0, 5)
    served = apply_transform(raw_eval, transform)
    assert served.column_names[-1] == "label"
    assert served["x"].to_pylist() == pytest.approx(
        (
            (raw_eval["x"].to_numpy() - transform["numeric"]["x"][0]) / transform["numeric"]["x"][1]
        ).tolist(),
        rel=1e-6,
    )


def test_preprocesser_encodes_a_string_label_and_refuses_bad_columns(project, tmp_path):
    from zenml_core.steps import StandardPreprocesser

    path = tmp_path / "s.csv"
    path.write_text("v,kind\n" + "".join(f"{i},{'cat' if i % 3 else 'dog'}\n" for i in range(60)))
    pipeline = Pipeline("labels")
    source = pipeline.add_step(CSVSource(path=str(path), label="kind"))
    split = pipeline.add_step(RandomSplit(data=source, split_map={"train": 0.5, "eval": 0.5}))
    pipeline.add_step(StandardPreprocesser(data=split, label="kind"))
    result = pipeline.run()
    transform = result.load("standard_preprocesser", "transform")
    assert transform["classes"] == ["cat", "dog"]
    labels = result.load("standard_preprocesser", "transformed").read("train")["label"]
    assert set(labels.to_pylist()) <= {0, 1}
    bad = Pipeline("labels-bad")
    source = bad.add_step(CSVSource(path=str(path)))
    split = bad.add_step(RandomSplit(data=source, split_map={"train": 0.5, "eval": 0.5}))
    bad.add_step(StandardPreprocesser(data=split, label="species"))
    with pytest.raises(StepFailedError, match="no label column 'species'"):
        bad.run()


def test_csv_from_a_file_uri_and_a_clear_error_for_unknown_schemes(project, tmp_path):
    csv = write_csv(tmp_path / "d.csv", 10)
    result = run_single(project, CSVSource(path=f"file://{csv}")).run()
    assert result.load("csv_source").num_rows() == 10
    with pytest.raises(StepFailedError, match="No artifact_store backend named 'nostore'"):
        run_single(project, CSVSource(path="nostore://bucket/d.csv")).run()


def test_a_csv_edited_in_place_is_not_served_from_the_cache(project, tmp_path):
    """The source file's content is part of the cache key: an edit re-runs the source and
    everything after it; a touch (same content) keeps the cache."""
    import os

    path = tmp_path / "data.csv"
    write_csv(path, 569)

    def run():
        pipeline = Pipeline("edited")
        source = pipeline.add_step(CSVSource(path=str(path), label="label"))
        pipeline.add_step(RandomSplit(data=source, split_map={"train": 0.7, "eval": 0.3}))
        return pipeline.run()

    first = run()
    assert {s.state for s in run().steps.values()} == {"cached"}
    os.utime(path)  # touched, content unchanged: still the same data
    assert {s.state for s in run().steps.values()} == {"cached"}
    write_csv(path, 369)  # edited in place
    edited = run()
    assert {s.state for s in edited.steps.values()} == {"completed"}
    assert first.load("csv_source").num_rows() == 569
    assert edited.load("csv_source").num_rows() == 369
    split = edited.load("random_split")
    assert sum(split.num_rows(s) for s in split.splits) == 369
    path.unlink()
    with pytest.raises(StepFailedError, match="no file"):  # gone: never a stale cache hit
        run()


@step(reads=["folder"])
def count_files(folder: str) -> int:
    from pathlib import Path

    return sum(1 for p in Path(folder).iterdir() if p.is_file())


def test_a_function_step_declares_the_outside_data_it_reads(project, tmp_path):
    from zenml_core.exceptions import ConfigError

    data = tmp_path / "inbox"
    data.mkdir()
    (data / "a.txt").write_text("a")

    def run():
        pipeline = Pipeline("inbox")
        pipeline.add_step(count_files(folder=str(data)))
        return pipeline.run()

    assert run().load("count_files") == 1
    assert run().steps["count_files"].state == "cached"
    (data / "b.txt").write_text("b")
    again = run()
    assert again.steps["count_files"].state == "completed" and again.load("count_files") == 2
    with pytest.raises(ConfigError, match=r"\['nowhere'\] are not parameters"):

        @step(reads=["nowhere"])
        def broken(folder: str) -> int:
            return 0


@dataclass
class _ElsewhereBackend(LocalProcessingBackend):
    """A processing backend whose workers do not see the step's folders: they read and write
    another place (as Dataflow's read gs://), which StepContext.beam_job copies through."""

    location: str = ""

    def data_location(self, job_name):
        return f"{self.location}/{job_name}"


class _ElsewherePlugin:
    @hookimpl
    def register_processing_backends(self, register):
        register("elsewhere", _ElsewhereBackend)


def test_steps_on_workers_that_see_another_place_keep_every_row(
    project, big_csv, tmp_path, zenml_plugins
):
    zenml_plugins.register(_ElsewherePlugin(), name="elsewhere")
    elsewhere = _ElsewhereBackend(location=str(tmp_path / "workers-see"))
    results = {}
    for name, backend in (("elsewhere", elsewhere), ("here", None)):
        pipeline = Pipeline(name)
        source = pipeline.add_step(CSVSource(path=str(big_csv), label="label"))
        split = RandomSplit(data=source, split_map={"train": 0.8, "eval": 0.2}, seed=3)
        split = pipeline.add_step(split if backend is None else split.with_backend(backend))
        prep = StandardPreprocesser(data=split, label="label")
        pipeline.add_step(prep if backend is None else prep.with_backend(backend))
        results[name] = pipeline.run(enable_cache=False)
    for name, output in (("random_split", "output"), ("standard_preprocesser", "transformed")):
        got, want = (results[n].load(name, output) for n in ("elsewhere", "here"))
        assert got.splits == want.splits
        for split in want.splits:
            assert got.read(split).sort_by("id").equals(want.read(split).sort_by("id"))
    assert list((tmp_path / "workers-see").rglob("*.parquet")) == []  # staged data removed


def test_the_standard_path_equals_a_pandas_reference(project, big_csv):
    """CSV -> RandomSplit -> StandardPreprocesser gives, row for row, what the same definition
    written in pandas gives: the split by a hash of each row, the standardisation fitted on
    train, the one-hot columns (the data path's speed must never change its output)."""
    import pandas as pd

    pipeline = Pipeline("reference-path")
    source = pipeline.add_step(CSVSource(path=str(big_csv), label="label"))
    split = pipeline.add_step(
        RandomSplit(data=source, split_map={"train": 0.8, "eval": 0.2}, seed=7)
    )
    pipeline.add_step(StandardPreprocesser(data=split, features=["id", "x", "y", "colour"]))
    result = pipeline.run(enable_cache=False)
    out = result.load("standard_preprocesser", "transformed")

    frame = pd.read_csv(big_csv, engine="pyarrow")
    key = f"{7:016d}"[-16:]
    position = pd.util.hash_pandas_object(frame, index=False, hash_key=key).to_numpy() / 2.0**64
    expected_splits = {"train": frame[position < 0.8], "eval": frame[position >= 0.8]}
    train = expected_splits["train"]
    numeric = ["id", "x", "y"]
    means, stds = train[numeric].mean(), train[numeric].std(ddof=0)
    vocabulary = train["colour"].value_counts().index
    assert sorted(out.splits) == ["eval", "train"]
    for name, part in expected_splits.items():
        got = out.read(name).to_pandas()
        # the ids are standardised: restore them to match rows
        got["row"] = np.rint(got["id"] * stds["id"] + means["id"]).astype(np.int64)
        got = got.sort_values("row").reset_index(drop=True)
        part = part.sort_values("id").reset_index(drop=True)
        assert got["row"].tolist() == part["id"].tolist()
        for column in ("x", "y"):
            expected = ((part[column] - means[column]) / stds[column]).to_numpy(np.float32)
            np.testing.assert_allclose(got[column].to_numpy(), expected, rtol=1e-5, atol=1e-6)
        for value in vocabulary:
            expected = (part["colour"] == value).to_numpy(np.float32)
            np.testing.assert_array_equal(got[f"colour={value}"].to_numpy(), expected)
        assert got["label"].tolist() == part["label"].tolist()


def test_a_large_csv_is_read_as_a_stream_with_the_types_of_the_whole_file(project, tmp_path):
    """Past the first chunk a column may prove wider than the chunk's inference: an int column
    holds a float, a number column a word. The dataset has the whole file's types, and bad
    values far down the file are named by their row."""
    from zenml_core.exceptions import DataWarning
    from zenml_core.steps.csv_source import BLOCK_BYTES, CHUNK_BYTES

    rows = 1_800_000
    lines = ["count,amount,code,label"]
    lines += [f"{i},{i % 97},{i % 13},{i % 2}" for i in range(rows)]
    lines[-2] = f"{rows - 2},1.5,7,0"  # amount: int64 in the first block, double overall
    lines[-1] = f"{rows - 1},3,x7,1"  # code: numbers but for one word
    path = tmp_path / "large.csv"
    path.write_text("\n".join(lines) + "\n")
    size = path.stat().st_size
    assert size > 1.5 * max(BLOCK_BYTES, CHUNK_BYTES), size  # the odd values come later
    with pytest.warns(DataWarning, match=rf"'code' .* the first 'x7' at data row {rows}\b"):
        result = run_single(project, CSVSource(path=str(path), label="label")).run()
    dataset = result.load("csv_source")
    whole = pacsv.read_csv(path)
    assert dataset.schema() == whole.schema
    assert dataset.num_rows() == rows
    assert dataset.read().equals(whole)
    with pytest.raises(
        StepFailedError,
        match=rf"should be int, but data row {rows} \(line {rows + 1} of the file\) holds 'x7'",
    ):
        run_single(project, CSVSource(path=str(path), columns={"code": "int"})).run()


def test_threaded_map_gives_every_output_once_and_fails_with_its_element_s_error():
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    from zenml_core.steps.threaded import threaded_map, threads

    def options():
        return PipelineOptions(["--runner=FnApiRunner", "--direct_running_mode=in_memory"])

    count = 5 * threads() + 3  # more than are ever in flight, and not a multiple of it
    with beam.Pipeline(options=options()) as pipeline:
        offset = pipeline | "offset" >> beam.Create([1000])
        got = (
            pipeline
            | beam.Create(range(count))
            | beam.Reshuffle()
            | threaded_map(lambda x, o: x + o, beam.pvalue.AsSingleton(offset))
        )
        assert_that(got, equal_to([x + 1000 for x in range(count)]))

    def refuse_seven(x: int) -> int:
        if x == 7:
            raise ValueError("element 7 is bad")
        return x

    with (
        pytest.raises(Exception, match="element 7 is bad"),
        beam.Pipeline(options=options()) as pipeline,
    ):
        _ = pipeline | beam.Create(range(count)) | threaded_map(refuse_seven)
