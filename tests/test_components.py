"""Component configs: construction checks, the round trip, and the errors users see."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zenml_core import hookimpl
from zenml_core.backends import (
    BaseOrchestrator,
    BaseProcessingBackend,
    BaseTrainingBackend,
    LocalOrchestrator,
    LocalProcessingBackend,
)
from zenml_core.exceptions import ConfigError, UnknownBackendError
from zenml_core.plugins import create_backend


@dataclass
class RichOrchestrator(BaseOrchestrator):
    zone: str
    machine_count: int = 1
    preemptible: bool = False
    disk_gb: float = 10.0
    labels: dict[str, str] = field(default_factory=dict)
    gpus: list[str] = field(default_factory=list)
    mode: Literal["fast", "cheap"] = "fast"
    image: str | None = None

    def run(self, request):
        return request.execute()


class RichPlugin:
    @hookimpl
    def register_orchestrators(self, register):
        register("rich", RichOrchestrator)


@pytest.fixture
def rich(zenml_plugins):
    zenml_plugins.register(RichPlugin(), name="rich-plugin")
    return RichOrchestrator(
        zone="europe-west1-b",
        machine_count=2,
        preemptible=True,
        disk_gb=50,
        labels={"team": "ml"},
        gpus=["nvidia-tesla-t4"],
        mode="cheap",
    )


def test_config_round_trip_keeps_every_parameter(rich):
    config = rich.to_config()
    assert config == {
        "kind": "orchestrator",
        "name": "rich",
        "params": {
            "zone": "europe-west1-b",
            "machine_count": 2,
            "preemptible": True,
            "disk_gb": 50,
            "labels": {"team": "ml"},
            "gpus": ["nvidia-tesla-t4"],
            "mode": "cheap",
            "image": None,
        },
    }
    assert BaseOrchestrator.from_config(config) == rich
    assert RichOrchestrator.from_yaml(rich.to_yaml()) == rich


def test_yaml_written_by_hand_builds_the_backend(rich):
    text = """
    kind: orchestrator
    name: rich
    params: {zone: us-central1-a, gpus: [a, b]}
    """
    backend = BaseOrchestrator.from_yaml(text)
    assert backend == RichOrchestrator(zone="us-central1-a", gpus=["a", "b"])


def test_create_backend_by_name(rich):
    assert create_backend("orchestrator", "rich", zone="z") == RichOrchestrator(zone="z")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"zone": 3}, "parameter 'zone' must be str, got int 3"),
        ({"zone": "z", "machine_count": "2"}, "'machine_count' must be int"),
        ({"zone": "z", "machine_count": True}, "'machine_count' must be int"),
        ({"zone": "z", "preemptible": "yes"}, "'preemptible' must be bool"),
        ({"zone": "z", "labels": {"a": 1}}, "'labels' must be dict[str, str]"),
        ({"zone": "z", "gpus": "t4"}, "'gpus' must be list[str]"),
        ({"zone": "z", "mode": "slow"}, "'mode' must be Literal['fast', 'cheap']"),
        ({"zone": "z", "image": 5}, "'image' must be str | None"),
        ({"zone": "z", "colour": "red"}, "has no parameter(s) ['colour']; its parameters are"),
        ({}, "needs parameter(s) ['zone']"),
    ],
)
def test_bad_parameters_name_the_parameter(rich, params, message):
    with pytest.raises(ConfigError) as caught:
        RichOrchestrator.from_params(params)
    assert message in str(caught.value)


def test_int_is_accepted_where_float_is_expected(rich):
    assert RichOrchestrator(zone="z", disk_gb=20).disk_gb == 20


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("just a string", "must be a mapping"),
        ({"name": "rich", "zone": "z"}, "Unexpected key(s) ['zone']"),
        (
            {"kind": "training", "name": "local"},
            "Expected a config of kind 'orchestrator', got kind 'training'",
        ),
        ({"kind": "orchestrator"}, "needs a 'name'"),
        ({"name": "rich", "params": ["zone"]}, "'params' of orchestrator 'rich' must be a mapping"),
    ],
)
def test_malformed_configs_are_explained(rich, config, message):
    with pytest.raises(ConfigError) as caught:
        BaseOrchestrator.from_config(config)
    assert message in str(caught.value)


def test_kind_comes_from_the_config_when_asked_on_the_root_class(zenml_plugins):
    from zenml_core.component import BaseComponent

    backend = BaseComponent.from_config({"kind": "training", "name": "local"})
    assert isinstance(backend, BaseTrainingBackend)
    with pytest.raises(ConfigError, match="has no 'kind'"):
        BaseComponent.from_config({"name": "local"})
    with pytest.raises(ConfigError, match="Unknown component kind 'teleporter'; the kinds are"):
        BaseComponent.from_config({"kind": "teleporter", "name": "x"})


def test_unknown_name_lists_what_is_available(zenml_plugins):
    with pytest.raises(UnknownBackendError) as caught:
        BaseOrchestrator.from_config({"name": "warp-drive"})
    assert "No orchestrator backend named 'warp-drive'. Available: local." in str(caught.value)


def test_first_party_name_says_which_distribution_to_install(zenml_plugins):
    with pytest.raises(UnknownBackendError) as caught:
        BaseOrchestrator.from_config({"name": "kubernetes"})
    assert "'kubernetes' is provided by zenml-k8s: pip install zenml-k8s" in str(caught.value)
    with pytest.raises(UnknownBackendError, match="pip install zenml-dataflow"):
        BaseProcessingBackend.from_config({"name": "dataflow"})
    with pytest.raises(UnknownBackendError, match="pip install zenml-gcaip"):
        BaseTrainingBackend.from_config({"name": "gcaip"})


def test_yaml_syntax_errors_are_reported(zenml_plugins):
    with pytest.raises(ConfigError, match="does not parse"):
        BaseOrchestrator.from_yaml("name: [unclosed")


def test_unregistered_class_cannot_be_serialised(zenml_plugins):
    @dataclass
    class Stray(BaseOrchestrator):
        def run(self, request):
            return request.execute()

    with pytest.raises(ConfigError, match="is not registered with zenml-core"):
        Stray().to_config()


def test_local_orchestrator_round_trip(zenml_plugins):
    assert BaseOrchestrator.from_config(LocalOrchestrator().to_config()) == LocalOrchestrator()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"runner": "DirectRunner"}, "is not a local Beam runner"),
        ({"running_mode": "multi_threading"}, "silently loses rows"),
        ({"running_mode": "gpu"}, "running_mode 'gpu' is unknown"),
        (
            {
                "running_mode": "multi_processing",
                "num_workers": 0,
                "listen_on_all_interfaces": True,
            },
            "at least 1",
        ),
        ({"running_mode": "in_memory", "num_workers": 2}, "needs running_mode='multi_processing'"),
        ({"num_workers": 2}, "listen_on_all_interfaces=True"),  # "auto" may use them
    ],
)
def test_local_processing_refuses_unsafe_beam_settings(params, message):
    with pytest.raises(ConfigError, match=message):
        LocalProcessingBackend(**params)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "kind",
                    "name",
                    "params",
                    "runner",
                    "num_workers",
                    "running_mode",
                    "parallelism",
                    "root",
                    "path",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    config=_json,
    kind=st.sampled_from(
        ["orchestrator", "processing", "training", "artifact_store", "metadata_store"]
    ),
)
def test_any_malformed_component_config_gives_a_clear_error(config, kind):
    from zenml_core.component import BaseComponent
    from zenml_core.exceptions import ZenMLError
    from zenml_core.kinds import KINDS

    for base in (BaseComponent, KINDS[kind][1]):
        # ConfigError, UnknownBackendError...: any other exception fails the test
        with contextlib.suppress(ZenMLError):
            base.from_config(config)


def test_a_kind_that_is_not_a_word_is_refused(zenml_plugins):
    from zenml_core.component import BaseComponent

    with pytest.raises(ConfigError, match="'kind' must be one of"):
        BaseComponent.from_config({"kind": ["orchestrator"], "name": "local"})
