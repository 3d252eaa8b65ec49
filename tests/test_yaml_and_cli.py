"""Pipelines as YAML, `zenml run`, `zenml init` and `zenml runs`, and malformed specs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import demo_steps
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zenml_core import Pipeline
from zenml_core.exceptions import PipelineError
from zenml_core.pipeline.spec import PipelineSpec, RunSpec

SUPPORT = Path(__file__).parent / "support"


def zenml(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    env["PYTHONPATH"] = str(SUPPORT)
    return subprocess.run(
        [sys.executable, "-m", "zenml_core", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_python_and_yaml_round_trip(project):
    pipeline = demo_steps.chain()
    pipeline.steps[1].with_cache(False)
    text = pipeline.to_yaml()
    assert yaml.safe_load(text)["steps"][1] == {
        "name": "double",
        "source": "demo_steps:double",
        "params": {"factor": 3},
        "inputs": {"x": "produce.output"},
        "backend": None,
        "enable_cache": False,
        "settings": {},
    }
    again = Pipeline.from_yaml(text)
    assert again.to_yaml() == text
    assert again.run().load("describe") == "describe saw 18"


def test_zenml_init_run_and_runs_show(tmp_path):
    assert zenml(tmp_path, "init").returncode == 0
    (tmp_path / "pipeline.yaml").write_text(demo_steps.chain().to_yaml())
    first = zenml(tmp_path, "run", "pipeline.yaml")
    assert first.returncode == 0, first.stderr
    assert "[   done] produce" in first.stderr and "[   done] describe" in first.stderr
    second = zenml(tmp_path, "run", "pipeline.yaml")
    assert "[ cached] produce" in second.stderr and "[ cached] describe" in second.stderr
    listed = json.loads(zenml(tmp_path, "runs", "list", "--json").stdout)
    assert [r["status"] for r in listed] == ["completed", "completed"]
    shown = zenml(tmp_path, "runs", "show", listed[0]["run_id"])
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"run {listed[0]['run_id']}  pipeline chain  completed")
    assert lines[1].split()[:3] == ["STEP", "STATE", "DURATION"]
    assert [line.split()[:2] for line in lines[3:6]] == [
        ["produce", "cached"],
        ["double", "cached"],
        ["describe", "cached"],
    ]
    first_run = listed[1]["run_id"]  # the cached run shows the outputs the first one wrote
    assert str(tmp_path / ".zenml" / "artifacts" / "chain" / first_run / "double") in shown.stdout
    detail = json.loads(zenml(tmp_path, "runs", "show", listed[1]["run_id"], "--json").stdout)
    assert [s["state"] for s in detail["steps"]] == ["completed"] * 3
    assert detail["steps"][2]["outputs"]["output"]["data_type"] == "json"


def test_zenml_run_reports_a_failed_step(tmp_path):
    zenml(tmp_path, "init")
    flag = tmp_path / "flag"
    flag.write_text("x")
    (tmp_path / "p.yaml").write_text(demo_steps.resumable(str(flag)).to_yaml())
    failed = zenml(tmp_path, "run", "p.yaml")
    assert failed.returncode == 1
    assert "[ FAILED] fragile" in failed.stderr and "[skipped] total" in failed.stderr
    assert "completed steps are reused from the cache" in failed.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: p\nsteps: []", "needs a non-empty list of 'steps'"),
        ("name: 'has space'\nsteps: [{name: a, source: 'm:f'}]", "Pipeline 'name' must be"),
        ("name: p\nsteps: [{name: a, source: nocolon}]", "'source' must be 'package.module:Name'"),
        ("name: p\nsteps: [{name: a, source: 'm:f', inputs: {x: nodot}}]", "must be 'step.output'"),
        (
            "name: p\nsteps: [{name: a, source: 'm:f', inputs: {x: b.output}}]",
            "there is no step 'b'",
        ),
        (
            "name: p\nsteps: [{name: a, source: 'm:f'}, {name: a, source: 'm:g'}]",
            "Two steps are named",
        ),
        ("name: p\nsteps: [{name: a, source: 'm:f', colour: red}]", "Unknown key(s) ['colour']"),
        (
            "name: p\nsteps: [{name: a, source: 'm:f', inputs: {x: b.o}}, "
            "{name: b, source: 'm:f', inputs: {x: a.o}}]",
            "The steps form a cycle: a -> b -> a",
        ),
        (
            "name: p\nsteps: [{name: a, source: 'nowhere_module:f'}]",
            "Cannot import 'nowhere_module'",
        ),
        ("name: p\nsteps: [{name: a, source: 'demo_steps:nothing'}]", "has no 'nothing'"),
        ("name: p\nsteps: [{name: a, source: 'demo_steps:chain'}]", "is not a step"),
        (
            "name: p\nsteps: [{name: a, source: 'demo_steps:produce', params: {n: x}}]",
            "parameter 'n' must be int",
        ),
        ("[unclosed", "does not parse"),
    ],
)
def test_malformed_pipeline_files_are_explained(text, message):
    with pytest.raises(Exception) as caught:
        Pipeline.from_yaml(text)
    assert message in str(caught.value)
    assert caught.type.__module__ == "zenml_core.exceptions"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "steps",
                    "source",
                    "inputs",
                    "params",
                    "run_id",
                    "pipeline",
                    "version",
                    "code",
                    "x",
                    "a.b",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=json_values)
def test_any_malformed_run_spec_gives_a_pipeline_error(data):
    text = json.dumps(data)
    with contextlib.suppress(PipelineError):  # any other exception fails the test
        RunSpec.from_json(text)
    with contextlib.suppress(PipelineError):  # any other exception fails the test
        PipelineSpec.from_dict(data)


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(min_size=1, max_size=6),
    source=st.text(max_size=10),
    inputs=st.dictionaries(st.text(max_size=4), st.text(max_size=6), max_size=3),
)
def test_malformed_steps_give_a_pipeline_error(name, source, inputs):
    data = {"name": "p", "steps": [{"name": name, "source": source, "inputs": inputs}]}
    with contextlib.suppress(PipelineError):  # any other exception fails the test
        PipelineSpec.from_dict(data)


def test_a_valid_spec_survives_json(project):
    pipeline = demo_steps.chain()
    spec = RunSpec("chain-1", pipeline.to_spec())
    assert RunSpec.from_json(spec.to_json()) == spec


def test_step_resources_round_trip_through_yaml_and_the_run_spec(project):
    from zenml_core.pipeline.spec import RunSpec

    pipeline = demo_steps.chain()
    pipeline.steps[1].with_resources(cpu=2, memory="8Gi", gpus=1, gpu_type="nvidia-tesla-t4")
    wanted = {"resources": {"cpu": 2, "memory": "8Gi", "gpus": 1, "gpu_type": "nvidia-tesla-t4"}}
    again = Pipeline.from_yaml(pipeline.to_yaml())
    assert again.steps[1].settings == wanted and again.steps[0].settings == {}
    spec = RunSpec("r-1", again.to_spec())
    assert RunSpec.from_json(spec.to_json()).pipeline.steps[1].settings == wanted


@pytest.mark.parametrize(
    ("resources", "problem"),
    [
        ({"memory": "lots"}, "not an amount of memory"),
        ({"cpu": "two"}, "not a CPU amount"),
        ({"gpus": -1}, "gpus must be"),
        ({"gpu_type": "nvidia-l4"}, "without gpus"),
        ({"disk": "1Ti"}, "Unknown resource"),
    ],
)
def test_bad_step_resources_are_refused_before_anything_runs(project, resources, problem):
    from zenml_core.exceptions import ConfigError, PipelineError

    if "disk" not in resources:
        with pytest.raises(ConfigError, match=problem):
            demo_steps.chain().steps[1].with_resources(**resources)
    data = yaml.safe_load(demo_steps.chain().to_yaml())
    data["steps"][1]["settings"] = {"resources": resources}
    with pytest.raises(PipelineError, match=problem):
        Pipeline.from_yaml(yaml.safe_dump(data))


def test_runs_listings_show_metrics_parameters_and_skipped_steps(tmp_path):
    assert zenml(tmp_path, "init").returncode == 0
    for boost in (0.1, 0.25):  # two runs that differ only in a parameter
        (tmp_path / "p.yaml").write_text(demo_steps.scored(boost).to_yaml())
        assert zenml(tmp_path, "run", "p.yaml").returncode == 0
    listed = zenml(tmp_path, "runs", "list")
    header, *rows = listed.stdout.splitlines()[:1] + listed.stdout.splitlines()[2:]
    assert header.split()[-1] == "METRICS"
    assert [row.split()[-1] for row in rows] == ["accuracy=0.75", "accuracy=0.6"]  # newest first
    runs = json.loads(zenml(tmp_path, "runs", "list", "--json").stdout)
    assert [r["metrics"] for r in runs] == [{"accuracy": 0.75}, {"accuracy": 0.6}]
    shown = zenml(tmp_path, "runs", "show", runs[0]["run_id"]).stdout
    assert "parameters:" in shown
    assert ["score", "boost", "0.25"] in [line.split() for line in shown.splitlines()]
    assert json.loads(zenml(tmp_path, "runs", "show", runs[0]["run_id"], "--json").stdout)[
        "parameters"
    ] == {"produce": {"n": 4}, "score": {"boost": 0.25}}
    # a failed run: its skipped step is listed, in pipeline order
    flag = tmp_path / "flag"
    flag.write_text("x")
    (tmp_path / "r.yaml").write_text(demo_steps.resumable(str(flag)).to_yaml())
    assert zenml(tmp_path, "run", "r.yaml").returncode == 1
    failed = json.loads(
        zenml(tmp_path, "runs", "list", "--pipeline", "resumable", "--json").stdout
    )[0]
    lines = zenml(tmp_path, "runs", "show", failed["run_id"]).stdout.splitlines()
    table = next(i for i, line in enumerate(lines) if line.startswith("STEP "))
    assert [line.split()[:2] for line in lines[table + 2 : table + 5]] == [
        ["produce", "completed"], ["fragile", "failed"], ["total", "skipped"]
    ]  # fmt: skip


def test_a_listing_whose_reader_went_away_ends_quietly(tmp_path):
    # `zenml runs list | head`: head exits, the pipe has no reader. Made deterministic by
    # closing the read end before anything is written.
    assert zenml(tmp_path, "init").returncode == 0
    (tmp_path / "p.yaml").write_text(demo_steps.chain().to_yaml())
    zenml(tmp_path, "run", "p.yaml")
    script = (
        "import os, sys\n"
        "read, write = os.pipe(); os.close(read); os.dup2(write, 1)\n"
        "from zenml_core.cli import main\n"
        "sys.exit(main(['runs', 'list']))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 141
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
