"""Runs side by side: their metrics, the parameters that tell them apart, and their training
curves and ROC overlaid; and an index page of every run. ``zenml runs compare RUN RUN ...``
and ``zenml runs index`` print and write these; the pages are static files beside the runs'
artifacts (``<artifact root>/runs/compare/<id>/compare.html``, ``runs/index/<id>/index.html``)
that link to each run's report."""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass, field
from typing import Any

from zenml_core.artifacts.base import BaseArtifactStore
from zenml_core.metadata.base import BaseMetadataStore, RunRecord
from zenml_core.report import (
    REPORT_FILE,
    STYLE,
    evaluations,
    models,
    relative_link,
    report_uri,
    write_report,
)

COMPARE_FILE = "compare.html"
INDEX_FILE = "index.html"


@dataclass
class RunSummary:
    """What a comparison shows of one run."""

    run: RunRecord
    metrics: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    roc: dict[str, list[float]] | None = None

    @property
    def flat_parameters(self) -> dict[str, Any]:
        """``step.parameter`` -> value."""
        return {
            f"{step}.{key}": value
            for step, params in self.run.parameters.items()
            for key, value in params.items()
        }


def summarise(run: RunRecord, artifacts: BaseArtifactStore) -> RunSummary:
    summary = RunSummary(run)
    results = evaluations(run, artifacts)
    if results:
        result = results[0][1]
        overall = result.get("overall", {})
        summary.metrics = {k: v for k, v in overall.items() if isinstance(v, float)}
        summary.roc = (result.get("curves") or {}).get("roc")
    trained = models(run, artifacts)
    if trained:
        summary.history = trained[0][1].get("history") or {}
    return summary


def differing(summaries: list[RunSummary]) -> list[str]:
    """The ``step.parameter`` names whose values are not the same in every run."""
    names: list[str] = []
    for summary in summaries:
        names += [n for n in summary.flat_parameters if n not in names]
    return [
        n
        for n in names
        if len({json.dumps(s.flat_parameters.get(n), sort_keys=True) for s in summaries}) > 1
    ]


def table(
    summaries: list[RunSummary], every_parameter: bool = False
) -> tuple[list[str], list[list[str]]]:
    """Rows of metrics, then parameters (those that differ, or all), one column per run."""
    header = ["", *(s.run.run_id for s in summaries)]
    metrics: list[str] = []
    for summary in summaries:
        metrics += [m for m in summary.metrics if m not in metrics]
    rows = [["status", *(str(s.run.status) for s in summaries)]]
    rows += [[m, *(_number(s.metrics.get(m)) for s in summaries)] for m in metrics]
    names = differing(summaries)
    if every_parameter:
        for summary in summaries:
            names += [n for n in summary.flat_parameters if n not in names]
    rows += [[n, *(_value(s.flat_parameters.get(n, "-")) for s in summaries)] for n in names]
    return header, rows


def comparison_json(summaries: list[RunSummary]) -> dict[str, Any]:
    return {
        "runs": [
            {
                "run_id": s.run.run_id,
                "pipeline": s.run.pipeline,
                "status": s.run.status,
                "metrics": s.metrics,
                "parameters": s.run.parameters,
            }
            for s in summaries
        ],
        "differing_parameters": differing(summaries),
    }


def write_comparison(
    run_ids: list[str], metadata: BaseMetadataStore, artifacts: BaseArtifactStore
) -> str:
    """Write (once per set of runs) the comparison page; returns its folder's URI."""
    from zenml_core import plots

    digest = hashlib.sha256("\n".join(run_ids).encode()).hexdigest()[:16]
    uri = artifacts.uri("runs", "compare", digest)
    if artifacts.exists(uri):
        return uri
    summaries = [summarise(metadata.get_run(r), artifacts) for r in run_ids]
    _, rows = table(summaries)
    links = "".join(f"<th>{_report_link(s.run, artifacts, uri)}</th>" for s in summaries)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    histories = [(s.run.run_id, s.history) for s in summaries if s.history]
    rocs = [(s.run.run_id, s.roc) for s in summaries if s.roc]
    figures = []
    if histories:
        figures.append(f"<div id='curves'>{plots.training_curves(histories)}</div>")
    if rocs:
        figures.append(f"<div id='roc'>{plots.roc(rocs)}</div>")
    title = f"{len(summaries)} runs side by side"
    page = _page(
        title,
        f"<table id='comparison'><tr><th></th>{links}</tr>{body}</table>"
        f"<p>Parameters shown: those that differ between the runs.</p>"
        f"<div class='plots'>{''.join(figures)}</div>",
    )
    with artifacts.staging() as folder:
        (folder / COMPARE_FILE).write_text(page, encoding="utf-8")
        artifacts.publish_folder(folder, uri)
    return uri


def write_index(metadata: BaseMetadataStore, artifacts: BaseArtifactStore) -> str:
    """An index of every run (newest first): status, metrics, the parameters that differ
    between runs of its pipeline, a link to its report (written if missing). Returns the
    folder's URI; a new run gives a new index."""
    runs = [metadata.get_run(r.run_id) for r in metadata.list_runs()]
    digest = hashlib.sha256("\n".join(f"{r.run_id}:{r.status}" for r in runs).encode()).hexdigest()[
        :16
    ]
    uri = artifacts.uri("runs", "index", digest)
    if artifacts.exists(uri):
        return uri
    summaries = [summarise(r, artifacts) for r in runs]
    by_pipeline: dict[str, list[RunSummary]] = {}
    for summary in summaries:
        by_pipeline.setdefault(summary.run.pipeline, []).append(summary)
    key_parameters = {p: differing(group) for p, group in by_pipeline.items()}
    for summary in summaries:
        if summary.run.status != "running":
            write_report(summary.run.run_id, metadata, artifacts)
    rows = "".join(
        f"<tr class='run' data-status='{html.escape(s.run.status)}'>"
        f"<td>{_report_link(s.run, artifacts, uri)}</td><td>{html.escape(s.run.pipeline)}</td>"
        f"<td>{html.escape(s.run.status)}</td>"
        f"<td>{html.escape(' '.join(f'{k}={v:.4g}' for k, v in s.metrics.items()) or '-')}</td>"
        f"<td>{html.escape(_key_values(s, key_parameters[s.run.pipeline]))}</td></tr>"
        for s in summaries
    )
    page = _page(
        f"{len(runs)} runs",
        "<table id='runs'><tr><th>run</th><th>pipeline</th><th>status</th><th>metrics</th>"
        f"<th>key parameters</th></tr>{rows}</table>"
        "<p>Key parameters: those that differ between runs of the same pipeline. Compare runs "
        "with <code>zenml runs compare RUN RUN ...</code>.</p>",
    )
    with artifacts.staging() as folder:
        (folder / INDEX_FILE).write_text(page, encoding="utf-8")
        artifacts.publish_folder(folder, uri)
    return uri


def _key_values(summary: RunSummary, names: list[str]) -> str:
    values = summary.flat_parameters
    return " ".join(f"{n}={_value(values[n])}" for n in names if n in values) or "-"


def _report_link(run: RunRecord, artifacts: BaseArtifactStore, page_uri: str) -> str:
    href = relative_link(report_uri(run.run_id, artifacts), page_uri)
    text = html.escape(run.run_id)
    if not href or run.status == "running":
        return text
    return f"<a class='report' href='{html.escape(href)}{REPORT_FILE}'>{text}</a>"


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head>
<body><h1>{html.escape(title)}</h1>{body}</body></html>
"""


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
