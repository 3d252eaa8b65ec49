"""The seed's training pipeline end to end: the quickstart, trainer and evaluator errors, and
the run's HTML report as Chromium renders it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import chromium  # tests/support
import pytest

from zenml_core.exceptions import ConfigError, PipelineError, StepFailedError
from zenml_core.report import REPORT_FILE, write_report
from zenml_core.steps import (
    CSVSource,
    Dataset,
    Evaluator,
    RandomSplit,
    StandardPreprocesser,
    TFFeedForwardTrainer,
    TrainingPipeline,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def pipeline_on(csv: Path, label: str, trainer: TFFeedForwardTrainer, name: str = "training"):
    pipeline = TrainingPipeline(name)
    pipeline.add_datasource(CSVSource(path=str(csv), label=label))
    pipeline.add_split(RandomSplit(split_map={"train": 0.75, "eval": 0.25}, seed=1))
    pipeline.add_preprocesser(StandardPreprocesser(label=label))
    pipeline.add_trainer(trainer)
    pipeline.add_evaluator(Evaluator())
    return pipeline


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    """The quickstart as a newcomer runs it, twice, in a fresh project."""
    project = tmp_path_factory.mktemp("quickstart")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    subprocess.run(
        [sys.executable, "-m", "zenml_core", "init"],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    command = [sys.executable, str(EXAMPLES / "quickstart" / "pipeline.py")]
    runs = [
        subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    return project, runs


def test_quickstart_trains_evaluates_and_is_cached_the_second_time(quickstart_run):
    project, (first, second) = quickstart_run
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"metadata:  {project / '.zenml' / 'metadata.db'}" in first.stdout
    overall = json.loads(first.stdout.split("eval:")[1].splitlines()[0])
    assert overall["examples"] > 500 and overall["accuracy"] > 0.7 and overall["auc"] > 0.65
    for step in (
        "csv_source",
        "random_split",
        "standard_preprocesser",
        "tf_feed_forward_trainer",
        "evaluator",
    ):
        assert f"[   done] {step}" in first.stderr
        assert f"[ cached] {step}" in second.stderr
    # long steps say how far they are; libraries' notices stay in the run's log
    assert "random_split                 2,000 rows" in first.stderr
    assert "15/15 epochs" in first.stderr
    assert "FutureWarning" not in first.stderr and "apitools" not in first.stderr
    assert "  log:       " in first.stdout
    assert second.returncode == 0
    assert second.stdout.split("eval:")[1] == first.stdout.split("eval:")[1]
    # artifacts/PIPELINE/RUN/STEP/OUTPUT/UNIQUE: the one run that trained
    (output,) = (project / ".zenml" / "artifacts" / "quickstart").glob(
        "*/tf_feed_forward_trainer/output/*"
    )
    model = output / "data"
    assert (model / "model.keras").is_file() and (
        model / "saved_model" / "saved_model.pb"
    ).is_file()


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.steps: list[str] = []
        self.split_tables: list[str] = []
        self.metric_rows = 0
        self.edges: list[tuple[str, str]] = []
        self.svgs = 0
        self.links: list[str] = []
        self._in_metrics = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "path" and attributes.get("class") == "edge":
            self.edges.append((attributes["data-from"], attributes["data-to"]))
        if tag == "svg":
            self.svgs += 1
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        if "id" in attributes:
            self.ids.add(attributes["id"])
            self._in_metrics = attributes["id"] == "metrics"
        if tag == "g" and attributes.get("class") == "step":
            self.steps.append(attributes["data-state"])
        if tag == "table" and attributes.get("class") == "numeric":
            self.split_tables.append(attributes["data-split"])
        if tag == "tr" and self._in_metrics:
            self.metric_rows += 1

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_metrics = False


def test_run_report_renders_completely_in_chromium(quickstart_run, tmp_path):
    project, (first, second) = quickstart_run
    report = Path(first.stdout.split("report:")[1].split()[0])
    page = _Page()
    page.feed(chromium.dom(report))
    assert {"dag", "steps", "metrics", "summary"} <= page.ids
    # the plots and what a data scientist looks for
    plots = {"training", "roc", "confusion", "features", "class-balance", "drift"}
    assert plots | {"parameters", "hyperparameters"} <= page.ids
    assert page.svgs >= 1 + 1 + 2 + 6 + 1  # DAG, curves, ROC and confusion, 6 features, balance
    assert page.steps == ["completed"] * 5
    assert sorted(page.edges) == sorted([
        ("csv_source", "random_split"), ("random_split", "standard_preprocesser"),
        ("standard_preprocesser", "tf_feed_forward_trainer"), ("random_split", "evaluator"),
        ("standard_preprocesser", "evaluator"), ("tf_feed_forward_trainer", "evaluator"),
    ])  # fmt: skip
    for link in page.links:  # every artifact link leads to the artifact's folder
        assert (report.parent / link).is_dir(), link
    assert len(page.links) == 7
    assert sorted(page.split_tables) == ["eval", "train"]
    assert page.metric_rows == 1 + 1 + 3  # header, overall, one row per plan
    assert chromium.console_messages(report) == []
    size = report.stat().st_size
    assert size < 600_000, size  # one self-contained page: about 200 kB for the quickstart
    shot = chromium.screenshot(report, tmp_path / "report.png", size="1200,2600")
    assert shot.stat().st_size > 100_000  # a rendered page with its plots, not a blank one
    # the CLI writes the report of the cached run and prints where it is
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    cached_run = second.stdout.split("run ")[1].split(":")[0]
    shown = subprocess.run(
        [sys.executable, "-m", "zenml_core", "runs", "report", cached_run],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    cached_page = _Page()
    cached_page.feed(chromium.dom(Path(shown.stdout.strip())))
    assert cached_page.steps == ["cached"] * 5
    # and `zenml runs show` prints the evaluation
    show = subprocess.run(
        [sys.executable, "-m", "zenml_core", "runs", "show", cached_run],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    evaluation = show.stdout.split("evaluation (evaluator):")[1].splitlines()
    assert evaluation[1].split()[:3] == ["examples", "accuracy", "auc"]
    assert [line.split()[0] for line in evaluation[3:]] == [
        "overall",
        "plan=basic",
        "plan=premium",
        "plan=standard",
    ]


def test_one_class_is_refused_naming_the_label(project, tmp_path):
    csv = tmp_path / "one.csv"
    csv.write_text("x,y\n" + "".join(f"{i},1\n" for i in range(40)))
    pipeline = pipeline_on(csv, "y", TFFeedForwardTrainer(epochs=1, task="classification"))
    with pytest.raises(StepFailedError, match="the label 'y' has only one class"):
        pipeline.run()


def test_a_numeric_label_with_many_values_is_regressed(project, tmp_path):
    csv = tmp_path / "reg.csv"
    csv.write_text("x,y\n" + "".join(f"{i / 10},{i / 5 + 1.5}\n" for i in range(200)))
    result = pipeline_on(csv, "y", TFFeedForwardTrainer(layers=[8], epochs=5)).run()
    metrics = result.load("evaluator")
    assert metrics["task"] == "regression"
    assert set(metrics["overall"]) == {"examples", "mae", "rmse"}
    assert metrics["overall"]["rmse"] >= metrics["overall"]["mae"] > 0


def test_bad_trainer_parameters_and_slots(project, tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    for bad in ({"layers": [0]}, {"epochs": -1}, {"learning_rate": 0.0}):
        with pytest.raises(ConfigError, match="must be"):  # made, not after three steps ran
            TFFeedForwardTrainer(**bad)
    with pytest.raises(ConfigError, match="is evaluated on"):
        TFFeedForwardTrainer(validation_split="eval")
    with pytest.raises(ConfigError, match="validation_fraction"):
        TFFeedForwardTrainer(validation_fraction=1.0)
    with pytest.raises(ConfigError, match="names 'colour', but the data has no such column"):
        pipeline = TrainingPipeline("slices")
        pipeline.add_datasource(CSVSource(path=str(csv)))
        pipeline.add_split(RandomSplit(split_map={"train": 0.5, "eval": 0.5}))
        pipeline.add_preprocesser(StandardPreprocesser(label="y"))
        pipeline.add_trainer(TFFeedForwardTrainer(epochs=1))
        pipeline.add_evaluator(Evaluator(slices=["colour"]))
        pipeline.run()
    with pytest.raises(PipelineError, match="add_trainer needs a preprocesser first"):
        TrainingPipeline("order").add_trainer(TFFeedForwardTrainer())


def test_report_of_a_run_is_written_once(project, tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    result = pipeline_on(csv, "y", TFFeedForwardTrainer(epochs=1)).run()
    uri = write_report(result.run_id, result.metadata_store, result.artifact_store)
    assert write_report(result.run_id, result.metadata_store, result.artifact_store) == uri
    assert (Path(uri) / REPORT_FILE).read_text().startswith("<!doctype html>")


def test_a_string_label_with_three_classes_gives_a_softmax_classifier(project, tmp_path):
    import random

    rng = random.Random(5)
    rows = []
    for i in range(300):
        kind = ["small", "medium", "large"][i % 3]
        rows.append(f"{rng.gauss(i % 3 * 3, 0.5):.3f},{kind}\n")
    csv = tmp_path / "sizes.csv"
    csv.write_text("size,kind\n" + "".join(rows))
    trainer = TFFeedForwardTrainer(layers=[16], epochs=40, learning_rate=0.01)
    result = pipeline_on(csv, "kind", trainer).run()
    model = result.load("tf_feed_forward_trainer")
    assert model.info["classes"] == ["large", "medium", "small"]
    assert model.load().output_shape == (None, 3)
    metrics = result.load("evaluator")["overall"]
    assert set(metrics) == {"examples", "accuracy"} and metrics["accuracy"] > 0.8


def test_validation_curves_never_come_from_the_evaluated_split(project, tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("x,y\n" + "".join(f"{i},{int(i % 7 > 2)}\n" for i in range(200)))
    result = pipeline_on(csv, "y", TFFeedForwardTrainer(epochs=2)).run()
    steps = {s.step: s for s in result.metadata_store.get_run(result.run_id).steps}
    store = result.artifact_store
    with store.reader(steps["tf_feed_forward_trainer"].outputs["output"].uri) as folder:
        info = json.loads((folder / "data" / "model.json").read_text())
    with store.reader(steps["random_split"].outputs["output"].uri) as folder:
        train_rows = Dataset(folder / "data").num_rows("train")
    assert info["validated_on"] == {"split": "train", "fraction": 0.1, "seed": 0}
    # a tenth of the train split is held out for the val_ curves: trained on the rest
    assert info["trained_on"] == {"split": "train", "rows": train_rows - round(train_rows * 0.1)}
    assert len(info["history"]["val_accuracy"]) == 2


def test_the_console_check_sees_a_page_s_errors(tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text("<!doctype html><p>x</p><script>console.error('probe-error')</script>")
    assert any("probe-error" in line for line in chromium.console_messages(probe))


def test_compare_and_index_pages_put_runs_side_by_side(quickstart_run, tmp_path):
    project = quickstart_run[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    faster = EXAMPLES / "quickstart" / "pipeline.py"
    script = tmp_path / "twenty.py"
    script.write_text(
        faster.read_text()
        .replace("epochs=15", "epochs=20")
        .replace("HERE = Path(__file__).parent", f"HERE = Path({str(faster.parent)!r})")
    )
    subprocess.run([sys.executable, str(script)], cwd=project, env=env, check=True,
                   capture_output=True)  # fmt: skip

    def zenml(*args):
        command = [sys.executable, "-m", "zenml_core", *args]
        done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    runs = [r["run_id"] for r in json.loads(zenml("runs", "list", "--json"))]
    twenty, fifteen = runs[0], runs[-1]
    shown = zenml("runs", "compare", twenty, fifteen)
    rows = {line.split()[0]: line.split()[1:] for line in shown.splitlines()[2:] if line.strip()}
    assert rows["tf_feed_forward_trainer.epochs"] == ["20", "15"]  # what tells them apart
    assert "accuracy" in rows and "auc" in rows
    compared = json.loads(zenml("runs", "compare", twenty, fifteen, "--json"))
    assert compared["differing_parameters"] == ["tf_feed_forward_trainer.epochs"]
    page = Path(shown.strip().splitlines()[-1])
    parsed = _Page()
    parsed.feed(chromium.dom(page))
    assert {"comparison", "curves", "roc"} <= parsed.ids
    assert [link.split("/")[-3] for link in parsed.links] == [twenty, fifteen]
    assert all((page.parent / link).is_file() for link in parsed.links)
    assert chromium.console_messages(page) == []
    index = Path(zenml("runs", "index").strip())
    listed = _Page()
    listed.feed(chromium.dom(index))
    assert "runs" in listed.ids and len(listed.links) == len(runs)
    assert all((index.parent / link).is_file() for link in listed.links)  # reports written
    assert "tf_feed_forward_trainer.epochs=20" in index.read_text()
    chromium.screenshot(index, tmp_path / "index.png")


def test_a_failed_run_s_report_shows_its_error_and_skipped_steps(project, tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    broken = TrainingPipeline("broken")
    broken.add_datasource(CSVSource(path=str(csv), label="y"))
    broken.add_split(RandomSplit(split_map={"train": 0.5, "eval": 0.5}))
    broken.add_preprocesser(StandardPreprocesser(label="x"))  # not the source's label
    broken.add_trainer(TFFeedForwardTrainer(epochs=1))
    broken.add_evaluator(Evaluator())
    with pytest.raises(StepFailedError) as raised:
        broken.run()
    result = raised.value.result
    uri = write_report(result.run_id, result.metadata_store, result.artifact_store)
    report = Path(uri) / REPORT_FILE
    page = _Page()
    page.feed(chromium.dom(report))
    assert "error" in page.ids
    text = report.read_text()
    assert "the data source says its label is" in text
    assert page.steps == ["completed", "completed", "failed", "skipped", "skipped"]
    assert "Skipped: tf_feed_forward_trainer, evaluator" in text


def test_columns_the_steps_name_are_checked_before_any_step_runs(project, tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("x,colour,y\n" + "".join(f"{i},c{i % 3},{i % 2}\n" for i in range(40)))
    pipeline = TrainingPipeline("columns")
    pipeline.add_datasource(CSVSource(path=str(csv), label="y"))
    pipeline.add_split(RandomSplit(split_map={"train": 0.5, "eval": 0.5}))
    pipeline.add_preprocesser(StandardPreprocesser(features=["x", "size"]))
    pipeline.add_trainer(TFFeedForwardTrainer(epochs=1))
    pipeline.add_evaluator(Evaluator(slices=["shade"]))
    with pytest.raises(ConfigError) as raised:
        pipeline.run()
    message = str(raised.value)
    assert "standard_preprocesser(features=...) names 'size'" in message
    assert "evaluator(slices=...) names 'shade'" in message
    assert "['x', 'colour', 'y']" in message
    from zenml_core.kinds import KINDS
    from zenml_core.repository import default_components

    store = KINDS["metadata_store"][1].from_config(default_components()["metadata_store"])
    assert store.list_runs("columns") == []  # nothing ran, nothing was recorded
