"""Fixtures: a loopback Kubernetes whose Jobs really run, GCS and MariaDB on loopback, and a
project whose steps live only in its own folder (they reach the pod in the code package).

Live mode (``ZENML_LIVE_K8S=1``, see the README): the same tests against a real cluster, real
GCS and a real MySQL server named by the ZENML_LIVE_* variables below; tests that need the
emulator's internals (its request log, injected faults) are skipped there.
"""

from __future__ import annotations

import os
import sys
import textwrap
import uuid

import pytest

pytest_plugins = ["zenml_core.testing.fixtures"]  # the loopback fixtures come with zenml-loopback

USER_STEPS = """
import os
import time

from zenml_core import step


@step
def numbers(n: int = 4) -> list:
    return list(range(n))


@step
def slow_sum(x: list, seconds: float = 0.0) -> int:
    time.sleep(seconds)
    return sum(x)


@step
def boom(x: list) -> int:
    raise ValueError("the step failed on purpose")


@step
def meet(x: list, me: str, other: str, where: str) -> str:
    # a barrier: returns only once the other branch has started too, so two branches that
    # ran one after the other fail here instead of passing on timing
    from zenml_core.artifacts import ArtifactStore

    store = ArtifactStore(where)
    with store.staging() as folder:
        (folder / "here").write_text(me)
        store.publish_folder(folder, store.uri("barrier", me))
    deadline = time.monotonic() + 180
    while not store.exists(store.uri("barrier", other)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{other} never ran while {me} did: the branches ran in turn")
        time.sleep(0.2)
    return me


@step
def where(x: list) -> dict:
    # where the step ran: in its own container the run is PID 1; the interpreter tells the image
    import sys

    with open("/proc/1/cmdline", "rb") as cmdline:
        pid1 = cmdline.read().replace(bytes([0]), b" ").decode()
    return {"own_container": "zenml_core run --spec" in pid1, "python": sys.executable}
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fresh project folder as the working directory, with the user's steps importable."""
    from zenml_core.repository import init

    (tmp_path / "user_steps.py").write_text(textwrap.dedent(USER_STEPS))
    monkeypatch.chdir(tmp_path)
    init(tmp_path)
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("user_steps", None)


LIVE = os.environ.get("ZENML_LIVE_K8S", "") not in ("", "0")
LIVE_REQUIRED = (
    "ZENML_LIVE_K8S_NAMESPACE",  # an existing namespace you may create Jobs and Secrets in
    "ZENML_LIVE_K8S_IMAGE",  # an image FROM our base with zenml-gcp (zenml docker build)
    "ZENML_LIVE_GCS",  # gs://BUCKET/PREFIX, reachable with application-default credentials
    "ZENML_LIVE_MYSQL_HOST",  # a MySQL server both this machine and the pods reach
    "ZENML_LIVE_MYSQL_USER",
    "ZENML_LIVE_MYSQL_PASSWORD",
    "ZENML_LIVE_MYSQL_DATABASE",
)


def pytest_collection_modifyitems(config, items):
    if not LIVE:
        return
    missing = [name for name in LIVE_REQUIRED if not os.environ.get(name)]
    for item in items:
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"live mode needs {', '.join(missing)}"))
        elif "loopback_kubernetes" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason="needs the loopback cluster's internals"))


@pytest.fixture
def kubeconfig(request, tmp_path):
    if LIVE:  # $ZENML_LIVE_KUBECONFIG, else the usual $KUBECONFIG or ~/.kube/config
        return os.environ.get("ZENML_LIVE_KUBECONFIG")
    cluster = request.getfixturevalue("loopback_kubernetes")
    return str(cluster.write_kubeconfig(tmp_path / "kubeconfig"))


@pytest.fixture
def stores(request):
    """Stores both this process and the pod reach: gs:// on the emulator, MySQL on MariaDB
    (live: the real bucket and server)."""
    prefix = uuid.uuid4().hex[:8]
    if LIVE:
        from zenml_core.metadata import MySQLMetadataStore

        return {
            "artifact_store": f"{os.environ['ZENML_LIVE_GCS'].rstrip('/')}/{prefix}",
            "metadata_store": MySQLMetadataStore(
                host=os.environ["ZENML_LIVE_MYSQL_HOST"],
                port=int(os.environ.get("ZENML_LIVE_MYSQL_PORT", "3306")),
                database=os.environ["ZENML_LIVE_MYSQL_DATABASE"],
                username=os.environ["ZENML_LIVE_MYSQL_USER"],
                password=os.environ["ZENML_LIVE_MYSQL_PASSWORD"],
            ),
        }
    return {
        "artifact_store": f"{request.getfixturevalue('gcs_bucket')}/{prefix}",
        "metadata_store": request.getfixturevalue("mysql_store"),
    }


@pytest.fixture
def k8s_params(request, kubeconfig):
    """What a user would write, pointed at the loopback cluster and its GCS emulator (live:
    at the real cluster)."""
    if LIVE:
        return {
            "kubeconfig": kubeconfig,
            "context": os.environ.get("ZENML_LIVE_K8S_CONTEXT"),
            "namespace": os.environ["ZENML_LIVE_K8S_NAMESPACE"],
            "image": os.environ["ZENML_LIVE_K8S_IMAGE"],
            "poll_seconds": 2.0,
        }
    from zenml_loopback.fixtures import WORKLOAD_IMAGE

    return {
        "kubeconfig": kubeconfig,
        "namespace": "ml",
        "image": WORKLOAD_IMAGE,
        "image_pull_policy": "Never",
        "env": request.getfixturevalue("gcs_emulator").environment(),
        "poll_seconds": 0.2,
    }
