"""The engine end to end on the embedded defaults: runs, lineage, caching, failures, resume."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import demo_steps
import pytest

from zenml_core import Pipeline
from zenml_core.artifacts.base import MANIFEST, fingerprint
from zenml_core.backends import LocalOrchestrator, LocalProcessingBackend
from zenml_core.exceptions import ConfigError, PipelineError, StepFailedError
from zenml_core.metadata import SQLiteMetadataStore
from zenml_core.pipeline.spec import PipelineSpec


def metadata(project: Path) -> SQLiteMetadataStore:
    return SQLiteMetadataStore(str(project / ".zenml" / "metadata.db"))


def test_a_chain_runs_and_records_lineage(project):
    result = demo_steps.chain().run()
    assert result.status == "completed"
    assert result.load("produce") == [0, 1, 2, 3]
    assert result.load("double", "doubled") == [0, 3, 6, 9]
    assert result.load("describe") == "describe saw 18"
    run = metadata(project).get_run(result.run_id)
    assert (run.pipeline, run.status, run.orchestrator) == ("chain", "completed", "local")
    steps = {s.step: s for s in run.steps}
    assert [s.state for s in run.steps] == ["completed"] * 3
    # lineage: describe read double's "total", which double wrote
    assert steps["describe"].inputs["total"].id == steps["double"].outputs["total"].id
    assert steps["double"].inputs["x"].id == steps["produce"].outputs["output"].id
    for step in run.steps:
        assert step.started_at <= step.ended_at
        assert step.backend == "processing:local"
        for artifact in step.outputs.values():
            folder = Path(artifact.uri)
            assert (folder / MANIFEST).read_text().strip() == artifact.fingerprint
            assert fingerprint(folder) == artifact.fingerprint
    recorded_spec = json.loads(
        __import__("sqlite3")
        .connect(project / ".zenml" / "metadata.db")
        .execute("SELECT string_value FROM ContextProperty WHERE name='spec'")
        .fetchone()[0]
    )
    assert recorded_spec["run_id"] == result.run_id


def test_second_run_is_fully_cached_and_reuses_the_artifacts(project):
    first = demo_steps.chain().run()
    second = demo_steps.chain().run()
    assert {s.state for s in second.steps.values()} == {"cached"}
    assert {n: a.uri for n, a in second.steps["double"].outputs.items()} == {
        n: a.uri for n, a in first.steps["double"].outputs.items()
    }
    run = metadata(project).get_run(second.run_id)
    assert [s.state for s in run.steps] == ["cached"] * 3
    first_ids = {s.step: s.execution_id for s in metadata(project).get_run(first.run_id).steps}
    assert {s.step: s.cached_from for s in run.steps} == first_ids
    assert run.steps[1].inputs["x"].id == run.steps[0].outputs["output"].id


def test_a_step_with_the_key_of_one_this_run_computed_reuses_its_outputs(project):
    pipeline = Pipeline("repeats")
    a = pipeline.add_step(demo_steps.produce(n=3))
    first = pipeline.add_step(demo_steps.passthrough(x=a).with_name("first"))
    # the same code on the same input content: the cache key of "first"
    pipeline.add_step(demo_steps.passthrough(x=first).with_name("again"))
    # siblings with one key are both unblocked (recorded as running) at once: both run
    pipeline.add_step(demo_steps.double(x=a).with_name("left"))
    pipeline.add_step(demo_steps.double(x=a).with_name("right"))
    result = pipeline.run()
    assert {n: s.state for n, s in result.steps.items()} == {
        "produce": "completed",
        "first": "completed",
        "again": "cached",
        "left": "completed",
        "right": "completed",
    }
    assert result.load("again") == [0, 1, 2]
    run = metadata(project).get_run(result.run_id)
    assert run.status == "completed"
    steps = {s.step: s for s in run.steps}
    assert {s.state for s in run.steps} == {"completed", "cached"}  # nothing left "running"
    assert steps["again"].cached_from == steps["first"].execution_id
    assert steps["again"].outputs["output"].uri == steps["first"].outputs["output"].uri


def test_ctrl_c_marks_the_steps_recorded_as_running_but_not_begun_as_interrupted(project):
    pipeline = Pipeline("interrupted")
    a = pipeline.add_step(demo_steps.produce(n=3))
    # both are recorded as running in the write of produce's end; Ctrl-C comes in the first
    pipeline.add_step(demo_steps.press_ctrl_c(x=a))
    pipeline.add_step(demo_steps.passthrough(x=a))
    with pytest.raises(KeyboardInterrupt):
        pipeline.run()
    (listed,) = metadata(project).list_runs("interrupted")
    run = metadata(project).get_run(listed.run_id)
    assert run.status == "failed"
    states = {s.step: (s.state, s.error) for s in run.steps}
    assert states["produce"] == ("completed", "")
    assert states["press_ctrl_c"] == ("failed", "interrupted (Ctrl-C)")
    assert states["passthrough"] == ("failed", "interrupted (Ctrl-C)")


def test_changed_parameters_rerun_the_step_and_everything_downstream(project):
    demo_steps.chain().run()
    pipeline = Pipeline("chain")
    a = pipeline.add_step(demo_steps.produce(n=4))
    b = pipeline.add_step(demo_steps.double(x=a, factor=5))
    pipeline.add_step(demo_steps.describe(total=b["total"]))
    result = pipeline.run()
    assert {n: s.state for n, s in result.steps.items()} == {
        "produce": "cached",
        "double": "completed",
        "describe": "completed",
    }
    assert result.load("describe") == "describe saw 30"


def test_a_deleted_output_is_not_reused(project):
    first = demo_steps.chain().run()
    import shutil

    shutil.rmtree(first.steps["double"].outputs["doubled"].uri)
    second = demo_steps.chain().run()
    assert second.steps["produce"].state == "cached"
    assert second.steps["double"].state == "completed"


def test_caching_can_be_turned_off_per_run_and_per_step(project):
    demo_steps.chain().run()
    assert {s.state for s in demo_steps.chain().run(enable_cache=False).steps.values()} == {
        "completed"
    }
    pipeline = demo_steps.chain()
    pipeline.steps[1].with_cache(False)
    states = {n: s.state for n, s in pipeline.run().steps.items()}
    assert states == {"produce": "cached", "double": "completed", "describe": "cached"}


def test_a_failing_step_fails_the_run_keeps_outputs_and_resumes(project):
    flag = project / "fail.flag"
    flag.write_text("on")
    with pytest.raises(StepFailedError) as caught:
        demo_steps.resumable(str(flag)).run()
    message = str(caught.value)
    assert "Step 'fragile'" in message and f"flag {flag} is set" in message
    failed = caught.value.result
    assert failed.status == "failed"
    assert {n: s.state for n, s in failed.steps.items()} == {
        "produce": "completed",
        "fragile": "failed",
        "total": "skipped",
    }
    assert Path(failed.steps["produce"].outputs["output"].uri).is_dir()  # kept
    run = metadata(project).get_run(failed.run_id)
    assert run.status == "failed" and "fragile" in run.error
    fragile = next(s for s in run.steps if s.step == "fragile")
    assert fragile.state == "failed" and "RuntimeError: flag" in fragile.error
    assert "Traceback" in fragile.error

    flag.unlink()
    resumed = demo_steps.resumable(str(flag)).run()
    assert {n: s.state for n, s in resumed.steps.items()} == {
        "produce": "cached",
        "fragile": "completed",
        "total": "completed",
    }
    assert resumed.load("total") == 6


def test_independent_branches_run_in_parallel(project):
    pipeline = Pipeline("branches", backend=LocalOrchestrator(parallelism=2))
    a = pipeline.add_step(demo_steps.produce())
    pipeline.add_step(demo_steps.left(x=a))
    pipeline.add_step(demo_steps.right(x=a))
    # each branch waits on a barrier only the other one can open: sequential would time out
    result = pipeline.run(enable_cache=False)
    assert (result.load("left"), result.load("right")) == (1, 2)


def test_tuple_outputs_paths_and_class_steps(project):
    pipeline = Pipeline("shapes")
    a = pipeline.add_step(demo_steps.produce(n=3))
    p = pipeline.add_step(demo_steps.pair(x=a))
    pipeline.add_step(demo_steps.Scale(x=p["rest"], by=2.5))
    m = pipeline.add_step(demo_steps.write_file(text="weights"))
    pipeline.add_step(demo_steps.read_file(model=m))
    result = pipeline.run()
    assert result.load("pair", "first") == 0
    assert result.load("scale") == [2.5, 5.0]
    assert result.load("read_file") == "weights"


def test_wrong_outputs_fail_with_a_clear_message(project):
    pipeline = Pipeline("bad")
    a = pipeline.add_step(demo_steps.produce())
    pipeline.add_step(demo_steps.bad_outputs(x=a))
    with pytest.raises(StepFailedError, match=r"must return its outputs \['a', 'b'\]"):
        pipeline.run()


def test_training_steps_run_on_their_training_backend(project):
    result = demo_steps.trainer_pipeline().run()
    assert result.load("fit") == 4.0
    fit = next(s for s in metadata(project).get_run(result.run_id).steps if s.step == "fit")
    assert fit.backend == "training:local"


def test_processing_backend_gives_explicit_local_beam_args():
    backend = LocalProcessingBackend(
        running_mode="multi_processing", num_workers=2, listen_on_all_interfaces=True
    )
    assert backend.beam_args("job-1") == [
        "--runner=FnApiRunner",
        "--job_name=job-1",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    ]


@pytest.mark.parametrize(
    ("cores", "mode", "workers", "said"),
    [
        (2, "in_memory", 1, "this machine has 2 cores"),
        (8, "multi_processing", 2, "on 2 workers (running_mode='auto': 8 cores)"),
    ],
)
def test_auto_mode_uses_worker_processes_only_where_they_can_be_faster_and_says_so(
    monkeypatch, capsys, cores, mode, workers, said
):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    backend = LocalProcessingBackend(num_workers=2, listen_on_all_interfaces=True)
    assert backend.running_mode == "auto"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the all-interfaces warning
        args = backend.beam_args("job-1")
    assert f"--direct_running_mode={mode}" in args
    assert f"--direct_num_workers={workers}" in args
    assert said in capsys.readouterr().out


# -- bad input: clear errors before anything is written ---------------------------------------


def _nothing_recorded(project: Path) -> bool:
    return not (project / ".zenml" / "metadata.db").exists() or not metadata(project).list_runs()


def test_unconnected_input_is_refused_before_running(project):
    pipeline = Pipeline("p")
    pipeline.add_step(demo_steps.double(factor=2))
    with pytest.raises(PipelineError, match=r"Step 'double' has nothing connected to \['x'\]"):
        pipeline.run()
    assert _nothing_recorded(project)


def test_step_from_another_pipeline_is_refused(project):
    outsider = demo_steps.produce()
    pipeline = Pipeline("p")
    pipeline.add_step(demo_steps.double(x=outsider))
    with pytest.raises(PipelineError, match="not in pipeline 'p'; add it with add_step"):
        pipeline.run()


def test_a_cycle_is_named(project):
    pipeline = Pipeline("loop")
    a = pipeline.add_step(demo_steps.Scale(by=1.0))
    b = pipeline.add_step(demo_steps.Scale(x=a).with_name("b"))
    a.connect(x=b)
    with pytest.raises(PipelineError, match="The steps form a cycle: scale -> b -> scale"):
        pipeline.run()
    assert _nothing_recorded(project)


def test_duplicate_step_names_and_bad_arguments(project):
    pipeline = Pipeline("p")
    pipeline.add_step(demo_steps.produce())
    with pytest.raises(PipelineError, match="already has a step named 'produce'"):
        pipeline.add_step(demo_steps.produce())
    with pytest.raises(ConfigError, match="has no argument 'nn'; its arguments are"):
        demo_steps.produce(nn=3)
    with pytest.raises(ConfigError, match="parameter 'n' must be int, got str"):
        demo_steps.produce(n="3")
    with pytest.raises(ConfigError, match="needs a BaseTrainingBackend"):
        demo_steps.fit().with_backend(LocalProcessingBackend())


def test_an_unwritable_artifact_store_fails_before_the_run_starts(project):
    blocked = project / "blocked"
    blocked.write_text("a file, not a folder")
    with pytest.raises(ConfigError, match="is not writable"):
        demo_steps.chain().run(artifact_store=str(blocked / "artifacts"))
    assert _nothing_recorded(project)


def test_unknown_backend_name_in_a_spec_fails_before_the_run(project):
    spec = demo_steps.chain().to_spec().to_dict()
    spec["components"]["orchestrator"] = {"kind": "orchestrator", "name": "warp"}
    from zenml_core.exceptions import UnknownBackendError

    with pytest.raises(UnknownBackendError, match="No orchestrator backend named 'warp'"):
        Pipeline.from_spec(PipelineSpec.from_dict(spec)).run()
    assert _nothing_recorded(project)


def test_no_step_is_left_running_when_a_sibling_fails(project):
    flag = project / "fail.flag"
    flag.write_text("on")
    pipeline = Pipeline("siblings")
    a = pipeline.add_step(demo_steps.produce(n=3))
    pipeline.add_step(demo_steps.fragile(x=a, fail_if_exists=str(flag)))
    pipeline.add_step(demo_steps.total(x=a))  # unblocked by produce, never reached
    with pytest.raises(StepFailedError):
        pipeline.run()
    run = metadata(project).get_run(metadata(project).list_runs("siblings")[0].run_id)
    assert "running" not in {s.state for s in run.steps}
    assert {s.step: s.state for s in run.steps}["fragile"] == "failed"


def test_artifact_addresses_do_not_depend_on_one_metadata_store(project, tmp_path):
    """After metadata.db is deleted, or with two projects sharing one artifact folder,
    execution ids repeat; the next run still publishes its artifacts."""
    from zenml_core.metadata import SQLiteMetadataStore

    shared = str(tmp_path / "shared-artifacts")
    first = demo_steps.chain("addresses").run(
        artifact_store=shared, metadata_store=SQLiteMetadataStore(str(tmp_path / "a.db"))
    )
    other_project = demo_steps.chain("addresses").run(
        artifact_store=shared, metadata_store=SQLiteMetadataStore(str(tmp_path / "b.db"))
    )
    assert first.status == other_project.status == "completed"
    (project / ".zenml" / "metadata.db").unlink(missing_ok=True)
    for _ in range(2):  # the project's own store, from scratch each time
        for leftover in (project / ".zenml").glob("metadata.db*"):
            leftover.unlink()
        assert demo_steps.chain("addresses").run().status == "completed"
    uris = {
        r.outputs["output"].uri for r in (first.steps["produce"], other_project.steps["produce"])
    }
    assert len(uris) == 2
