"""Readers that never crash: every malformed pipeline file, run spec or project config is a
clear error naming the problem, before anything is written; nothing is silently taken."""

from __future__ import annotations

import json
import textwrap

import pytest

from zenml_core.cli import main

GOOD_STEP = {"name": "numbers", "source": "zenml_core.testing.steps:numbers"}

ALIAS_BOMB = textwrap.dedent("""\
    a: &a ["x","x","x","x","x","x","x","x","x"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    name: bomb
    steps: [*f]
    """).encode()

PIPELINE_FILES = {
    "invalid UTF-8": (b"name: caf\xe9\nsteps: []\n", "not UTF-8"),
    "binary": (b"\x7fELF\x02\x01\x01\x00\x00\x00name: x", "binary file"),
    "deep nesting": (b"name: deep\nsteps: " + b"[" * 5000 + b"]" * 5000, "nested deeper"),
    "duplicate keys": (
        b"name: one\nname: two\nsteps:\n"
        b"- {name: numbers, source: 'zenml_core.testing.steps:numbers'}\n",
        "key 'name' appears twice",
    ),
    "alias bomb": (ALIAS_BOMB, "aliases (*name) are not accepted"),
    "name ending in a newline": (
        json.dumps({"name": "p\n", "steps": [GOOD_STEP]}).encode(),
        "Pipeline 'name' must be",
    ),
    "5000-character name": (
        json.dumps({"name": "p" * 5000, "steps": [GOOD_STEP]}).encode(),
        "at most 128 characters",
    ),
    "a parameter and an input for one argument": (
        json.dumps(
            {
                "name": "both",
                "steps": [
                    GOOD_STEP,
                    {
                        "name": "mean",
                        "source": "zenml_core.testing.steps:mean_and_pid",
                        "params": {"values": [1, 2]},
                        "inputs": {"values": "numbers.output"},
                    },
                ],
            }
        ).encode(),
        "given both as 'params' and as 'inputs'",
    ),
}


@pytest.mark.parametrize("case", PIPELINE_FILES, ids=str)
def test_a_malformed_pipeline_file_is_a_clear_error_and_writes_nothing(project, capsys, case):
    content, message = PIPELINE_FILES[case]
    path = project / "pipeline.yaml"
    path.write_bytes(content)
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    assert main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("zenml: error: ") and message in err, err[:500]
    assert "Traceback" not in err and len(err) < 2000
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 100000 + b"]" * 100000, "nests too deeply"),
    ],
    ids=["invalid UTF-8", "deep nesting"],
)
def test_a_malformed_run_spec_is_a_clear_error(project, tmp_path, capsys, content, message):
    spec = tmp_path / "spec.json"
    spec.write_bytes(content)
    assert main(["run", "--spec", str(spec)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "config, message",
    [
        (b"components: [unclosed", "does not parse as YAML"),
        (b"\x00\x01binary", "binary file"),
        (b"- just\n- a list\n", "must be a mapping with 'components'"),
        (b"components:\n  metadata_store: sqlite\n", "must be a mapping with 'components'"),
    ],
    ids=["broken YAML", "binary", "a list", "a component that is not a mapping"],
)
def test_a_broken_project_config_is_named_with_the_fix(project, capsys, config, message):
    (project / ".zenml" / "config.yaml").write_bytes(config)
    assert main(["runs", "list"]) == 1
    err = capsys.readouterr().err
    assert message in err and "config.yaml" in err and "zenml init" in err
    assert "Traceback" not in err


def test_zenml_init_on_a_bad_path_is_a_clear_error(tmp_path, capsys):
    occupied = tmp_path / "a-file"
    occupied.write_text("not a folder")
    assert main(["init", str(occupied)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("zenml: error: Cannot make a zenml project in") and "Traceback" not in err


def test_duplicate_keys_in_a_component_yaml_are_refused():
    from zenml_core.backends import BaseOrchestrator
    from zenml_core.exceptions import ConfigError

    with pytest.raises(ConfigError, match="key 'name' appears twice"):
        BaseOrchestrator.from_yaml("name: local\nname: kubernetes\n")
