"""Local runs listen on loopback only: the sockets listening while a Beam job of the local
processing backend runs (read from /proc/net inside the job), against those before it. Beam's
multi-process mode, which binds every interface, needs explicit consent and warns."""

from __future__ import annotations

import ipaddress
import json
import os
import warnings
from pathlib import Path

import listeners  # tests/support
import pytest

from zenml_core.backends import LocalProcessingBackend
from zenml_core.exceptions import ConfigError

SUPPORT = str(Path(listeners.__file__).parent)


def _opened_during_a_job(backend, folder: Path, monkeypatch) -> tuple[set, set]:
    """(listeners beyond loopback that appeared while the job ran, pids that looked)."""
    import apache_beam as beam

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([SUPPORT, os.environ.get("PYTHONPATH", "")]))
    before = listeners.listening()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        args = backend.beam_args("listeners")
    with beam.Pipeline(argv=args) as pipeline:
        _ = pipeline | beam.Create(range(8)) | beam.Map(listeners.snapshot, folder=str(folder))
    seen, pids = set(), set()
    for path in folder.glob("*.json"):
        record = json.loads(path.read_text())
        pids.add(record["pid"])
        seen |= {tuple(item) for item in record["listening"]}
    assert pids, "the job looked at no listener"
    opened = {(a, p) for a, p in seen - before if not ipaddress.ip_address(a).is_loopback}
    return opened, pids


def test_the_default_local_backend_opens_no_port_beyond_loopback(tmp_path, monkeypatch):
    opened, _ = _opened_during_a_job(LocalProcessingBackend(), tmp_path, monkeypatch)
    assert opened == set()


def test_multi_processing_is_refused_without_consent():
    with pytest.raises(ConfigError, match="every network interface"):
        LocalProcessingBackend(running_mode="multi_processing", num_workers=2)


def test_consented_multi_processing_warns_and_its_listeners_are_seen(tmp_path, monkeypatch):
    """Proves the check sees what it guards against: Beam's worker servers on '::'."""
    backend = LocalProcessingBackend(
        running_mode="multi_processing", num_workers=2, listen_on_all_interfaces=True
    )
    with pytest.warns(RuntimeWarning, match="every network interface"):
        backend.beam_args("probe")
    opened, pids = _opened_during_a_job(backend, tmp_path, monkeypatch)
    assert os.getpid() not in pids  # the elements really went to worker processes
    assert opened, "Beam's multi-process servers did not show up: the check would see nothing"
