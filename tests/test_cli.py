"""The zenml command line, in-process (the real-distribution cases are in test_discovery.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from zenml_core import __version__
from zenml_core.cli import main


def test_plugins_table_lists_the_builtin_plugin(zenml_plugins, capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "DISTRIBUTION",
        "VERSION",
        "PLUGIN",
        "STATUS",
        "ORCHESTRATOR",
        "PROCESSING",
        "TRAINING",
        "ARTIFACT_STORE",
        "METADATA_STORE",
    ]
    assert out[2].split() == [
        "zenml-core",
        __version__,
        "builtin",
        "loaded",
        "local",
        "local",
        "local",
        "file",
        "mysql,sqlite",
    ]


def test_plugins_json(zenml_plugins, capsys):
    assert main(["plugins", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["core_version"] == __version__
    assert report["plugins"] == [
        {
            "name": "builtin",
            "distribution": "zenml-core",
            "version": __version__,
            "module": "zenml_core.builtin_plugin",
            "status": "loaded",
            "backends": {
                "orchestrator": ["local"],
                "processing": ["local"],
                "training": ["local"],
                "artifact_store": ["file"],
                "metadata_store": ["mysql", "sqlite"],
            },
            "attempted": {},
            "refused": [],
            "import_seconds": None,
            "heavy_imports": [],
            "errors": [],
        }
    ]
    assert report["conflicts"] == []


def test_backends_of_one_kind(zenml_plugins, capsys):
    assert main(["backends", "processing"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["KIND", "NAME", "CLASS", "DISTRIBUTION", "VERSION"]
    assert out[2].split() == [
        "processing",
        "local",
        "zenml_core.backends.local.LocalProcessingBackend",
        "zenml-core",
        __version__,
    ]
    assert len(out) == 3


def test_unknown_kind_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["backends", "teleporter"])
    assert caught.value.code == 2
    assert "invalid choice: 'teleporter'" in capsys.readouterr().err


def test_console_script_and_module_entrypoint_agree():
    console_script = str(Path(sys.executable).with_name("zenml"))
    for command in ([console_script], [sys.executable, "-m", "zenml_core"]):
        result = subprocess.run([*command, "--version"], capture_output=True, text=True, check=True)
        assert result.stdout.strip() == f"zenml-core {__version__}"
