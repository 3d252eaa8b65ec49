"""Names cannot leave the artifact root: Python names are checked exactly as YAML names, at
construction, and the artifact store refuses any address outside its root."""

from __future__ import annotations

import pytest

from zenml_core import Outputs, Pipeline, step
from zenml_core.artifacts.local import LocalArtifactStore
from zenml_core.exceptions import ArtifactStoreError, PipelineError
from zenml_core.pipeline.spec import PipelineSpec

BAD_NAMES = ["..", "../escape", "a/b", "/abs", "name\n", "x" * 5000, "", ".hidden", "a\0b"]


@step
def numbers() -> list:
    return [1, 2, 3]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_pipeline_names_are_refused_in_python_and_yaml(name):
    with pytest.raises(PipelineError, match="Pipeline"):
        Pipeline(name)
    with pytest.raises(PipelineError, match="Pipeline 'name'"):
        PipelineSpec.from_dict({"name": name, "steps": [{"name": "a", "source": "m:f"}]})


@pytest.mark.parametrize("name", [*BAD_NAMES, "a.b"], ids=repr)
def test_bad_step_and_output_names_are_refused_in_python_and_yaml(name):
    with pytest.raises(PipelineError, match="Step name"):
        numbers().with_name(name)
    with pytest.raises(PipelineError, match="output name"):
        Outputs(**{name: int})
    with pytest.raises(PipelineError, match="'name'"):
        PipelineSpec.from_dict({"name": "p", "steps": [{"name": name, "source": "m:f"}]})


def test_a_refused_name_writes_nothing(project):
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    with pytest.raises(PipelineError):
        Pipeline("../../outside").add_step(numbers())
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before
    assert not (project.parent / "outside").exists()


def test_good_names_still_pass():
    pipeline = Pipeline("churn-model.v2")
    pipeline.add_step(numbers().with_name("numbers_2"))
    assert Outputs(train=int, eval_rows=int).types.keys() == {"train", "eval_rows"}


def test_the_artifact_store_refuses_addresses_outside_its_root(tmp_path):
    store = LocalArtifactStore(str(tmp_path / "artifacts"))
    for parts in [("..", "x"), ("runs", "../../x"), ("a/./b",), ("ok\n",)]:
        with pytest.raises(ArtifactStoreError, match="Refusing the artifact address part"):
            store.uri(*parts)
    with store.staging() as folder, pytest.raises(ArtifactStoreError, match="outside"):
        (folder / "f").write_text("x")
        store.publish_folder(folder, str(tmp_path / "elsewhere" / "x"))
    assert not (tmp_path / "elsewhere").exists()
