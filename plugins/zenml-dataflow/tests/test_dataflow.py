"""The Dataflow and portable backends as a user meets them: the standard data steps and the
user's own Beam step, on the loopback Dataflow (jobs in our image's container under the e2e
session) and on Beam's own job service; failures, Ctrl-C, start-up faults, a duplicate name."""

from __future__ import annotations

import _thread
import signal
import textwrap
import threading
from pathlib import Path

import pytest

from zenml_core import Pipeline
from zenml_core.exceptions import BeamJobError, ConfigError, StepFailedError
from zenml_core.steps import CSVSource, RandomSplit, StandardPreprocesser
from zenml_core.testing import wait_until
from zenml_dataflow.dataflow import ProcessingDataFlowBackend, dataflow_job_name
from zenml_dataflow.portable import PortableProcessingBackend

QUICKSTART_CSV = Path(__file__).parents[3] / "examples" / "quickstart" / "churn.csv"

USER_BEAM = """
import time

import apache_beam as beam

from zenml_core import step
from zenml_core.pipeline.context import StepContext


def work(x, fail_on, seconds):  # module level: pickled by reference, needs this module there
    time.sleep(seconds)
    if x == fail_on:
        raise ValueError(f"record {x} is bad on purpose")
    return x


@step
def beam_count(ctx: StepContext, n: int = 5, fail_on: int = -1, seconds: float = 0.0) -> int:
    out = ctx.output_dir()
    with ctx.beam_job() as job:
        target = job.output(out)
        _ = (
            job.pipeline
            | beam.Create(range(n))
            | beam.Map(work, fail_on, seconds)
            | beam.combiners.Count.Globally()
            | beam.Map(str)
            | beam.io.WriteToText(target + "/count", shard_name_template="")
        )
    return int((out / "count").read_text())
"""


def _standard_path(name, backend, **stores):
    """CSV -> RandomSplit -> StandardPreprocesser, the data steps on ``backend``."""
    pipeline = Pipeline(name)
    source = pipeline.add_step(CSVSource(path=str(QUICKSTART_CSV), label="churned"))
    split = RandomSplit(data=source, split_map={"train": 0.7, "eval": 0.3}, seed=42)
    split = pipeline.add_step(split if backend is None else split.with_backend(backend))
    prep = StandardPreprocesser(data=split, label="churned")
    pipeline.add_step(prep if backend is None else prep.with_backend(backend))
    return pipeline.run(enable_cache=False, **stores)


def _same_outputs(remote, local):
    for step in ("random_split",):
        got, want = remote.load(step), local.load(step)
        assert got.splits == want.splits == ["eval", "train"]
        for split in want.splits:
            assert got.num_rows(split) == want.num_rows(split) > 0
    got, want = (
        remote.load("standard_preprocesser", "transformed"),
        local.load("standard_preprocesser", "transformed"),
    )
    for split in want.splits:
        assert got.num_rows(split) == want.num_rows(split)
        a, b = got.read(split).to_pandas(), want.read(split).to_pandas()
        sort = sorted(a.columns)
        a = a[sort].sort_values(sort).reset_index(drop=True)
        b = b[sort].sort_values(sort).reset_index(drop=True)
        assert ((a - b).abs().to_numpy() < 1e-9).all()
    assert remote.load("standard_preprocesser", "transform") == local.load(
        "standard_preprocesser", "transform"
    )


@pytest.fixture
def user_beam(project):
    (project / "user_beam.py").write_text(textwrap.dedent(USER_BEAM))
    import user_beam

    yield user_beam
    import sys

    sys.modules.pop("user_beam", None)


# -- Dataflow ---------------------------------------------------------------------------------


def test_standard_data_steps_on_dataflow_equal_the_local_run(project, dataflow_params):
    """The outputs land in the gs:// artifact store, equal to a local run's."""
    backend = ProcessingDataFlowBackend(**dataflow_params)
    bucket_folder = dataflow_params["staging_location"].rsplit("/", 1)[0]
    remote = _standard_path("on-dataflow", backend, artifact_store=f"{bucket_folder}/artifacts")
    assert remote.artifact_store.root.startswith("gs://")
    _same_outputs(remote, _standard_path("on-laptop", None))


def test_the_jobs_ran_in_the_requested_image_and_left_no_staged_data(
    project, dataflow_params, loopback_google
):
    from apache_beam.io.filesystems import FileSystems

    backend = ProcessingDataFlowBackend(**dataflow_params)
    _standard_path("images", backend)
    jobs = list(loopback_google.dataflow_jobs.values())
    assert len(jobs) == 2 and all(j["currentState"] == "JOB_STATE_DONE" for j in jobs)
    for job in jobs:
        pool = job["environment"]["workerPools"][0]
        assert pool["sdkHarnessContainerImages"][0]["containerImage"] == backend.image
    (left,) = FileSystems.match([f"{backend.temp}/zenml-data/**"])
    assert left.metadata_list == []


def test_a_users_own_beam_step_gets_its_code_on_the_workers(project, user_beam, dataflow_params):
    pipeline = Pipeline("user-beam")
    pipeline.add_step(
        user_beam.beam_count(n=7).with_backend(ProcessingDataFlowBackend(**dataflow_params))
    )
    assert pipeline.run().load("beam_count") == 7


def test_a_failing_job_fails_the_step_naming_the_job_and_its_error(
    project, user_beam, dataflow_params, loopback_google
):
    pipeline = Pipeline("user-beam-fails")
    backend = ProcessingDataFlowBackend(**dataflow_params)
    pipeline.add_step(user_beam.beam_count(n=5, fail_on=3).with_backend(backend))
    with pytest.raises(StepFailedError) as caught:
        pipeline.run()
    (job,) = loopback_google.dataflow_jobs.values()
    message = str(caught.value)
    assert "record 3 is bad on purpose" in message and job["id"] in message
    assert f"console.cloud.google.com/dataflow/jobs/{backend.region}/{job['id']}" in message
    assert "ended FAILED" in message


def test_ctrl_c_cancels_the_job(project, user_beam, dataflow_params, loopback_google):
    import apache_beam  # noqa: F401 - imported before the timer: the interrupt hits the wait

    backend = ProcessingDataFlowBackend(**dataflow_params)
    # Ctrl-C as a terminal gives it, even where this process was started with SIGINT ignored
    # (a background job of a shell): interrupt_main() does nothing then
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def interrupt_once_running():
        wait_until(
            lambda: any(
                "began to receive work" in m["messageText"]
                # a copy: the cloud's thread adds the job's list meanwhile
                for messages in list(loopback_google.dataflow_messages.values())
                for m in list(messages)
            ),
            timeout=300,
            what="the job's workers",
        )
        _thread.interrupt_main()

    pipeline = Pipeline("interrupted")
    pipeline.add_step(user_beam.beam_count(n=2, seconds=300).with_backend(backend))
    threading.Thread(target=interrupt_once_running, daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            pipeline.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    (job,) = loopback_google.dataflow_jobs.values()
    assert job["currentState"] == "JOB_STATE_CANCELLED"


def test_a_stockout_fails_the_step_at_once_and_cancels_the_job(
    project, user_beam, dataflow_params, loopback_google
):
    loopback_google.inject_dataflow_fault("ZONE_RESOURCE_POOL_EXHAUSTED")
    pipeline = Pipeline("stockout")
    backend = ProcessingDataFlowBackend(**dataflow_params)
    pipeline.add_step(user_beam.beam_count().with_backend(backend))
    with pytest.raises(StepFailedError, match=r"cannot start its workers.*ZONE_RESOURCE_POOL"):
        pipeline.run()
    (job,) = loopback_google.dataflow_jobs.values()
    assert job["currentState"] == "JOB_STATE_CANCELLED"  # not left billing for an hour


def test_an_image_that_never_pulls_is_caught_by_the_watchdog(
    project, user_beam, dataflow_params, loopback_google
):
    params = {**dataflow_params, "sdk_container_image": "registry.example/none/such:1"}
    backend = ProcessingDataFlowBackend(**params, worker_start_timeout_seconds=5)
    pipeline = Pipeline("no-image")
    pipeline.add_step(user_beam.beam_count().with_backend(backend))
    with pytest.raises(StepFailedError, match="no worker began work within 5 s") as caught:
        pipeline.run()
    assert "registry.example/none/such:1" in str(caught.value)
    (job,) = loopback_google.dataflow_jobs.values()
    assert job["currentState"] == "JOB_STATE_CANCELLED"


def test_a_duplicate_active_job_name_is_refused_naming_the_job(
    project, dataflow_params, loopback_google
):
    import apache_beam as beam

    backend = ProcessingDataFlowBackend(**dataflow_params)

    def slow(x):
        import time

        time.sleep(300)
        return x

    from apache_beam.options.pipeline_options import PipelineOptions

    first = beam.Pipeline(options=PipelineOptions(backend.beam_args("run-1-step")))
    first | beam.Create([1]) | beam.Map(slow)
    running = first.run()
    second = beam.Pipeline(options=PipelineOptions(backend.beam_args("run-1-step")))
    second | beam.Create([1])
    with pytest.raises(BeamJobError, match="already runs a job named run-1-step") as caught:
        backend.run_pipeline(second, "run-1-step")
    assert "gcloud dataflow jobs cancel" in str(caught.value)
    running.cancel()


def test_job_names_follow_dataflow_s_rules_and_stay_unique():
    run = "Quickstart_Pipeline-20261203-101010-a1b2c3"
    long_a, long_b = (
        dataflow_job_name(f"{run}-{'x' * 80}-a"),
        dataflow_job_name(f"{run}-{'x' * 80}-b"),
    )
    for name in (dataflow_job_name(f"{run}-random_split"), long_a, dataflow_job_name("9-lives")):
        assert len(name) <= 63 and name[0].isalpha() and name == name.lower()
        assert all(c.isalnum() or c == "-" for c in name) and not name.endswith("-")
    assert long_a != long_b
    assert dataflow_job_name("run-1-step") == "run-1-step"  # valid names stay as they are


def test_arguments_carry_what_the_user_asked_for(project):
    backend = ProcessingDataFlowBackend(
        project="my-project",
        staging_location="gs://my-bucket/df",
        machine_type="n2-highmem-8",
        num_workers=2,
        max_num_workers=10,
        autoscaling=False,
        use_public_ips=False,
        service_account="runner@my-project.iam.gserviceaccount.com",
        subnetwork="regions/europe-west1/subnetworks/s",
        labels={"team": "ml"},
        region="europe-west1",
        dataflow_service_options=[
            "worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver"
        ],
    )
    args = backend.beam_args("quickstart-20261203-101010-a1b2c3-random_split")
    for expected in (
        "--runner=DataflowRunner",
        "--region=europe-west1",
        "--sdk_location=container",
        "--no_save_main_session",
        "--no_use_public_ips",
        "--machine_type=n2-highmem-8",
        "--num_workers=2",
        "--max_num_workers=10",
        "--autoscaling_algorithm=NONE",
        "--service_account_email=runner@my-project.iam.gserviceaccount.com",
        "--labels=team=ml",
        "--temp_location=gs://my-bucket/df/temp",
        "--dataflow_service_options=worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver",
    ):
        assert expected in args
    from zenml_core.docker import base_image

    assert f"--sdk_container_image={base_image()}" in args
    (package,) = [a for a in args if a.startswith("--extra_package=")]
    assert package.endswith("-py3-none-any.whl")  # the project's code, as a wheel


def test_an_environment_that_does_not_match_our_image_is_refused(monkeypatch):
    from zenml_core import docker

    monkeypatch.setitem(docker.BASE_IMAGE_PINS, "apache-beam", "2.70.0")  # an image of another Beam
    with pytest.raises(ConfigError, match=r"apache-beam 2\.77\.0 here, 2\.70\.0 in the image"):
        ProcessingDataFlowBackend(project="my-project", staging_location="gs://my-bucket/df")


# -- the portable runner ------------------------------------------------------------------------


def _portable(job_service, **params):
    return PortableProcessingBackend(
        job_endpoint=job_service["job_endpoint"],
        environment_type="EXTERNAL",
        environment_config=job_service["worker_pool"],
        **params,
    )


def test_standard_data_steps_on_a_portable_job_service_equal_the_local_run(project, job_service):
    remote = _standard_path("portable", _portable(job_service))
    _same_outputs(remote, _standard_path("portable-laptop", None))


def test_a_failing_portable_job_fails_the_step_with_its_error(project, user_beam, job_service):
    pipeline = Pipeline("portable-fails")
    pipeline.add_step(user_beam.beam_count(fail_on=2).with_backend(_portable(job_service)))
    with pytest.raises(StepFailedError, match="record 2 is bad on purpose"):
        pipeline.run()


def test_no_job_service_is_a_clear_error(project, user_beam):
    from zenml_core.testing.processes import free_port

    backend = PortableProcessingBackend(
        job_endpoint=f"localhost:{free_port()}", environment_type="LOOPBACK"
    )
    pipeline = Pipeline("portable-nowhere")
    pipeline.add_step(user_beam.beam_count().with_backend(backend))
    with pytest.raises(StepFailedError, match="did not take it"):
        pipeline.run()
