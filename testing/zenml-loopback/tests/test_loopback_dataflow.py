"""The loopback Dataflow through Beam's own DataflowRunner: the staged pipeline really runs,
its bundles in a worker pool of the requested image, and the job is refused, left without
workers or failed where Dataflow would."""

from __future__ import annotations

import time
import uuid

import pytest

from zenml_core.testing import wait_until
from zenml_loopback.google import LoopbackGoogleCloud
from zenml_loopback.workloads import SubprocessRunner

#: what DataflowRunner asks for without --sdk_container_image
SDK_IMAGE = "gcr.io/cloud-dataflow/v1beta3/beam_python3.11_sdk:2.77.0"


@pytest.fixture
def cloud(monkeypatch, gcs_emulator):
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    with LoopbackGoogleCloud(SubprocessRunner([SDK_IMAGE])) as running:
        running.dataflow_worker_env = gcs_emulator.environment()
        yield running


def _options(cloud, bucket, job_name, *extra, staging=None):
    from apache_beam.options.pipeline_options import PipelineOptions

    root = f"{bucket}/{uuid.uuid4().hex[:8]}"
    return PipelineOptions(
        [
            "--runner=DataflowRunner",
            "--project=p",
            "--region=europe-west1",
            f"--job_name={job_name}",
            f"--staging_location={staging or root + '/staging'}",
            f"--temp_location={root}/temp",
            "--sdk_location=container",
            "--no_auth",
            f"--dataflow_endpoint={cloud.dataflow_endpoint}",
            *extra,
        ]
    )


def _sleeps(seconds):
    """A transform that takes ``seconds`` per element; nested, so it is pickled by value (the
    workers cannot import this test module)."""

    def slow(x):
        import time

        time.sleep(seconds)
        return x

    return slow


def _read_lines(pattern):
    from apache_beam.io.filesystems import FileSystems

    (found,) = FileSystems.match([pattern])
    lines = []
    for metadata in found.metadata_list:
        with FileSystems.open(metadata.path) as file:
            lines += file.read().decode().split()
    return lines


def test_a_submitted_job_runs_its_pipeline_and_is_done(cloud, gcs_bucket):
    import apache_beam as beam

    out = f"{gcs_bucket}/{uuid.uuid4().hex[:8]}/out/part"
    with beam.Pipeline(options=_options(cloud, gcs_bucket, "doubles")) as pipeline:
        (pipeline | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * 2) | beam.io.WriteToText(out))
    assert sorted(int(x) for x in _read_lines(out + "*")) == [2, 4, 6]
    job = cloud.dataflow_job("doubles")
    assert job["currentState"] == "JOB_STATE_DONE"
    pool = job["environment"]["workerPools"][0]
    assert pool["sdkHarnessContainerImages"][0]["containerImage"] == SDK_IMAGE
    texts = [m["messageText"] for m in cloud.dataflow_messages[job["id"]]]
    assert any("began to receive work requests" in t for t in texts)


def test_staged_packages_are_installed_on_the_workers_before_the_pipeline_runs(
    cloud, gcs_bucket, tmp_path
):
    """Code shipped as an extra package (a module installed nowhere here) imports there."""
    import sys
    import zipfile

    import apache_beam as beam

    project = tmp_path / "project"
    project.mkdir()
    (project / "shipped_only.py").write_text("def triple(x):\n    return 3 * x\n")
    wheel = tmp_path / "shipped_only-1.0-py3-none-any.whl"  # the smallest wheel pip accepts
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(project / "shipped_only.py", "shipped_only.py")
        info = "shipped_only-1.0.dist-info"
        archive.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: shipped-only\nVersion: 1.0\n"
        )
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    sys.path.insert(0, str(project))
    try:
        import shipped_only

        out = f"{gcs_bucket}/{uuid.uuid4().hex[:8]}/out/part"
        options = _options(cloud, gcs_bucket, "shipped", f"--extra_package={wheel}")
        with beam.Pipeline(options=options) as pipeline:
            (
                pipeline
                | beam.Create([1, 2])
                | beam.Map(shipped_only.triple)
                | beam.io.WriteToText(out)
            )
    finally:
        sys.path.remove(str(project))
        sys.modules.pop("shipped_only", None)
    assert sorted(int(x) for x in _read_lines(out + "*")) == [3, 6]


def test_local_staging_is_refused(cloud, gcs_bucket, tmp_path):
    import apache_beam as beam

    (tmp_path / "staging").mkdir()
    options = _options(cloud, gcs_bucket, "local-staging", staging=str(tmp_path / "staging"))
    pipeline = beam.Pipeline(options=options)
    pipeline | beam.Create([1])
    with pytest.raises(Exception, match="Cloud Storage path"):
        pipeline.run()


def test_a_second_active_job_of_the_same_name_gets_409(cloud, gcs_bucket):
    import apache_beam as beam

    first = beam.Pipeline(options=_options(cloud, gcs_bucket, "twice"))
    first | beam.Create([1]) | beam.Map(_sleeps(120))
    result = first.run()
    second = beam.Pipeline(options=_options(cloud, gcs_bucket, "twice"))
    second | beam.Create([1])
    with pytest.raises(Exception, match="already an active job named twice") as caught:
        second.run()
    assert getattr(caught.value, "code", None) == 409
    result.cancel()


def test_a_failing_pipeline_fails_the_job_with_the_error(cloud, gcs_bucket):
    import apache_beam as beam

    def _boom(x):  # nested: pickled by value, as a user's code must be for Dataflow workers
        raise ValueError(f"bad record {x}")

    pipeline = beam.Pipeline(options=_options(cloud, gcs_bucket, "broken"))
    pipeline | beam.Create([1]) | beam.Map(_boom)
    with pytest.raises(Exception, match="bad record"):  # Beam's own exception type
        pipeline.run().wait_until_finish()
    assert cloud.dataflow_job("broken")["currentState"] == "JOB_STATE_FAILED"


def test_a_pipeline_built_by_another_beam_fails_in_the_workers_harness(
    cloud, gcs_bucket, monkeypatch
):
    """The image's SDK harness compares the pipeline's Beam version capability with its own."""
    import apache_beam as beam
    from apache_beam.transforms import environments

    built_by = environments.SDK_VERSION_CAPABILITY_PREFIX + "apache/beam_python3.11_sdk:2.60.0"
    monkeypatch.setattr(environments, "sdk_base_version_capability", lambda: built_by)
    pipeline = beam.Pipeline(options=_options(cloud, gcs_bucket, "other-beam"))
    pipeline | beam.Create([1]) | beam.Map(lambda x: x)
    with pytest.raises(Exception, match="not compatible"):
        pipeline.run().wait_until_finish()


def test_an_image_that_does_not_pull_leaves_the_job_without_worker_activity(cloud, gcs_bucket):
    import apache_beam as beam

    cloud.no_worker_activity_seconds = 3
    options = _options(cloud, gcs_bucket, "bogus", "--sdk_container_image=does-not-exist/img:0")
    pipeline = beam.Pipeline(options=options)
    pipeline | beam.Create([1])
    result = pipeline.run()
    job = cloud.dataflow_job("bogus")
    wait_until(lambda: job["currentState"] == "JOB_STATE_RUNNING", what="the job to run")
    with pytest.raises(Exception, match="no worker activity"):
        result.wait_until_finish()
    assert job["currentState"] == "JOB_STATE_FAILED"


def test_an_injected_stockout_is_a_job_message_and_the_job_stays_running(cloud, gcs_bucket):
    import apache_beam as beam
    from apache_beam.runners.dataflow.internal.apiclient import DataflowApplicationClient

    cloud.inject_dataflow_fault("ZONE_RESOURCE_POOL_EXHAUSTED")
    options = _options(cloud, gcs_bucket, "stockout")
    pipeline = beam.Pipeline(options=options)
    pipeline | beam.Create([1])
    result = pipeline.run()
    client = DataflowApplicationClient(options)
    wait_until(
        lambda: any(
            "ZONE_RESOURCE_POOL_EXHAUSTED" in m.message_text
            for m in client.list_messages(result.job_id(), minimum_importance="JOB_MESSAGE_ERROR")[
                0
            ]
        ),
        what="the start-up error",
    )
    assert cloud.dataflow_job("stockout")["currentState"] == "JOB_STATE_RUNNING"
    result.cancel()
    wait_until(lambda: cloud.dataflow_job("stockout")["currentState"] == "JOB_STATE_CANCELLED")


def test_job_messages_page_and_filter(cloud, gcs_bucket):
    import apache_beam as beam
    from apache_beam.runners.dataflow.internal.apiclient import DataflowApplicationClient

    options = _options(cloud, gcs_bucket, "paged")
    with beam.Pipeline(options=options) as pipeline:
        pipeline | beam.Create([1])
    job = cloud.dataflow_job("paged")
    for index in range(12):
        cloud._message(job, "JOB_MESSAGE_DEBUG", f"step {index}")
    client = DataflowApplicationClient(options)
    pages, token, seen = 0, None, []
    while True:
        messages, token = client.list_messages(job["id"], page_token=token)
        pages += 1
        seen += [m.message_text for m in messages]
        if not token:
            break
    assert pages >= 3 and len(seen) == len(cloud.dataflow_messages[job["id"]])
    basic, _ = client.list_messages(job["id"], minimum_importance="JOB_MESSAGE_BASIC")
    assert basic and not any(m.message_text.startswith("step ") for m in basic)


def test_a_job_cancelled_while_its_workers_start_stays_cancelled(cloud, gcs_bucket, tmp_path):
    """Dataflow keeps a job cancelled during its workers' start-up CANCELLED; the emulator
    once turned it FAILED ("the SDK harness failed to start") when the cancel landed there."""
    import apache_beam as beam

    # the harness takes 5 s to start: the cancel lands while the emulator waits for it
    (tmp_path / "sitecustomize.py").write_text("import time\ntime.sleep(5)\n")
    cloud.dataflow_worker_env = {**cloud.dataflow_worker_env, "PYTHONPATH": str(tmp_path)}
    pipeline = beam.Pipeline(options=_options(cloud, gcs_bucket, "starting"))
    pipeline | beam.Create([1]) | beam.Map(_sleeps(1))
    result = pipeline.run()
    job = cloud.dataflow_job("starting")

    def texts() -> list[str]:
        return [m["messageText"] for m in list(cloud.dataflow_messages[job["id"]])]

    wait_until(lambda: "Workers have started successfully." in texts(), what="the start-up")
    assert not any("began to receive work" in t for t in texts())
    result.cancel()
    wait_until(lambda: job["currentState"] == "JOB_STATE_CANCELLED", what="the cancellation")
    time.sleep(8)  # past the harness's start: nothing may overwrite the state
    assert job["currentState"] == "JOB_STATE_CANCELLED"
    assert not any("began to receive work" in t or "failed" in t for t in texts())


def test_a_cancelled_job_stops(cloud, gcs_bucket):
    import apache_beam as beam

    pipeline = beam.Pipeline(options=_options(cloud, gcs_bucket, "slow"))
    pipeline | beam.Create([1]) | beam.Map(_sleeps(120))
    result = pipeline.run()
    wait_until(lambda: str(result.state) == "RUNNING", timeout=60, what="the job to run")
    result.cancel()
    job = cloud.dataflow_job("slow")
    wait_until(lambda: job["currentState"] == "JOB_STATE_CANCELLED", what="the cancellation")
