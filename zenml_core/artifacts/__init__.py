"""Artifact stores: where step outputs live, addressed by URI."""

from __future__ import annotations

from pathlib import Path

from zenml_core.artifacts.base import BaseArtifactStore, fingerprint


def ArtifactStore(uri: str) -> BaseArtifactStore:
    """The artifact store for a URI, chosen by its scheme (``gs://`` needs ``zenml-gcp``)."""
    from urllib.parse import urlparse

    from zenml_core.plugins import get_plugin_manager

    scheme = urlparse(uri).scheme if "://" in uri else "file"
    store = get_plugin_manager().get_class("artifact_store", scheme).from_params({"root": uri})
    assert isinstance(store, BaseArtifactStore)
    return store


def source_fingerprint(uri: str) -> str:
    """The content identity of data a step reads from outside the pipeline (a local path or
    any URI an artifact store serves), by the store of its scheme."""
    if "://" not in uri:
        from zenml_core.artifacts.base import content_fingerprint

        return content_fingerprint(Path(uri))
    return ArtifactStore(uri.rsplit("/", 1)[0]).source_fingerprint(uri)


__all__ = ["ArtifactStore", "BaseArtifactStore", "fingerprint", "source_fingerprint"]
