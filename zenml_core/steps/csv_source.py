"""CSVSource: a CSV file becomes a versioned Parquet dataset, with its schema checked."""

from __future__ import annotations

from typing import Any

from zenml_core.exceptions import ConfigError
from zenml_core.pipeline.context import StepContext
from zenml_core.pipeline.step import Step
from zenml_core.steps.dataset import Dataset

#: column types users may declare, and the Arrow types they mean
TYPES = {"int": "int64", "float": "float64", "string": "string", "bool": "bool"}
ROWS_PER_FILE = 1 << 18  # several files let a Beam job spread over workers


class CSVSource(Step):
    """Reads a CSV file — a local path, or a URI of an artifact store that reads plain files —
    into Parquet, with types inferred, or checked against ``columns``.

    ``columns`` maps column names to "int", "float", "string" or "bool": each must exist and
    every value must convert. ``label`` must exist too.

    Without a declared type, a column whose values are numbers but for a few (a stray ``abc``)
    would be read as text, and become a category of every distinct value: such a column is
    reported with its count and first row (a ``DataWarning``; an error with ``strict=True``).
    Declare its type in ``columns`` to have each bad value named, or fix the file.
    """

    READS = ("path",)  # the file's content is part of the cache key

    def entrypoint(
        self,
        ctx: StepContext,
        path: str,
        label: str | None = None,
        columns: dict[str, str] | None = None,
        delimiter: str = ",",
        strict: bool = False,
    ) -> Dataset:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        for name, kind in (columns or {}).items():
            if kind not in TYPES:
                raise ConfigError(
                    f"CSVSource: column {name!r} has type {kind!r}; use one of {sorted(TYPES)}."
                )
        if "://" in path:  # a URI: read through the artifact store of its scheme
            from zenml_core.artifacts import ArtifactStore

            store = ArtifactStore(path.rsplit("/", 1)[0])
            path = str(store.local_copy(path, ctx.temp_dir / "input.csv"))
        try:
            table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter))
        except FileNotFoundError as error:
            raise ConfigError(f"CSVSource: no file {path}.") from error
        except pa.ArrowInvalid as error:
            raise ConfigError(f"CSVSource: {path} cannot be read as CSV: {error}") from error
        if table.num_rows == 0:
            raise ConfigError(f"CSVSource: {path} has a header but no rows.")
        required = [*(columns or {}), *([label] if label else [])]
        missing = [c for c in required if c not in table.column_names]
        if missing:
            raise ConfigError(
                f"CSVSource: {path} has no column(s) {missing}; its columns are "
                f"{table.column_names}."
            )
        for name, kind in (columns or {}).items():
            table = table.set_column(
                table.column_names.index(name), name, _cast(table[name], kind, name, path)
            )
        for name in table.column_names:
            if name not in (columns or {}):
                _check_mostly_numeric(table[name], name, path, strict)
        out = ctx.output_dir()
        for index, offset in enumerate(range(0, table.num_rows, ROWS_PER_FILE)):
            pq.write_table(
                table.slice(offset, ROWS_PER_FILE),
                out / f"part-{index:05d}.parquet",
                row_group_size=1 << 16,
            )
        dataset = Dataset(out)
        if label:
            dataset.write_info(label=label)  # the preprocesser checks it trains on this
        return dataset


def _cast(column: Any, kind: str, name: str, path: str) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    target = pa.type_for_alias(TYPES[kind])
    try:
        return pc.cast(column, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # find the first value that does not convert, to name it
    for row, value in enumerate(column.to_pylist()):
        try:
            pc.cast(pa.array([value]), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ConfigError(
                f"CSVSource: column {name!r} of {path} should be {kind}, but data row "
                f"{row + 1} (line {row + 2} of the file) holds {value!r}."
            ) from None
    raise ConfigError(f"CSVSource: column {name!r} of {path} does not convert to {kind}.")


#: a number as CSV files write them
_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
#: a text column is "mostly numeric" when at least this share of its values are numbers
MOSTLY = 0.9


def _check_mostly_numeric(column: Any, name: str, path: str, strict: bool) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        return
    present = pc.drop_null(column)
    if len(present) == 0:
        return
    numeric = pc.match_substring_regex(present, _NUMBER)
    numbers = pc.sum(numeric).as_py() or 0
    others = len(present) - numbers
    if others == 0 or numbers < MOSTLY * len(present):
        return
    matches = pc.match_substring_regex(column, _NUMBER).to_pylist()
    row = next(i for i, ok in enumerate(matches) if ok is False)
    message = (
        f"CSVSource: column {name!r} of {path} holds numbers but for {others} value(s), "
        f"the first {column[row].as_py()!r} at data row {row + 1} (line {row + 2} of the file): "
        f"it is read as text, so it would become a category of every distinct value. Fix the "
        f"file, or declare the column (columns={{{name!r}: 'float'}}) to have each bad value "
        "named."
    )
    if strict:
        raise ConfigError(message)
    import warnings

    from zenml_core.exceptions import DataWarning

    warnings.warn(message, DataWarning, stacklevel=2)
