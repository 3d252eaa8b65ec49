"""Which replica of a multi-machine job a process is, from TF_CONFIG or Vertex's CLUSTER_SPEC."""

from __future__ import annotations

import json

import pytest

from zenml_core.distributed import cluster_task, is_chief
from zenml_core.exceptions import ConfigError

CLUSTER = {"chief": ["h0:2222"], "worker": ["h1:2222", "h2:2222"]}


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("CLUSTER_SPEC", raising=False)


def test_a_process_outside_any_cluster_is_its_own_chief():
    assert cluster_task() is None and is_chief()


@pytest.mark.parametrize(
    ("task", "chief"),
    [
        ({"type": "chief", "index": 0}, True),
        ({"type": "worker", "index": 0}, False),
        ({"type": "worker", "index": 1}, False),
    ],
)
def test_tf_config_says_who_records(monkeypatch, task, chief):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": CLUSTER, "task": task}))
    found = cluster_task()
    assert found is not None and found.trainers == 3
    assert found.is_chief is chief and is_chief() is chief


def test_without_a_chief_worker_0_records(monkeypatch):
    cluster = {"worker": ["h0:1", "h1:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker"}}))
    assert is_chief()
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    )
    assert not is_chief()


def test_vertex_s_cluster_spec_names_pools(monkeypatch):
    spec = {"cluster": {"workerpool0": ["a:2222"], "workerpool1": ["b:2222"]},
            "environment": "cloud", "task": {"type": "workerpool1", "index": 0}}  # fmt: skip
    monkeypatch.setenv("CLUSTER_SPEC", json.dumps(spec))
    task = cluster_task()
    assert task is not None and not task.is_chief
    assert json.loads(task.tf_config()) == {
        "cluster": {"chief": ["a:2222"], "worker": ["b:2222"]},
        "task": {"type": "worker", "index": 0},
    }


def test_a_cluster_of_one_is_no_cluster(monkeypatch):
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"]}, "task": {"type": "chief"}})
    )
    assert cluster_task() is None


@pytest.mark.parametrize(
    "raw",
    ["not json", "[1]", json.dumps({"cluster": CLUSTER, "task": {"type": "ps", "index": 0}})],
)
def test_a_broken_cluster_spec_is_named(monkeypatch, raw):
    monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(ConfigError, match=r"TF_CONFIG|task"):
        cluster_task()
