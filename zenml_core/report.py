"""An HTML report of one run: the pipeline's DAG (every edge visible), each step's state,
outputs (linked) and parameters, a failed run's error and skipped steps, the trainer's curves
and hyperparameters, the evaluation's metrics with ROC and confusion matrix (or residuals),
each feature's distribution per split with a drift figure, class balance, and the feature
statistics. Built from the metadata store and the run's artifacts; written next to them as
one self-contained page (plots are inline SVG, nothing is fetched)."""

from __future__ import annotations

import html
import json
import os
from typing import Any

from zenml_core.artifacts.base import BaseArtifactStore
from zenml_core.metadata.base import BaseMetadataStore, RunRecord, StepRecord
from zenml_core.pipeline import materializers

REPORT_FILE = "report.html"
STATE_COLOURS = {
    "completed": "#2e7d32",
    "cached": "#1565c0",
    "failed": "#c62828",
    "running": "#ef6c00",
    "skipped": "#757575",
}


#: the look of every page zenml writes (reports, comparisons, the index)
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 20px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
h2 small { color: #777; font-weight: normal; }
.state { color: white; border-radius: 4px; padding: 1px 6px; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.plots svg { height: auto; max-width: 100%; }
#error { border: 2px solid #c62828; background: #fdecea; padding: 8px 12px; margin: 12px 0; }
#error pre { white-space: pre-wrap; margin: 4px 0; }
td.error { color: #c62828; text-align: left; max-width: 40em; }
"""


def report_uri(run_id: str, artifacts: BaseArtifactStore) -> str:
    return artifacts.uri("runs", run_id, "report")


def write_report(run_id: str, metadata: BaseMetadataStore, artifacts: BaseArtifactStore) -> str:
    """Write (once) and return the URI of the folder holding ``report.html``."""
    uri = report_uri(run_id, artifacts)
    if artifacts.exists(uri):
        return uri
    page = render(metadata.get_run(run_id), artifacts)
    with artifacts.staging() as folder:
        (folder / REPORT_FILE).write_text(page, encoding="utf-8")
        artifacts.publish_folder(folder, uri)
    return uri


def evaluations(run: RunRecord, artifacts: BaseArtifactStore) -> list[tuple[str, Any]]:
    """(step, result) of every evaluator output of a run."""
    return [(s, v) for s, v in _json_outputs(run, artifacts) if _is_evaluation(v)]


def _is_evaluation(value: Any) -> bool:
    return isinstance(value, dict) and {"overall", "task"} <= set(value)


def render(run: RunRecord, artifacts: BaseArtifactStore) -> str:
    steps = run.steps_in_order()
    values = _json_outputs(run, artifacts)
    statistics = [(s, v) for s, v in values if isinstance(v, dict) and _is_statistics(v)]
    metrics = [(s, v) for s, v in values if _is_evaluation(v)]
    transform = next((v for _, v in values if _is_transform(v)), None)
    sections = [
        f"<h2>Pipeline</h2>{_dag(steps, run.upstream)}{_step_table(steps, run, artifacts)}",
        _parameters(run),
        *(
            _training(step, info, run.parameters.get(step, {}))
            for step, info in models(run, artifacts)
        ),
        *(
            f"<h2>Evaluation <small>({html.escape(step)})</small></h2>{_metrics(v)}"
            f"<div class='plots'>{_evaluation_plots(v)}</div>"
            for step, v in metrics
        ),
        _data(run, artifacts, transform),
        *(
            f"<h2>Feature statistics <small>({html.escape(step)})</small></h2>{_statistics(v)}"
            for step, v in statistics
        ),
    ]
    title = f"{run.pipeline} — run {run.run_id}"
    skipped = [s.step for s in steps if s.state == "skipped"]
    error = (
        f"<div id='error'><b>The run failed.</b><pre>{html.escape(run.error)}</pre>"
        + (f"<p>Skipped: {html.escape(', '.join(skipped))}</p>" if skipped else "")
        + "</div>"
        if run.status == "failed"
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p id="summary">Status <b>{html.escape(run.status)}</b> · orchestrator
{html.escape(run.orchestrator)} · {len(steps)} steps · started {_started(run)} ·
{_run_seconds(run)}</p>
{error}
{"".join(f"<section>{s}</section>" for s in sections if s)}
</body></html>
"""


def _started(run: RunRecord) -> str:
    if run.started_at is None:
        return "-"
    import datetime

    return datetime.datetime.fromtimestamp(run.started_at, datetime.UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC"
    )


def _run_seconds(run: RunRecord) -> str:
    if run.started_at is None or run.ended_at is None:
        return "under way"
    return f"{run.ended_at - run.started_at:.1f} s"


def _is_transform(value: Any) -> bool:
    return isinstance(value, dict) and {"numeric", "vocabularies", "label"} <= set(value)


def _parameters(run: RunRecord) -> str:
    given = [(step, params) for step, params in run.parameters.items() if params]
    if not given:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(step)}</td><td>{html.escape(key)}</td>"
        f"<td><code>{html.escape(json.dumps(value))}</code></td></tr>"
        for step, params in given
        for key, value in params.items()
    )
    return (
        "<h2>Parameters</h2><table id='parameters'><tr><th>step</th><th>parameter</th>"
        f"<th>value</th></tr>{rows}</table>"
    )


def models(run: RunRecord, artifacts: BaseArtifactStore) -> list[tuple[str, dict[str, Any]]]:
    """(step, model.json) of every trained model of the run."""
    found = []
    for step in run.steps:
        for record in step.outputs.values():
            if record.data_type == "model":
                with artifacts.reader(record.uri) as folder:
                    info = folder / materializers.DATA / "model.json"
                    if info.is_file():
                        found.append((step.step, json.loads(info.read_text())))
    return found


def _training(step: str, info: dict[str, Any], params: dict[str, Any]) -> str:
    from zenml_core import plots

    history = info.get("history") or {}
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(json.dumps(v))}</code></td></tr>"
        for k, v in params.items()
    )
    trained = info.get("trained_on") or {}
    validated = info.get("validated_on")
    about = (
        f"<p>Trained on {trained.get('rows', '?')} rows of "
        f"{html.escape(str(trained.get('split', '?')))}"
        + (f"; validated on {html.escape(json.dumps(validated))}" if validated else "")
        + f"; {info.get('replicas', 1)} replica(s).</p>"
        if trained
        else ""
    )
    curves = plots.training_curves([("", history)]) if history else ""
    return (
        f"<h2 id='training'>Training <small>({html.escape(step)})</small></h2>{about}"
        f"<div class='plots'>{curves}"
        + (
            "<table id='hyperparameters'><tr><th>hyperparameter</th><th>value</th></tr>"
            f"{rows}</table>"
            if rows
            else ""
        )
        + "</div>"
    )


def _evaluation_plots(result: dict[str, Any]) -> str:
    from zenml_core import plots

    curves = result.get("curves") or {}
    parts = []
    if "roc" in curves:
        parts.append(f"<div id='roc'>{plots.roc([('eval', curves['roc'])])}</div>")
    if "confusion" in curves:
        matrix = curves["confusion"]
        parts.append(
            f"<div id='confusion'>{plots.confusion(matrix['matrix'], matrix['labels'])}</div>"
        )
    if "residuals" in curves:
        r = curves["residuals"]
        parts.append(f"<div id='residuals'>{plots.residuals(r['edges'], r['counts'])}</div>")
    return "".join(parts)


#: drift above which a feature is flagged: PSI's usual 0.25, a fifth of the categories moved
SHIFTED = {"PSI": 0.25, "TVD": 0.2}
#: rows of each split read for the data plots (the first ones, a sample of big data)
SAMPLE_ROWS = 100_000


def _data(run: RunRecord, artifacts: BaseArtifactStore, transform: dict[str, Any] | None) -> str:
    """Per-feature distributions of each split, with a drift figure against the first split,
    and the label's class balance: from the run's first split dataset."""
    from zenml_core import plots
    from zenml_core.steps.dataset import Dataset

    for step in run.steps_in_order():
        for record in step.outputs.values():
            if record.data_type != "dataset":
                continue
            with artifacts.reader(record.uri) as folder:
                data = Dataset(folder / materializers.DATA)
                # the training split first: the others' drift is measured against it
                splits = sorted(data.splits, key=lambda name: (name != "train", name))
                if len(splits) < 2:
                    continue
                tables = {s: data.read(s).slice(0, SAMPLE_ROWS) for s in splits}
            label = (transform or {}).get("label") or data.label
            first = splits[0]
            figures, drifts = [], []
            for column in tables[first].column_names:
                if column == label:
                    continue
                per_split = {s: t[column].to_numpy(zero_copy_only=False) for s, t in tables.items()}
                numeric = all(_numeric(t[column].type) for t in tables.values())
                shift = max(
                    (plots.population_stability(per_split[first], per_split[s]) if numeric
                     else plots.category_shift(per_split[first], per_split[s]))
                    for s in splits[1:]
                )  # fmt: skip
                drifts.append((column, "PSI" if numeric else "TVD", shift))
                figures.append(plots.histograms(column, per_split, shift))
            balance = ""
            if label and all(label in t.column_names for t in tables.values()):
                counts = {
                    s: {str(k): int(v) for k, v in zip(*_value_counts(t[label]), strict=True)}
                    for s, t in tables.items()
                }
                balance = f"<div id='class-balance'>{plots.class_balance(counts)}</div>"
            rows = "".join(
                f"<tr><td>{html.escape(c)}</td><td>{kind}</td><td>{value:.3f}</td>"
                f"<td>{'shifted' if value > SHIFTED[kind] else 'stable'}</td></tr>"
                for c, kind, value in drifts
            )
            return (
                f"<h2>Data <small>({html.escape(step.step)}: {', '.join(splits)}; drift of each "
                f"split against {html.escape(first)})</small></h2><div class='plots'>{balance}"
                "<table id='drift'><tr><th>feature</th><th>measure</th><th>drift</th><th></th>"
                f"</tr>"
                f"{rows}</table></div><div class='plots' id='features'>{''.join(figures)}</div>"
            )
    return ""


def _numeric(arrow_type: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type))


def _value_counts(column: Any) -> tuple[list[Any], list[int]]:
    counted = column.value_counts()
    return counted.field("values").to_pylist(), counted.field("counts").to_pylist()


def _json_outputs(run: RunRecord, artifacts: BaseArtifactStore) -> list[tuple[str, Any]]:
    found = []
    for step in run.steps:
        for record in step.outputs.values():
            if record.data_type == "json":
                with artifacts.reader(record.uri) as folder:
                    found.append((step.step, materializers.by_name("json").load(folder)))
    return found


def _is_statistics(value: dict[str, Any]) -> bool:
    return bool(value) and all(
        isinstance(v, dict) and {"rows", "numeric", "categorical"} <= set(v) for v in value.values()
    )


def _dag(steps: list[StepRecord], upstream: dict[str, list[str]] | None = None) -> str:
    """Steps in columns by depth; an edge that skips columns curves below every box, so each
    edge can be seen (a straight one would pass behind the boxes between)."""
    producer = {a.id: s.step for s in steps for a in s.outputs.values()}
    names = {s.step for s in steps}
    parents = {
        s.step: sorted(
            {producer[a.id] for a in s.inputs.values() if a.id in producer}
            | {p for p in (upstream or {}).get(s.step, []) if p in names}
        )
        for s in steps
    }
    depth: dict[str, int] = {}

    def depth_of(name: str) -> int:  # cache hits are recorded last, so no order is assumed
        if name not in depth:
            depth[name] = max((depth_of(p) + 1 for p in parents[name]), default=0)
        return depth[name]

    for step in steps:
        depth_of(step.step)
    rows: dict[int, int] = {}
    position = {}
    for step in steps:
        column = depth[step.step]
        position[step.step] = (20 + column * 240, 20 + rows.get(column, 0) * 70)
        rows[column] = rows.get(column, 0) + 1
    long_edges = [(p, c) for c, ps in parents.items() for p in ps if depth[c] - depth[p] > 1]
    width = 20 + (max(depth.values(), default=0) + 1) * 240
    bottom = 20 + max(rows.values(), default=1) * 70
    height = bottom + 16 * len(long_edges) + (10 if long_edges else 0)
    drawn = []
    for c, ps in parents.items():
        for p in ps:
            x1, y1 = position[p][0] + 200, position[p][1] + 22
            x2, y2 = position[c][0], position[c][1] + 22
            if (p, c) in long_edges:  # down to a lane of its own under the boxes, and back up
                lane = bottom + 16 * long_edges.index((p, c))
                start, end = x1 - 100, x2 + 100  # the boxes' bottom centres
                d = (
                    f"M{start},{y1 + 22} C{start},{lane} {start + 60},{lane} {start + 120},{lane} "
                    f"L{end - 120},{lane} C{end - 60},{lane} {end},{lane} {end},{y2 + 22}"
                )
            else:
                d = f"M{x1},{y1} C{x1 + 20},{y1} {x2 - 20},{y2} {x2},{y2}"
            drawn.append(
                f'<path class="edge" data-from="{html.escape(p)}" data-to="{html.escape(c)}" '
                f'd="{d}" fill="none" stroke="#888" marker-end="url(#arrow)"/>'
            )
    edges = "".join(drawn)
    nodes = "".join(
        f'<g class="step" data-state="{s.state}"><rect x="{position[s.step][0]}" '
        f'y="{position[s.step][1]}" width="200" height="44" rx="6" fill="white" '
        f'stroke="{STATE_COLOURS.get(s.state, "#555")}" stroke-width="2"/>'
        f'<text x="{position[s.step][0] + 100}" y="{position[s.step][1] + 20}" '
        f'text-anchor="middle">{html.escape(s.step)}</text>'
        f'<text x="{position[s.step][0] + 100}" y="{position[s.step][1] + 36}" '
        f'text-anchor="middle" font-size="11" fill="#666">{html.escape(s.state)}</text></g>'
        for s in steps
    )
    return (
        f'<svg id="dag" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker>'
        f"</defs>{edges}{nodes}</svg>"
    )


def _step_table(steps: list[StepRecord], run: RunRecord, artifacts: BaseArtifactStore) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(s.step)}</td><td><span class='state' style='background:"
        f"{STATE_COLOURS.get(s.state, '#555')}'>{html.escape(s.state)}</span></td>"
        f"<td>{_seconds(s)}</td><td>{html.escape(s.backend or '-')}</td>"
        f"<td>{_output_links(s, run, artifacts)}</td>"
        f"<td class='error'>{html.escape(_first_line(s.error))}</td></tr>"
        for s in steps
    )
    return (
        "<table id='steps'><tr><th>step</th><th>state</th><th>seconds</th><th>backend</th>"
        f"<th>outputs</th><th>error</th></tr>{rows}</table>"
    )


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _output_links(step: StepRecord, run: RunRecord, artifacts: BaseArtifactStore) -> str:
    links = []
    for name, record in sorted(step.outputs.items()):
        href = relative_link(record.uri, report_uri(run.run_id, artifacts))
        text = html.escape(name)
        links.append(
            f"<a class='artifact' href='{html.escape(href)}' title='{html.escape(record.uri)}'>"
            f"{text}</a>"
            if href
            else f"<span title='{html.escape(record.uri)}'>{text}</span>"
        )
    return " ".join(links) or "-"


def relative_link(uri: str, page_folder: str) -> str:
    """A link to the folder ``uri`` that works from a page in ``page_folder``: a relative path
    on a local store (the pages move with the artifacts), the console page of a gs:// folder,
    else none."""
    if uri.startswith("gs://"):
        return "https://console.cloud.google.com/storage/browser/" + uri.removeprefix("gs://")
    if "://" in uri and not uri.startswith("file://"):
        return ""
    local, page = uri.removeprefix("file://"), page_folder.removeprefix("file://")
    return os.path.relpath(local, page) + "/"


def _seconds(step: StepRecord) -> str:
    if step.started_at is None or step.ended_at is None:
        return "-"
    return f"{step.ended_at - step.started_at:.2f}"


def _statistics(per_split: dict[str, Any]) -> str:
    parts = []
    for split, stats in per_split.items():
        numeric = "".join(
            f"<tr><td>{html.escape(name)}</td>"
            + "".join(
                f"<td>{_number(column.get(key))}</td>"
                for key in ("count", "missing", "mean", "std", "min", "max")
            )
            + "</tr>"
            for name, column in stats["numeric"].items()
        )
        categorical = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{len(counts)}</td><td>"
            + html.escape(
                ", ".join(f"{value} ({count})" for value, count in list(counts.items())[:5])
            )
            + "</td></tr>"
            for name, counts in stats["categorical"].items()
        )
        parts.append(
            f"<h3>{html.escape(split)} <small>({stats['rows']} rows)</small></h3>"
            f"<table class='numeric' data-split='{html.escape(split)}'><tr><th>feature</th>"
            "<th>count</th><th>missing</th><th>mean</th><th>std</th><th>min</th><th>max</th></tr>"
            f"{numeric}</table>"
            + (
                f"<table class='categorical'><tr><th>feature</th><th>values</th>"
                f"<th>most frequent</th></tr>{categorical}</table>"
                if categorical
                else ""
            )
        )
    return "".join(parts)


def evaluation_table(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """An evaluation as a header and rows of text: overall first, then each slice value.
    One place for what the report and ``zenml runs show`` print."""
    keys = ["examples", *(k for k in result["overall"] if k != "examples")]
    rows = [
        [f"overall ({result.get('split', '')})", *(_plain(result["overall"].get(k)) for k in keys)]
    ]
    for column, values in result.get("slices", {}).items():
        for value, metrics in values.items():
            rows.append([f"{column}={value}", *(_plain(metrics.get(k)) for k in keys)])
    return ["", *keys], rows


def _metrics(result: dict[str, Any]) -> str:
    header, rows = evaluation_table(result)
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table id='metrics'><tr>{head}</tr>{body}</table>"


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _number(value: Any) -> str:
    return html.escape(_plain(value))
