"""StandardPreprocesser: statistics and a transform fitted on one split, applied to all.

One Beam job over Arrow record batches (per-batch numpy work, no per-row Python), its files
spread over the workers, fits the transform on ``fit_split``, applies it to every split and
gathers each split's statistics. The transform is plain JSON, and ``apply_transform`` is the
one function that applies it — in the Beam job, in the evaluator, when serving — so all of them
see the same features.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from zenml_core.exceptions import ConfigError
from zenml_core.pipeline.context import StepContext, join
from zenml_core.pipeline.step import Outputs, Step
from zenml_core.steps.dataset import Dataset, read_row_group, row_groups, write_parquet

LABEL = "label"  # the label column's name in transformed data


class StandardPreprocesser(Step):
    """Standardises numeric features, one-hot encodes categorical ones (the
    ``max_vocabulary`` most frequent values of the fit split), turns a string label into class
    indices. Features default to every column but the label. ``label`` defaults to the one
    the data source was given (``CSVSource(label=...)``); a different one is refused.
    """

    def entrypoint(
        self,
        ctx: StepContext,
        data: Dataset,
        label: str | None = None,
        features: list[str] | None = None,
        fit_split: str = "train",
        max_vocabulary: int = 100,
    ) -> Outputs(transformed=Dataset, transform=dict, statistics=dict):  # type: ignore[valid-type]
        schema = data.schema(data.splits[0]) if data.splits else None
        if schema is None:
            raise ConfigError(
                "StandardPreprocesser needs split data (train, eval...); split it first, e.g. "
                "with RandomSplit."
            )
        if label is None:
            label = data.label
            if label is None:
                raise ConfigError(
                    "StandardPreprocesser needs a label: give label='COLUMN' here, or "
                    "CSVSource(label='COLUMN') at the source."
                )
        elif data.label is not None and data.label != label:
            raise ConfigError(
                f"StandardPreprocesser: label={label!r}, but the data source says its label is "
                f"{data.label!r}: the model would learn to predict {label!r} from "
                f"{data.label!r}. Give both the same label (or leave this one out)."
            )
        if label not in schema.names:
            raise ConfigError(
                f"StandardPreprocesser: no label column {label!r}; the columns are {schema.names}."
            )
        if fit_split not in data.splits:
            raise ConfigError(
                f"StandardPreprocesser: fit_split {fit_split!r} is not one of the splits "
                f"{data.splits}."
            )
        names = features if features is not None else [n for n in schema.names if n != label]
        unknown = [n for n in names if n not in schema.names or n == label]
        if unknown:
            raise ConfigError(
                f"StandardPreprocesser: {unknown} cannot be features; the columns are "
                f"{schema.names} and the label is {label!r}."
            )
        numeric = [n for n in names if _is_numeric(schema.field(n).type)]
        categorical = [n for n in names if n not in numeric]
        label_numeric = _is_numeric(schema.field(label).type)
        counted = categorical + ([] if label_numeric else [label])

        transformed, transform, statistics = _job(
            ctx,
            data,
            [*names, label],
            numeric,
            counted,
            fit=(fit_split, categorical, label, label_numeric, max_vocabulary),
        )
        return {"transformed": transformed, "transform": transform, "statistics": statistics}


# -- statistics -------------------------------------------------------------------------------


class _Accumulate:
    """Per-batch sums for numeric columns and value counts for the others, mergeable."""

    def __init__(self, numeric: list[str], counted: list[str]) -> None:
        self.numeric, self.counted = numeric, counted

    def batch(self, table: Any) -> dict[str, Any]:
        import numpy as np
        import pyarrow.compute as pc

        result: dict[str, Any] = {"rows": table.num_rows, "numeric": {}, "counts": {}}
        for name in self.numeric:
            column = table[name]
            values = column.to_numpy(zero_copy_only=False).astype(np.float64)
            present = values[~np.isnan(values)]
            result["numeric"][name] = [
                int(present.size),
                float(present.sum()),
                float(np.square(present).sum()),
                float(present.min()) if present.size else None,
                float(present.max()) if present.size else None,
            ]
        for name in self.counted:
            counts = pc.value_counts(table[name].cast("string")).to_pylist()
            result["counts"][name] = {str(c["values"]): int(c["counts"]) for c in counts}
        return result

    @staticmethod
    def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {"rows": 0, "numeric": {}, "counts": {}}
        for part in parts:
            merged["rows"] += part["rows"]
            for name, (n, total, squares, low, high) in part["numeric"].items():
                m = merged["numeric"].setdefault(name, [0, 0.0, 0.0, None, None])
                m[0] += n
                m[1] += total
                m[2] += squares
                m[3] = low if m[3] is None else (m[3] if low is None else min(m[3], low))
                m[4] = high if m[4] is None else (m[4] if high is None else max(m[4], high))
            for name, counts in part["counts"].items():
                target = merged["counts"].setdefault(name, {})
                for value, count in counts.items():
                    target[value] = target.get(value, 0) + count
        return merged


def _summary(merged: dict[str, Any]) -> dict[str, Any]:
    """Counts, means, standard deviations, ranges and value counts, as reported."""
    numeric = {}
    for name, (n, total, squares, low, high) in merged["numeric"].items():
        mean = total / n if n else 0.0
        variance = max(squares / n - mean * mean, 0.0) if n else 0.0
        numeric[name] = {
            "count": n,
            "missing": merged["rows"] - n,
            "mean": mean,
            "std": variance**0.5,
            "min": low,
            "max": high,
        }
    counts = {
        name: dict(sorted(values.items(), key=lambda item: (-item[1], item[0])))
        for name, values in merged["counts"].items()
    }
    return {"rows": merged["rows"], "numeric": numeric, "categorical": counts}


def _job(
    ctx: StepContext,
    data: Dataset,
    columns: list[str],
    numeric: list[str],
    counted: list[str],
    fit: tuple[str, list[str], str, bool, int],
) -> tuple[Dataset, dict[str, Any], dict[str, Any]]:
    """One Beam job over the dataset's files, spread over the workers: statistics of the fit
    split's files give the transform (a side input); every file is then transformed, written,
    and summed into its split's statistics. Only file names, accumulators and the transform
    travel between workers; the data stays where it is read."""
    import apache_beam as beam

    from zenml_core.steps.threaded import threaded_map

    fit_split, categorical, label, label_numeric, max_vocabulary = fit
    accumulate = _Accumulate(numeric, counted)
    out = ctx.output_dir()
    reports = ctx.temp_dir / "report"
    reports.mkdir()
    for split in data.splits:
        (out / split).mkdir()
    job = ctx.beam_job()
    source, target, report = job.input(data.path), job.output(out), job.output(reports)

    def fit_from(merged: dict[str, Any]) -> dict[str, Any]:
        return fit_transform(
            _summary(merged), numeric, categorical, label, label_numeric, max_vocabulary
        )

    def summed(part: tuple[str, str, int]) -> Any:
        _, path, index = part
        return accumulate.batch(read_row_group(path, index, columns))

    run_id, step = ctx.run_id, ctx.step

    def transformed(part: tuple[str, str, int], transform: dict[str, Any]) -> Any:
        from zenml_core import progress

        split, path, index = part
        table = read_row_group(path, index, columns)
        progress.count(run_id, step, table.num_rows)  # live where the job runs here
        name = join(target, split, f"part-{PurePosixPath(path).stem}-{index:05d}.parquet")
        write_parquet(apply_transform(table, transform), name)
        return split, accumulate.batch(table)

    parts = [
        (split, path, index)
        for split in data.splits
        for path, index in row_groups(data, source, split)
    ]
    with job:
        pipeline = job.pipeline
        transform = (
            pipeline
            | "fit parts" >> beam.Create([p for p in parts if p[0] == fit_split])
            | "spread fit parts" >> beam.Reshuffle()
            | "sum fit split" >> threaded_map(summed)
            | "merge fit split" >> beam.CombineGlobally(_Accumulate.merge)
            | "fit" >> beam.Map(fit_from)
        )
        statistics = (
            pipeline
            | "parts" >> beam.Create(parts)
            | "spread parts" >> beam.Reshuffle()
            | "transform" >> threaded_map(transformed, beam.pvalue.AsSingleton(transform))
            | "merge per split" >> beam.CombinePerKey(_Accumulate.merge)
            | "report splits" >> beam.Map(json.dumps)
        )
        _ = (
            (statistics, transform | "report transform" >> beam.Map(lambda t: json.dumps(["", t])))
            | "one report" >> beam.Flatten()
            | "write report" >> beam.io.WriteToText(join(report, "report"), shard_name_template="")
        )
    reported = dict(map(json.loads, (reports / "report").read_text().splitlines()))
    transform_json = reported.pop("")
    return Dataset(out), transform_json, {split: _summary(m) for split, m in reported.items()}


# -- the transform ----------------------------------------------------------------------------


def fit_transform(
    statistics: dict[str, Any],
    numeric: list[str],
    categorical: list[str],
    label: str,
    label_numeric: bool,
    max_vocabulary: int,
) -> dict[str, Any]:
    """The transform as JSON: means and deviations, vocabularies, label classes."""
    if statistics["rows"] == 0:
        raise ConfigError("StandardPreprocesser: the fit split has no rows.")
    # sorted names: the JSON artifact (sorted keys) and this dict give one feature order
    numeric, categorical = sorted(numeric), sorted(categorical)
    vocabularies = {
        name: list(statistics["categorical"].get(name, {}))[:max_vocabulary] for name in categorical
    }
    classes = None if label_numeric else sorted(statistics["categorical"].get(label, {}))
    scale = {}
    for name in numeric:
        column = statistics["numeric"][name]
        scale[name] = [column["mean"], column["std"] or 1.0]  # constant column: centre only
    return {"numeric": scale, "vocabularies": vocabularies, "label": label, "classes": classes}


def feature_names(transform: dict[str, Any]) -> list[str]:
    return [*transform["numeric"]] + [
        f"{name}={value}" for name, values in transform["vocabularies"].items() for value in values
    ]


def apply_transform(table: Any, transform: dict[str, Any]) -> Any:
    """Features for one Arrow table: float32 columns, plus the label (when present)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    columns: dict[str, Any] = {}
    for name, (mean, std) in transform["numeric"].items():
        values = table[name].to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        scaled = values - mean  # in place from here on
        scaled /= std
        np.nan_to_num(scaled, copy=False, nan=0.0)  # a missing value is the mean
        columns[name] = pa.array(scaled.astype(np.float32))
    for name, vocabulary in transform["vocabularies"].items():
        # each value's position in the vocabulary once, then a comparison of integers per
        # one-hot column (not of strings)
        found = pc.index_in(table[name].cast("string"), value_set=pa.array(vocabulary, pa.string()))
        codes = pc.fill_null(found, -1).to_numpy(zero_copy_only=False)
        for position, value in enumerate(vocabulary):
            columns[f"{name}={value}"] = pa.array((codes == position).astype(np.float32))
    label = transform["label"]
    if label in table.column_names:
        if transform["classes"] is None:
            columns[LABEL] = table[label]
        else:
            index = pc.index_in(
                table[label].cast("string"), value_set=pa.array(transform["classes"])
            )
            columns[LABEL] = pc.fill_null(index, -1)  # a class never seen while fitting
    return pa.table(columns)


def _is_numeric(arrow_type: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type)
    )
