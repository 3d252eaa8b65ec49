"""Datasets between data steps: folders of Parquet files, one sub-folder per split.

Parquet (via pyarrow) is readable by pandas, Beam, Spark and Dask alike. A dataset artifact is
``<artifact>/<split>/*.parquet``, or ``<artifact>/*.parquet`` before it is split.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zenml_core.pipeline.materializers import DATA, Materializer, register_materializer

PARQUET = ".parquet"
#: rows per Parquet row group: the unit of work a data step's Beam job spreads over workers
ROW_GROUP = 1 << 16
#: what a dataset says of itself (its label column), beside its Parquet files
INFO_FILE = "dataset.json"


@dataclass(frozen=True)
class Dataset:
    """A handle on Parquet files in a local folder."""

    path: Path

    @property
    def info(self) -> dict[str, Any]:
        import json

        file = self.path / INFO_FILE
        return json.loads(file.read_text()) if file.is_file() else {}

    @property
    def label(self) -> str | None:
        """The label column its source was given (``CSVSource(label=...)``), if any."""
        label = self.info.get("label")
        return str(label) if label else None

    def write_info(self, **info: Any) -> None:
        import json

        (self.path / INFO_FILE).write_text(json.dumps({**self.info, **info}))

    def copy_info_to(self, other: Dataset) -> None:
        """A step's output dataset keeps what its input said of itself (its label...)."""
        if self.info:
            other.write_info(**self.info)

    @property
    def splits(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if p.is_dir() and _parquet_in(p))

    def files(self, split: str | None = None) -> list[Path]:
        folder = self.path / split if split else self.path
        if split and split not in self.splits:
            from zenml_core.exceptions import ConfigError

            raise ConfigError(f"The dataset has no split {split!r}; its splits are {self.splits}.")
        return _parquet_in(folder)

    def read(self, split: str | None = None, columns: list[str] | None = None) -> Any:
        """The whole (split of the) dataset as one pyarrow Table."""
        import pyarrow.parquet as pq

        tables = [pq.read_table(f, columns=columns) for f in self.files(split)]
        import pyarrow as pa

        return pa.concat_tables(tables) if tables else pa.table({})

    def num_rows(self, split: str | None = None) -> int:
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files(split))

    def schema(self, split: str | None = None) -> Any:
        import pyarrow.parquet as pq

        return pq.read_schema(self.files(split)[0])


def write_parquet(table: Any, where: Any) -> None:
    """How every data step writes Parquet (``where``: a local path, a URI as a job's workers
    see it, or a binary file). Dictionary encoding only for columns that are not floats:
    measured floats seldom repeat, and trying costs as much as the rest of the write."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(where, str) and "://" in where:
        from zenml_core.pipeline.context import open_binary

        with open_binary(where, "wb") as handle:
            write_parquet(table, handle)
        return
    if isinstance(where, str | Path):  # Arrow's own file, not a Python one: no GIL per write
        Path(where).parent.mkdir(parents=True, exist_ok=True)
    dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    pq.write_table(table, where, row_group_size=ROW_GROUP, use_dictionary=dictionary)


def parquet_writer(where: Any, schema: Any) -> Any:
    """A ``pyarrow.parquet.ParquetWriter`` with the options of ``write_parquet``, for a file
    written a row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dictionary = [f.name for f in schema if not pa.types.is_floating(f.type)]
    return pq.ParquetWriter(where, schema, use_dictionary=dictionary)


def row_groups(data: Dataset, source: str, split: str | None = None) -> list[tuple[str, int]]:
    """(file, row group) of every row group of a split (or of the unsplit dataset): the units
    of work a Beam job spreads over its workers, the files named where the workers read them
    (``source``: the dataset's folder there)."""
    import pyarrow.parquet as pq

    from zenml_core.pipeline.context import join

    folder = [split] if split else []
    return [
        (join(source, *folder, path.name), index)
        for path in data.files(split)
        for index in range(pq.ParquetFile(path).num_row_groups)
    ]


def read_row_group(path: str, index: int, columns: list[str] | None = None) -> Any:
    """One row group as a pyarrow Table, read where the job runs (a path or a URI)."""
    import pyarrow.parquet as pq

    from zenml_core.pipeline.context import open_binary

    if "://" not in path:  # Arrow reads a local file itself, without the GIL
        return pq.ParquetFile(path).read_row_group(index, columns=columns)
    with open_binary(path, "rb") as file:
        return pq.ParquetFile(file).read_row_group(index, columns=columns)


def _parquet_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(f"*{PARQUET}") if p.is_file())


def _move_into(source: Path, folder: Path) -> None:
    target = folder / DATA
    try:
        os.rename(source, target)  # a step's output_dir sits beside the staging area
    except OSError:
        shutil.copytree(source, target)


def register_folder_type(name: str, folder_type: type) -> None:
    """Outputs of ``folder_type`` (anything with a ``path`` folder) are moved into their
    artifact, and come back as ``folder_type(artifact folder)``."""
    register_materializer(
        Materializer(
            name,
            lambda annotation: isinstance(annotation, type) and issubclass(annotation, folder_type),
            lambda value, folder: _move_into(Path(value.path), folder),
            lambda folder: folder_type(folder / DATA),
        )
    )


register_folder_type("dataset", Dataset)
