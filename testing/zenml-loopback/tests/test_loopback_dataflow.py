"""The loopback Dataflow through Beam's own DataflowRunner: the staged pipeline really runs."""

from __future__ import annotations

import pytest

from zenml_core.testing import wait_until
from zenml_loopback.google import LoopbackGoogleCloud
from zenml_loopback.workloads import SubprocessRunner

SDK_IMAGE = "gcr.io/cloud-dataflow/v1beta3/beam_python3.11_sdk:2.77.0"


@pytest.fixture
def cloud(monkeypatch):
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    with LoopbackGoogleCloud(SubprocessRunner(["loopback/beam:1"]), "loopback/beam:1") as running:
        yield running


def _options(cloud, tmp_path, job_name):
    from apache_beam.options.pipeline_options import PipelineOptions

    for folder in ("staging", "temp"):
        (tmp_path / folder).mkdir(exist_ok=True)
    return PipelineOptions([
        "--runner=DataflowRunner", "--project=p", "--region=europe-west1",
        f"--job_name={job_name}", f"--staging_location={tmp_path / 'staging'}",
        f"--temp_location={tmp_path / 'temp'}", "--sdk_location=container", "--no_auth",
        f"--dataflow_endpoint={cloud.dataflow_endpoint}",
    ])  # fmt: skip


def test_a_submitted_job_runs_its_pipeline_and_is_done(cloud, tmp_path):
    import apache_beam as beam

    with beam.Pipeline(options=_options(cloud, tmp_path, "doubles")) as pipeline:
        (
            pipeline
            | beam.Create([1, 2, 3])
            | beam.Map(lambda x: x * 2)
            | beam.io.WriteToText(str(tmp_path / "out" / "part"))
        )
    written = sorted(
        int(line) for f in (tmp_path / "out").iterdir() for line in f.read_text().split()
    )
    assert written == [2, 4, 6]
    (job,) = cloud.dataflow_jobs.values()
    assert job["name"] == "doubles" and job["currentState"] == "JOB_STATE_DONE"
    assert (
        job["environment"]["workerPools"][0]["sdkHarnessContainerImages"][0]["containerImage"]
        == SDK_IMAGE
    )  # what Dataflow was asked for; the emulator ran it in its own image


def test_a_failing_pipeline_fails_the_job_with_the_error(cloud, tmp_path):
    import apache_beam as beam

    def _boom(x):  # nested: pickled by value, as a user's code must be for Dataflow workers
        raise ValueError(f"bad record {x}")

    pipeline = beam.Pipeline(options=_options(cloud, tmp_path, "broken"))
    pipeline | beam.Create([1]) | beam.Map(_boom)
    with pytest.raises(Exception, match="bad record") as caught:  # Beam's own exception type
        pipeline.run().wait_until_finish()
    assert "JOB_STATE_FAILED" in str(caught.value) or "Workflow failed" in str(caught.value)
    (job,) = cloud.dataflow_jobs.values()
    assert job["currentState"] == "JOB_STATE_FAILED"


def test_a_cancelled_job_stops(cloud, tmp_path):
    import apache_beam as beam

    def _slow(x):
        import time

        time.sleep(120)
        return x

    pipeline = beam.Pipeline(options=_options(cloud, tmp_path, "slow"))
    pipeline | beam.Create([1]) | beam.Map(_slow)
    result = pipeline.run()
    wait_until(lambda: str(result.state) == "RUNNING", timeout=60, what="the job to run")
    result.cancel()
    (job,) = cloud.dataflow_jobs.values()
    wait_until(lambda: job["currentState"] == "JOB_STATE_CANCELLED", what="the cancellation")
