"""Artifact stores: where step outputs live, addressed by URI."""

from __future__ import annotations

from zenml_core.artifacts.base import BaseArtifactStore, fingerprint


def ArtifactStore(uri: str) -> BaseArtifactStore:
    """The artifact store for a URI, chosen by its scheme (``gs://`` needs ``zenml-gcp``)."""
    from urllib.parse import urlparse

    from zenml_core.plugins import get_plugin_manager

    scheme = urlparse(uri).scheme if "://" in uri else "file"
    store = get_plugin_manager().get_class("artifact_store", scheme).from_params({"root": uri})
    assert isinstance(store, BaseArtifactStore)
    return store


__all__ = ["ArtifactStore", "BaseArtifactStore", "fingerprint"]
