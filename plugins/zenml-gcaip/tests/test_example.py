"""The quickstart's trainer on the loopback Vertex AI, through examples/vertex: on one machine
(in a container of our image in the e2e session), and on two replicas training one model with
MultiWorkerMirroredStrategy."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from zenml_loopback.fixtures import docker_mode

TRAINER = "tf_feed_forward_trainer"
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "vertex" / "pipeline.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("vertex_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(example, stores, vertex_params, replicas, **run):
    params = dict(vertex_params)
    backend = example.backend(params.pop("project"), params.pop("region"), params.pop("job_dir"),
                              replicas=replicas, **params)  # fmt: skip
    pipeline = example.quickstart().build(trainer_backend=backend)
    return pipeline.run(**stores, **run)


def test_the_quickstart_trainer_runs_on_vertex(
    project, example, stores, vertex_params, loopback_google
):
    result = _run(example, stores, vertex_params, replicas=1)
    assert result.status == "completed"
    trainer = next(
        s for s in stores["metadata_store"].get_run(result.run_id).steps if s.step == TRAINER
    )
    assert trainer.state == "completed" and trainer.backend == "training:gcaip"
    model = trainer.outputs["output"]
    assert model.uri.startswith(stores["artifact_store"])  # the model is in the GCS emulator
    assert result.load("evaluator")["overall"]["accuracy"] > 0.7  # the quickstart's own level
    (job,) = loopback_google.custom_jobs.values()
    assert job["state"] == "JOB_STATE_SUCCEEDED"


@pytest.mark.skipif(
    docker_mode(),
    reason="TensorFlow's collective server binds every interface; only subprocess replicas "
    "get the loopback-only bind (zenml_loopback.listeners)",
)
def test_two_replicas_train_one_model_as_good_as_one(
    project, example, stores, vertex_params, loopback_google
):
    single = _run(example, stores, vertex_params, replicas=1)
    double = _run(example, stores, vertex_params, replicas=2, enable_cache=False)
    assert double.status == "completed"
    store = stores["metadata_store"]
    trainers = [s for s in store.get_run(double.run_id).steps if s.step == TRAINER]
    assert len(trainers) == 1 and trainers[0].state == "completed"  # the chief's record only
    from zenml_core.pipeline import materializers

    record = trainers[0].outputs["output"]
    with double.artifact_store.reader(record.uri) as folder:  # a model is a folder: read it here
        info = materializers.by_name(record.data_type).load(folder).info
    assert info["replicas"] == 2
    job = next(
        j for j in loopback_google.custom_jobs.values() if len(j["jobSpec"]["workerPoolSpecs"]) == 2
    )
    assert job["state"] == "JOB_STATE_SUCCEEDED"
    one, two = (r.load("evaluator")["overall"] for r in (single, double))
    print("single", json.dumps(one), "two replicas", json.dumps(two))
    assert two["accuracy"] >= one["accuracy"] - 0.03
    assert two["accuracy"] > 0.7
