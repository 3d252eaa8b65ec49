"""Splits, as Beam jobs over Parquet row groups under the step's processing backend."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from zenml_core.exceptions import ConfigError
from zenml_core.pipeline.context import StepContext, join
from zenml_core.pipeline.step import Step
from zenml_core.steps.dataset import Dataset, read_row_group, row_groups, write_parquet

_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class RandomSplit(Step):
    """Splits rows by ratio, e.g. ``split_map={"train": 0.7, "eval": 0.3}``.

    Each row's split follows from a hash of its values and ``seed``: the same data always
    splits the same way, however it is batched or how many workers run.
    """

    def check_params(self, params: dict[str, Any]) -> None:
        split_map = params.get("split_map")
        if split_map is None:
            return
        _check_names(split_map, "RandomSplit")
        if any(ratio <= 0 for ratio in split_map.values()):
            raise ConfigError(f"RandomSplit: every ratio must be above 0, got {split_map}.")
        total = sum(split_map.values())
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(
                f"RandomSplit: the ratios of {split_map} add up to {total:g}, not 1; "
                "scale them so they sum to 1."
            )

    def entrypoint(
        self, ctx: StepContext, data: Dataset, split_map: dict[str, float], seed: int = 0
    ) -> Dataset:
        return _run(ctx, data, _ByHash(list(split_map.items()), seed))


class CategoricalSplit(Step):
    """Splits rows by the value of one column, e.g.
    ``CategoricalSplit(column="country", split_map={"train": ["de", "fr"], "eval": ["nl"]})``.

    Values in no list go to ``default`` if given; otherwise the step fails naming them.
    """

    def entrypoint(
        self,
        ctx: StepContext,
        data: Dataset,
        column: str,
        split_map: dict[str, list[str]],
        default: str | None = None,
    ) -> Dataset:
        if column not in data.schema().names:
            raise ConfigError(
                f"CategoricalSplit: no column {column!r}; the columns are {data.schema().names}."
            )
        seen = _value_splits(split_map)
        return _run(ctx, data, _ByValue(column, seen, default, list(split_map)))

    def check_params(self, params: dict[str, Any]) -> None:
        split_map, default = params.get("split_map"), params.get("default")
        if split_map is not None:
            _check_names({**split_map, **({default: []} if default else {})}, "CategoricalSplit")
            _value_splits(split_map)


def _value_splits(split_map: dict[str, list[str]]) -> dict[str, str]:
    """value -> its split; a value in two splits is refused."""
    seen: dict[str, str] = {}
    for split, values in split_map.items():
        for value in values:
            if value in seen:
                raise ConfigError(
                    f"CategoricalSplit: value {value!r} is in both {seen[value]!r} and {split!r}."
                )
            seen[value] = split
    return seen


def _check_names(split_map: dict[str, Any], step: str) -> None:
    if not split_map:
        raise ConfigError(f"{step}: split_map needs at least one split.")
    bad = [name for name in split_map if not _SPLIT_NAME.match(name)]
    if bad:
        raise ConfigError(f"{step}: split names {bad} must be letters, digits, '_' or '-'.")


class _ByHash:
    def __init__(self, ratios: list[tuple[str, float]], seed: int) -> None:
        self.names = [name for name, _ in ratios]
        bounds, running = [], 0.0
        for _, ratio in ratios:
            running += ratio
            bounds.append(running)
        bounds[-1] = 1.0
        self.bounds = bounds
        self.key = f"{seed:016d}"[-16:]

    def assign(self, table: Any) -> Any:
        import numpy as np
        import pandas as pd

        hashes = pd.util.hash_pandas_object(table.to_pandas(), index=False, hash_key=self.key)
        position = hashes.to_numpy(dtype=np.uint64) / np.float64(2**64)
        return np.searchsorted(np.asarray(self.bounds), position, side="right")


class _ByValue:
    def __init__(
        self, column: str, split_of: dict[str, str], default: str | None, names: list[str]
    ) -> None:
        self.column = column
        self.names = names + ([default] if default and default not in names else [])
        self.index = {value: self.names.index(split) for value, split in split_of.items()}
        self.default = self.names.index(default) if default else None

    def assign(self, table: Any) -> Any:
        import numpy as np

        values = table[self.column].cast("string").to_pylist()
        unknown = (
            sorted({v for v in values if v not in self.index} - {None})
            if (self.default is None)
            else []
        )
        if unknown:
            raise ValueError(
                f"CategoricalSplit: values {unknown[:10]} of column {self.column!r} are in no "
                "split; add them to split_map or give a default split."
            )
        fallback = -1 if self.default is None else self.default
        return np.array([self.index.get(v, fallback) for v in values], dtype=np.int64)


def _run(ctx: StepContext, data: Dataset, rule: Any) -> Dataset:
    """A Beam job over the dataset's row groups, spread over the workers: each is read, its
    rows tagged with their split, and each split's rows written as a file of that split. Only
    file names travel between workers; the data is read once and written once."""
    import apache_beam as beam

    from zenml_core.steps.threaded import threaded_map

    out = ctx.output_dir()
    names = rule.names
    run_id, step = ctx.run_id, ctx.step  # strings: the function is pickled for the job
    for name in names:
        (out / name).mkdir()
    job = ctx.beam_job()
    source, target = job.input(data.path), job.output(out)

    def split_row_group(part: tuple[str, int]) -> None:
        import pyarrow as pa

        from zenml_core import progress

        path, index = part
        table = read_row_group(path, index)
        progress.count(run_id, step, table.num_rows)  # live where the job runs here
        splits = rule.assign(table)
        for position, name in enumerate(names):
            mask = splits == position
            if mask.any():
                file = join(target, name, f"part-{PurePosixPath(path).stem}-{index:05d}.parquet")
                write_parquet(table.filter(pa.array(mask)), file)

    parts = row_groups(data, source)
    with job:
        _ = (
            job.pipeline
            | "row groups" >> beam.Create(parts)
            | "spread row groups" >> beam.Reshuffle()
            | "split" >> threaded_map(split_row_group)
        )
    schema = data.schema()
    for name in names:  # a split no row fell into is an empty file, as a split of no rows
        if not any((out / name).glob("*.parquet")):
            write_parquet(schema.empty_table(), out / name / "part-empty.parquet")
    split = Dataset(out)
    data.copy_info_to(split)
    return split
