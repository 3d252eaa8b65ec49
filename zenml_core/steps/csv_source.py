"""CSVSource: a CSV file becomes a versioned Parquet dataset, with its schema checked."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from zenml_core.exceptions import ConfigError
from zenml_core.pipeline.context import StepContext
from zenml_core.pipeline.step import Step
from zenml_core.steps.dataset import ROW_GROUP, Dataset, parquet_writer

#: column types users may declare, and the Arrow types they mean
TYPES = {"int": "int64", "float": "float64", "string": "string", "bool": "bool"}
ROWS_PER_FILE = 1 << 18  # several files let a Beam job spread over workers
# the CSV is read a block at a time, so memory does not grow with it (4 MiB measured fastest)
BLOCK_BYTES = 1 << 22
# ... and converted a chunk of lines at a time by Arrow's threads (its streaming reader parses
# on one thread: 2.9 s for 3M rows against 1.4 s in 8 MiB chunks, measured on 2 cores)
CHUNK_BYTES = 1 << 23


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

        declared = columns or {}
        for name, kind in declared.items():
            if kind not in TYPES:
                raise ConfigError(
                    f"CSVSource: column {name!r} has type {kind!r}; use one of {sorted(TYPES)}."
                )
        if "://" in path:  # a URI: read through the artifact store of its scheme
            from zenml_core.artifacts import ArtifactStore

            store = ArtifactStore(path.rsplit("/", 1)[0])
            path = str(store.local_copy(path, ctx.temp_dir / "input.csv"))
        types = {name: pa.type_for_alias(TYPES[kind]) for name, kind in declared.items()}
        out = ctx.output_dir()
        while True:  # read as a stream; a column a later block proves wider is read again
            try:
                rows, numbers = _convert(path, delimiter, types, out, [*declared, label])
                break
            except pa.ArrowInvalid as error:
                failed, wider = _widened(error, path, delimiter)
                if failed in declared:
                    _name_bad_value(path, delimiter, failed, declared[failed])
                if failed is None or wider is None:
                    raise ConfigError(f"CSVSource: {path} cannot be read as CSV: {error}") from None
                types[failed] = wider
                for written in out.iterdir():
                    written.unlink()
        if rows == 0:
            raise ConfigError(f"CSVSource: {path} has a header but no rows.")
        for name, count in numbers.items():
            if name not in declared:
                _check_mostly_numeric(count, name, path, strict)
        dataset = Dataset(out)
        if label:
            dataset.write_info(label=label)  # the preprocesser checks it trains on this
        return dataset


def _reader(path: str, delimiter: str, types: dict[str, Any], only: list[str] | None = None) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        return pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=only or []),
        )
    except FileNotFoundError as error:
        raise ConfigError(f"CSVSource: no file {path}.") from error
    except pa.ArrowInvalid as error:
        if "CSV conversion error" in str(error):
            raise  # the first block: the caller widens the column
        raise ConfigError(f"CSVSource: {path} cannot be read as CSV: {error}") from error


def _convert(
    path: str, delimiter: str, types: dict[str, Any], out: Path, required: list[str | None]
) -> tuple[int, dict[str, _NumberCount]]:
    """Stream the CSV into Parquet parts, counting the numbers in its text columns; the rows
    it read. Memory holds a block and a row group, whatever the file's size."""
    import pyarrow as pa

    tables = _tables(path, delimiter, types)
    first = next(tables, None)
    if first is None:
        raise ConfigError(f"CSVSource: {path} is empty; it needs a header line and rows.")
    names = first.schema.names
    missing = [c for c in required if c and c not in names]
    if missing:
        raise ConfigError(f"CSVSource: {path} has no column(s) {missing}; its columns are {names}.")
    numbers = {
        f.name: _NumberCount()
        for f in first.schema
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    }
    parts, rows = _Parts(out), 0
    try:
        # a chunk is written while the next is parsed; memory holds two chunks at most
        with ThreadPoolExecutor(1, thread_name_prefix="zenml-csv-write") as writer:
            writing: Future[None] | None = None
            for table in itertools.chain([first], tables):
                for name, count in numbers.items():
                    count.add(table.column(name), rows)
                rows += table.num_rows
                if writing is not None:
                    writing.result()
                writing = writer.submit(parts.add_table, table)
            if writing is not None:
                writing.result()
        parts.flush()
    finally:
        parts.close()
    return rows, numbers


def _tables(path: str, delimiter: str, types: dict[str, Any]) -> Iterator[Any]:
    """The CSV as tables of about CHUNK_BYTES each, cut at line ends (Arrow's readers do not
    allow line breaks in values either). The first chunk's header and inferred types are the
    rest's, so a later value that does not fit fails as it would in one read of the file."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter=delimiter)
    read = pacsv.ReadOptions(block_size=BLOCK_BYTES)
    convert = pacsv.ConvertOptions(column_types=types)
    for chunk in _line_chunks(path):
        table = pacsv.read_csv(
            pa.BufferReader(chunk), read_options=read, parse_options=parse, convert_options=convert
        )
        if not read.column_names:  # the header was the first chunk's
            read = pacsv.ReadOptions(block_size=BLOCK_BYTES, column_names=table.schema.names)
            convert = pacsv.ConvertOptions(column_types={f.name: f.type for f in table.schema})
        yield table


def _line_chunks(path: str) -> Iterator[bytes]:
    """The file's bytes, about CHUNK_BYTES at a time, each ending at a line's end. A path
    ending .gz, .bz2... is decompressed, as Arrow's own CSV readers do."""
    import pyarrow as pa

    try:
        stream = pa.input_stream(path)
    except FileNotFoundError as error:
        raise ConfigError(f"CSVSource: no file {path}.") from error
    except OSError as error:
        raise ConfigError(f"CSVSource: cannot read {path}: {error}") from error
    with stream:
        rest = b""
        while data := stream.read(CHUNK_BYTES):
            data = rest + data
            end = data.rfind(b"\n") + 1
            if end:
                yield data[:end]
            rest = data[end:]
        if rest.strip():
            yield rest


class _Parts:
    """Parquet files of ROWS_PER_FILE rows in row groups of ROW_GROUP, written as batches come
    (several files let a Beam job spread over workers)."""

    def __init__(self, out: Path) -> None:
        self.out, self.buffered = out, 0
        self.pending: list[Any] = []
        self.writer: Any = None
        self.files = self.in_file = 0

    def add(self, batch: Any) -> None:
        import pyarrow as pa

        self.pending.append(batch)
        self.buffered += batch.num_rows
        while self.buffered >= ROW_GROUP:
            table = pa.Table.from_batches(self.pending)
            self._write(table.slice(0, ROW_GROUP))
            rest = table.slice(ROW_GROUP)
            self.pending, self.buffered = rest.to_batches(), rest.num_rows

    def add_table(self, table: Any) -> None:
        for batch in table.to_batches():
            self.add(batch)

    def flush(self) -> None:
        import pyarrow as pa

        if self.buffered:
            self._write(pa.Table.from_batches(self.pending))
            self.pending, self.buffered = [], 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _write(self, group: Any) -> None:
        if self.writer is None or self.in_file >= ROWS_PER_FILE:
            self.close()
            part = self.out / f"part-{self.files:05d}.parquet"
            self.writer = parquet_writer(part, group.schema)
            self.files, self.in_file = self.files + 1, 0
        self.writer.write_table(group, row_group_size=ROW_GROUP)
        self.in_file += group.num_rows


def _batches(reader: Any) -> Any:
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return


#: Arrow's numeric types a column is widened through when a later block holds a value its
#: first block's inference did not allow (a whole-file read infers the same)
_WIDER = {"null": "int64", "bool": "string", "int64": "double", "double": "string"}


def _widened(error: Exception, path: str, delimiter: str) -> tuple[str | None, Any]:
    """(column, its wider type or None) from Arrow's conversion error."""
    import pyarrow as pa

    found = re.search(r"In CSV column #(\d+): CSV conversion error to (\w+)", str(error))
    if found is None:
        return None, None
    name = _reader(path, delimiter, {}).schema.names[int(found.group(1))]
    wider = _WIDER.get(found.group(2), "string" if found.group(2) != "string" else None)
    return name, None if wider is None else pa.type_for_alias(wider)


def _name_bad_value(path: str, delimiter: str, name: str, kind: str) -> None:
    """A declared column holds a value that does not convert: raise naming its row (only
    that column is read, as text)."""
    import pyarrow as pa

    rows = 0
    for batch in _batches(_reader(path, delimiter, {name: pa.string()}, only=[name])):
        _cast(batch.column(name), kind, name, path, first_row=rows)
        rows += batch.num_rows
    raise ConfigError(f"CSVSource: column {name!r} of {path} does not convert to {kind}.")


def _cast(column: Any, kind: str, name: str, path: str, first_row: int = 0) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    target = pa.type_for_alias(TYPES[kind])
    try:
        return pc.cast(column, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # find the first value that does not convert, to name it
    for row, value in enumerate(column.to_pylist(), start=first_row):
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


class _NumberCount:
    """How many values of a text column are numbers, and its first that is not, over the
    batches of a file."""

    def __init__(self) -> None:
        self.present = self.numbers = 0
        self.first_other: tuple[int, str] | None = None

    def add(self, column: Any, first_row: int) -> None:
        import pyarrow.compute as pc

        matches = pc.match_substring_regex(column, _NUMBER)
        present = len(column) - column.null_count
        numbers = pc.sum(matches).as_py() or 0
        self.present += present
        self.numbers += numbers
        if self.first_other is None and numbers < present:
            row = pc.index(matches, False).as_py()  # nulls are neither
            self.first_other = (first_row + row, column[row].as_py())


def _check_mostly_numeric(count: _NumberCount, name: str, path: str, strict: bool) -> None:
    others = count.present - count.numbers
    if count.first_other is None or others == 0 or count.numbers < MOSTLY * count.present:
        return
    row, value = count.first_other
    message = (
        f"CSVSource: column {name!r} of {path} holds numbers but for {others} value(s), "
        f"the first {value!r} at data row {row + 1} (line {row + 2} of the file): "
        f"it is read as text, so it would become a category of every distinct value. Fix the "
        f"file, or declare the column (columns={{{name!r}: 'float'}}) to have each bad value "
        "named."
    )
    if strict:
        raise ConfigError(message)
    import warnings

    from zenml_core.exceptions import DataWarning

    warnings.warn(message, DataWarning, stacklevel=2)
