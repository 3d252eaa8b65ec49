"""Metadata stores: runs, step executions and artifact lineage (ml-metadata underneath)."""

from zenml_core.metadata.base import BaseMetadataStore
from zenml_core.metadata.mlmd import MySQLMetadataStore, SQLiteMetadataStore

__all__ = ["BaseMetadataStore", "MySQLMetadataStore", "SQLiteMetadataStore"]
