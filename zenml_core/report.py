"""An HTML report of one run: the pipeline's DAG, feature statistics per split, evaluation
metrics. Built from the metadata store and the run's artifacts; written next to them."""

from __future__ import annotations

import html
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
}


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
    values = _json_outputs(run, artifacts)
    statistics = [(s, v) for s, v in values if isinstance(v, dict) and _is_statistics(v)]
    metrics = [(s, v) for s, v in values if _is_evaluation(v)]
    sections = [
        f"<h2>Pipeline</h2>{_dag(run.steps)}{_step_table(run.steps)}",
        *(
            f"<h2>Feature statistics <small>({html.escape(step)})</small></h2>{_statistics(v)}"
            for step, v in statistics
        ),
        *(
            f"<h2>Evaluation <small>({html.escape(step)})</small></h2>{_metrics(v)}"
            for step, v in metrics
        ),
    ]
    title = f"{run.pipeline} — run {run.run_id}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin: 8px 0 20px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #f3f3f3; }}
h2 small {{ color: #777; font-weight: normal; }}
.state {{ color: white; border-radius: 4px; padding: 1px 6px; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p id="summary">Status <b>{html.escape(run.status)}</b> · orchestrator
{html.escape(run.orchestrator)} · {len(run.steps)} steps</p>
{"".join(f"<section>{s}</section>" for s in sections)}
</body></html>
"""


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


def _dag(steps: list[StepRecord]) -> str:
    producer = {a.id: s.step for s in steps for a in s.outputs.values()}
    parents = {
        s.step: sorted({producer[a.id] for a in s.inputs.values() if a.id in producer})
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
    width = 20 + (max(depth.values(), default=0) + 1) * 240
    height = 20 + max(rows.values(), default=1) * 70
    edges = "".join(
        f'<line x1="{position[p][0] + 200}" y1="{position[p][1] + 22}" '
        f'x2="{position[c][0]}" y2="{position[c][1] + 22}" stroke="#888" '
        'marker-end="url(#arrow)"/>'
        for c, ps in parents.items()
        for p in ps
    )
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


def _step_table(steps: list[StepRecord]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(s.step)}</td><td><span class='state' style='background:"
        f"{STATE_COLOURS.get(s.state, '#555')}'>{html.escape(s.state)}</span></td>"
        f"<td>{_seconds(s)}</td><td>{html.escape(s.backend)}</td></tr>"
        for s in steps
    )
    return (
        "<table id='steps'><tr><th>step</th><th>state</th><th>seconds</th><th>backend</th>"
        f"</tr>{rows}</table>"
    )


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
