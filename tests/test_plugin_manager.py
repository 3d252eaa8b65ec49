"""The plugin manager's policies, with plugins registered in-process.

Discovery through real installed distributions is in test_discovery.py.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from zenml_core import hookimpl
from zenml_core.artifacts import BaseArtifactStore
from zenml_core.backends import (
    BaseOrchestrator,
    BaseProcessingBackend,
    BaseTrainingBackend,
    LocalOrchestrator,
)
from zenml_core.exceptions import PluginConflictError, PluginError, PluginLoadError
from zenml_core.metadata import BaseMetadataStore
from zenml_core.plugins import FAILED, LOADED, PluginManager, set_plugin_manager


@pytest.fixture
def zenml_plugins():
    """Lenient whatever the environment says: these tests register broken plugins on purpose."""
    manager = PluginManager(entry_points=None, env={})
    previous = set_plugin_manager(manager)
    yield manager
    set_plugin_manager(previous)


@dataclass
class SpaceOrchestrator(BaseOrchestrator):
    orbit: str = "leo"

    def run(self, request):
        return request.execute()


@dataclass
class SparkProcessing(BaseProcessingBackend):
    master: str = "local[2]"

    def beam_args(self, job_name):
        return [f"--spark_master_url={self.master}"]


@dataclass
class TpuTraining(BaseTrainingBackend):
    cores: int = 8

    def run_step(self, request):
        request.execute()


@dataclass
class MemoryArtifactStore(BaseArtifactStore):
    pass


@dataclass
class MemoryMetadataStore(BaseMetadataStore):
    pass


class EveryKindPlugin:
    @hookimpl
    def register_orchestrators(self, register):
        register("space", SpaceOrchestrator)

    @hookimpl
    def register_processing_backends(self, register):
        register("spark", SparkProcessing)

    @hookimpl
    def register_training_backends(self, register):
        register("tpu", TpuTraining)

    @hookimpl
    def register_artifact_stores(self, register):
        register("mem", MemoryArtifactStore)

    @hookimpl
    def register_metadata_stores(self, register):
        register("memory", MemoryMetadataStore)


def test_builtin_local_backends_come_through_the_hooks(zenml_plugins):
    (builtin,) = zenml_plugins.plugins()
    assert (builtin.name, builtin.distribution, builtin.status) == ("builtin", "zenml-core", LOADED)
    assert builtin.backends == {
        "orchestrator": ["local"],
        "processing": ["local"],
        "training": ["local"],
        "artifact_store": ["file"],
        "metadata_store": ["sqlite", "mysql"],
    }
    assert zenml_plugins.get_class("orchestrator", "local") is LocalOrchestrator


def test_every_hook_registers_its_kind(zenml_plugins):
    info = zenml_plugins.register(
        EveryKindPlugin(), name="every", distribution="zenml-every", version="2.0"
    )
    assert info.status == LOADED, info.errors
    assert zenml_plugins.get_class("orchestrator", "space") is SpaceOrchestrator
    assert zenml_plugins.get_class("processing", "spark") is SparkProcessing
    assert zenml_plugins.get_class("training", "tpu") is TpuTraining
    assert zenml_plugins.get_class("artifact_store", "mem") is MemoryArtifactStore
    assert zenml_plugins.get_class("metadata_store", "memory") is MemoryMetadataStore
    assert [r.plugin.distribution for r in zenml_plugins.registrations("training")] == [
        "zenml-core",
        "zenml-every",
    ]
    assert SpaceOrchestrator(orbit="geo").to_config()["name"] == "space"


def test_a_hook_may_take_fewer_arguments_than_its_spec(zenml_plugins):
    called = []

    class Minimal:
        @hookimpl
        def register_orchestrators(self):
            called.append(True)

    assert zenml_plugins.register(Minimal(), name="minimal").status == LOADED
    assert called == [True]


def test_exception_inside_a_hook_breaks_only_that_plugin(zenml_plugins):
    class Exploding:
        @hookimpl
        def register_orchestrators(self, register):
            register("boom", SpaceOrchestrator)
            raise RuntimeError("credentials file missing")

    info = zenml_plugins.register(
        Exploding(), name="exploding", distribution="zenml-boom", version="0.3"
    )
    assert info.status == FAILED
    assert (
        "raised in register_orchestrators: RuntimeError: credentials file missing" in info.errors[0]
    )
    with pytest.raises(PluginLoadError) as caught:
        zenml_plugins.get_class("orchestrator", "boom")
    message = str(caught.value)
    assert "zenml-boom 0.3 (plugin 'exploding') provides it but failed to load" in message
    assert "credentials file missing" in message
    assert "pip install -U zenml-boom" in message and "ZENML_PLUGINS_BLOCK=exploding" in message
    assert zenml_plugins.get_class("orchestrator", "local") is LocalOrchestrator


def test_bad_hook_signature_is_recorded(zenml_plugins):
    class BadSignature:
        @hookimpl
        def register_orchestrators(self, register, cluster):
            register("bad", SpaceOrchestrator)

    info = zenml_plugins.register(BadSignature(), name="badsig")
    assert info.status == FAILED
    assert "has a bad hook" in info.errors[0] and "cluster" in info.errors[0]
    assert "bad" not in zenml_plugins.names("orchestrator")


def test_misspelled_hook_is_recorded(zenml_plugins):
    class Misspelled:
        @hookimpl
        def register_orchestrator(self, register):
            register("typo", SpaceOrchestrator)

    info = zenml_plugins.register(Misspelled(), name="misspelled")
    assert info.status == FAILED
    assert "implements a hook zenml-core does not define" in info.errors[0]
    assert "register_orchestrator" in info.errors[0]


def test_hook_without_the_marker_is_recorded(zenml_plugins):
    class Unmarked:
        def register_orchestrators(self, register):
            register("unmarked", SpaceOrchestrator)

    info = zenml_plugins.register(Unmarked(), name="unmarked")
    assert info.status == FAILED
    assert "decorate it with @zenml_core.hookimpl" in info.errors[0]


@pytest.mark.parametrize(
    ("name", "cls", "message"),
    [
        ("space", object, "is not a subclass of zenml_core.backends.BaseOrchestrator"),
        ("space", TpuTraining, "is not a subclass of zenml_core.backends.BaseOrchestrator"),
        ("Space Ship", SpaceOrchestrator, "names are short lowercase words"),
        ("", SpaceOrchestrator, "names are short lowercase words"),
    ],
)
def test_invalid_registrations_are_recorded(zenml_plugins, name, cls, message):
    class Invalid:
        @hookimpl
        def register_orchestrators(self, register):
            register(name, cls)

    info = zenml_plugins.register(Invalid(), name="invalid")
    assert info.status == FAILED
    assert message in info.errors[0]


def test_a_plugin_cannot_take_a_built_in_name(zenml_plugins):
    class Impostor:
        @hookimpl
        def register_orchestrators(self, register):
            register("local", SpaceOrchestrator)
            register("space", SpaceOrchestrator)

    info = zenml_plugins.register(
        Impostor(), name="impostor", distribution="zenml-impostor", version="9.9"
    )
    assert zenml_plugins.get_class("orchestrator", "local") is LocalOrchestrator
    assert zenml_plugins.get_class("orchestrator", "space") is SpaceOrchestrator  # the rest works
    assert info.status == LOADED and info.refused == ["orchestrator 'local'"]
    assert info.backends == {"orchestrator": ["space"]}
    (problem,) = zenml_plugins.problems()
    assert "zenml-impostor 9.9" in problem and "orchestrator 'local'" in problem
    assert "a name zenml-core itself provides" in problem


def test_two_third_party_plugins_one_name_is_an_error_naming_both(zenml_plugins):
    @dataclass
    class OtherSpaceOrchestrator(SpaceOrchestrator):
        pass

    def plugin(cls):
        class Plugin:
            @hookimpl
            def register_orchestrators(self, register):
                register("space", cls)

        return Plugin()

    zenml_plugins.register(plugin(SpaceOrchestrator), name="a", distribution="zenml-a", version="1")
    zenml_plugins.register(
        plugin(OtherSpaceOrchestrator), name="b", distribution="zenml-b", version="2"
    )
    with pytest.raises(PluginConflictError) as by_name:
        zenml_plugins.get_class("orchestrator", "space")
    # passing the class object itself is no way around it: either class names both
    for cls in (SpaceOrchestrator, OtherSpaceOrchestrator):
        with pytest.raises(PluginConflictError) as by_class:
            zenml_plugins.name_of(cls)
        assert str(by_class.value) == str(by_name.value)
    message = str(by_name.value)
    assert "orchestrator backend name 'space' is registered by both" in message
    assert "zenml-a 1" in message and "zenml-b 2" in message
    assert zenml_plugins.get_class("orchestrator", "local")  # the rest still works
    assert len(zenml_plugins.problems()) == 1


def test_a_conflicting_class_object_does_not_run(zenml_plugins, tmp_path, monkeypatch):
    from zenml_core import Pipeline
    from zenml_core.repository import init
    from zenml_core.testing.steps import numbers

    class Twice:
        @hookimpl
        def register_orchestrators(self, register):
            register("space", SpaceOrchestrator)

    zenml_plugins.register(Twice(), name="a", distribution="zenml-a", version="1")
    zenml_plugins.register(Twice(), name="b", distribution="zenml-b", version="2")
    monkeypatch.chdir(tmp_path)
    init(tmp_path)
    pipeline = Pipeline("conflicted")
    pipeline.add_step(numbers())
    with pytest.raises(PluginConflictError, match=r"zenml-a 1 .* and zenml-b 2"):
        pipeline.run(backend=SpaceOrchestrator())
    assert not list((tmp_path / ".zenml").rglob("*.zip")), "nothing is written for a refused run"


def test_using_a_class_of_a_failed_plugin_names_the_failure(zenml_plugins):
    class HalfBroken:
        @hookimpl
        def register_orchestrators(self, register):
            register("space", SpaceOrchestrator)
            raise RuntimeError("the hook broke after registering")

    zenml_plugins.register(HalfBroken(), name="half", distribution="zenml-half", version="3")
    with pytest.raises(PluginLoadError, match="the hook broke after registering") as caught:
        zenml_plugins.name_of(SpaceOrchestrator)
    assert "zenml-half 3" in str(caught.value) and "is not registered" not in str(caught.value)
    with pytest.raises(PluginLoadError, match="zenml-half 3"):
        zenml_plugins.get_class("orchestrator", "space")


def test_an_unknown_name_blames_a_plugin_that_failed_before_registering(zenml_plugins):
    class Exploding:
        @hookimpl
        def register_orchestrators(self, register):
            raise RuntimeError("nothing registered")

    zenml_plugins.register(Exploding(), name="exploding", distribution="zenml-x", version="1")
    with pytest.raises(PluginLoadError) as caught:
        zenml_plugins.get_class("orchestrator", "space")
    assert "zenml-x 1" in str(caught.value) and "nothing registered" in str(caught.value)


def test_a_plugin_added_for_a_while_can_be_removed(zenml_plugins):
    zenml_plugins.register(EveryKindPlugin(), name="every")
    assert "space" in zenml_plugins.names("orchestrator")
    zenml_plugins.unregister("every")
    assert "space" not in zenml_plugins.names("orchestrator")
    assert all(p.name != "every" for p in zenml_plugins.plugins())
    zenml_plugins.register(EveryKindPlugin(), name="every")  # and added again
    assert "space" in zenml_plugins.names("orchestrator")


def test_registering_the_same_plugin_name_twice_is_refused(zenml_plugins):
    zenml_plugins.register(EveryKindPlugin(), name="every")
    with pytest.raises(PluginError, match="already registered"):
        zenml_plugins.register(EveryKindPlugin(), name="every")


def test_strict_mode_makes_any_problem_fatal():
    class Exploding:
        @hookimpl
        def register_orchestrators(self, register):
            raise RuntimeError("nope")

    manager = PluginManager(entry_points=None, env={"ZENML_STRICT_PLUGINS": "1"})
    with pytest.raises(PluginLoadError, match="ZENML_STRICT_PLUGINS is set"):
        manager.register(Exploding(), name="exploding")


def test_plugins_load_once_even_when_asked_from_many_threads():
    scans = []

    def entry_points():
        scans.append(threading.get_ident())
        return []

    manager = PluginManager(entry_points=entry_points)
    barrier = threading.Barrier(8)
    found = []

    def ask():
        barrier.wait()
        found.append(manager.get_class("orchestrator", "local"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(scans) == 1
    assert found == [LocalOrchestrator] * 8
