"""The plots of run reports and comparisons, drawn with matplotlib to inline SVG: no network,
no JavaScript, text kept as text (small, searchable pages).

Only ``matplotlib.figure.Figure`` is used, never pyplot: a report written from a user's
notebook changes none of its plotting state.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

COLOURS = ["#1565c0", "#ef6c00", "#2e7d32", "#c62828", "#6a1b9a", "#00838f", "#9e9d24"]


@contextlib.contextmanager
def figure(width: float = 5.0, height: float = 3.2) -> Iterator[Any]:
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 9, "axes.grid": True,
                                "grid.alpha": 0.3, "svg.hashsalt": "zenml"}):  # fmt: skip
        from matplotlib.figure import Figure

        yield Figure(figsize=(width, height), layout="constrained")


def to_svg(fig: Any, title: str) -> str:
    """The figure as an ``<svg>`` element with an accessible title."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    start = text.index("<svg")
    svg = text[start:]
    head_end = svg.index(">") + 1
    import html

    return f"{svg[:head_end]}<title>{html.escape(title)}</title>{svg[head_end:]}"


def training_curves(histories: Sequence[tuple[str, dict[str, list[float]]]]) -> str:
    """Loss and the first metric per epoch, training and validation, for one or more runs
    (overlaid, one colour each)."""
    metrics = _curve_names(histories)
    with figure(width=4.2 * len(metrics), height=3.0) as fig:
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        for axis, metric in zip(axes, metrics, strict=True):
            for index, (name, history) in enumerate(histories):
                colour = COLOURS[index % len(COLOURS)]
                for prefix, style in (("", "-"), ("val_", "--")):
                    values = history.get(prefix + metric)
                    if values:
                        label = f"{name} {'validation' if prefix else 'training'}"
                        epochs = range(1, len(values) + 1)
                        axis.plot(epochs, values, style, color=colour, label=label, marker=".")
            axis.set_title(metric)
            axis.set_xlabel("epoch")
            axis.legend(fontsize=7)
        return to_svg(fig, "training curves: " + ", ".join(metrics))


def _curve_names(histories: Sequence[tuple[str, dict[str, list[float]]]]) -> list[str]:
    names: list[str] = []
    for _, history in histories:
        for key in history:
            base = key.removeprefix("val_")
            if base not in names:
                names.append(base)
    return (["loss"] if "loss" in names else []) + [n for n in names if n != "loss"][:1]


def roc(curves: Sequence[tuple[str, dict[str, list[float]]]]) -> str:
    with figure(width=3.6, height=3.4) as fig:
        axis = fig.subplots()
        for index, (name, points) in enumerate(curves):
            axis.plot(points["fpr"], points["tpr"], color=COLOURS[index % len(COLOURS)],
                      label=name)  # fmt: skip
        axis.plot([0, 1], [0, 1], ":", color="#999")
        axis.set_xlabel("false positive rate")
        axis.set_ylabel("true positive rate")
        axis.set_title("ROC")
        axis.legend(fontsize=7, loc="lower right")
        return to_svg(fig, "ROC curve")


def confusion(matrix: list[list[int]], labels: list[str]) -> str:
    size = max(2.8, 0.6 * len(labels) + 1.8)
    with figure(width=size + 0.6, height=size) as fig:
        axis = fig.subplots()
        axis.grid(False)
        image = axis.imshow(matrix, cmap="Blues")
        fig.colorbar(image, ax=axis, shrink=0.8)
        ticks = range(len(labels))
        axis.set_xticks(ticks, labels, rotation=45 if len(labels) > 3 else 0)
        axis.set_yticks(ticks, labels)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        peak = max((max(row) for row in matrix), default=0)
        for row, values in enumerate(matrix):
            for column, value in enumerate(values):
                axis.text(column, row, str(value), ha="center", va="center",
                          color="white" if value > peak / 2 else "#222")  # fmt: skip
        axis.set_title("confusion matrix")
        return to_svg(fig, "confusion matrix")


def residuals(edges: list[float], counts: list[int]) -> str:
    with figure(width=4.2, height=3.0) as fig:
        axis = fig.subplots()
        widths = [b - a for a, b in itertools.pairwise(edges)]
        axis.bar(edges[:-1], counts, width=widths, align="edge", color=COLOURS[0])
        axis.axvline(0, color="#c62828", lw=1)
        axis.set_xlabel("prediction - truth")
        axis.set_ylabel("examples")
        axis.set_title("residuals")
        return to_svg(fig, "residuals")


def histograms(name: str, per_split: dict[str, Any], drift: float | None) -> str:
    """One feature's distribution per split: numeric values as overlaid histograms with common
    bins (each split normalised), categories as grouped bars."""
    import numpy as np

    with figure(width=3.4, height=2.4) as fig:
        axis = fig.subplots()
        splits = list(per_split)
        values = [per_split[s] for s in splits]
        if all(np.issubdtype(np.asarray(v).dtype, np.number) for v in values):
            joined = np.concatenate([np.asarray(v, dtype=np.float64) for v in values])
            joined = joined[np.isfinite(joined)]
            edges = np.histogram_bin_edges(joined, bins=20) if len(joined) else [0.0, 1.0]
            for index, (split, column) in enumerate(zip(splits, values, strict=True)):
                column = np.asarray(column, dtype=np.float64)
                axis.hist(column[np.isfinite(column)], bins=edges, density=True, alpha=0.5,
                          color=COLOURS[index % len(COLOURS)], label=split)  # fmt: skip
        else:
            categories: list[str] = []
            counted = []
            for column in values:
                texts, numbers = np.unique(np.asarray(column, dtype=str), return_counts=True)
                counted.append(dict(zip(texts.tolist(), (numbers / max(1, numbers.sum())).tolist(),
                                        strict=True)))  # fmt: skip
                categories += [t for t in texts.tolist() if t not in categories]
            categories = sorted(categories, key=lambda c: -sum(d.get(c, 0) for d in counted))[:12]
            width = 0.8 / max(1, len(splits))
            for index, (split, shares) in enumerate(zip(splits, counted, strict=True)):
                axis.bar([i + index * width for i in range(len(categories))],
                         [shares.get(c, 0) for c in categories], width=width,
                         color=COLOURS[index % len(COLOURS)], label=split)  # fmt: skip
            axis.set_xticks([i + 0.4 - width / 2 for i in range(len(categories))], categories,
                            rotation=45, fontsize=7)  # fmt: skip
        title = name if drift is None else f"{name} (drift {drift:.3f})"
        axis.set_title(title)
        axis.legend(fontsize=7)
        return to_svg(fig, f"distribution of {name} per split")


def class_balance(counts: dict[str, dict[str, int]]) -> str:
    """Examples of each class per split (as shares of the split)."""
    with figure(width=4.0, height=2.6) as fig:
        axis = fig.subplots()
        splits = list(counts)
        classes = sorted({c for per in counts.values() for c in per})
        width = 0.8 / max(1, len(splits))
        for index, split in enumerate(splits):
            total = max(1, sum(counts[split].values()))
            axis.bar([i + index * width for i in range(len(classes))],
                     [counts[split].get(c, 0) / total for c in classes], width=width,
                     color=COLOURS[index % len(COLOURS)], label=split)  # fmt: skip
        axis.set_xticks([i + 0.4 - width / 2 for i in range(len(classes))], classes)
        axis.set_ylabel("share of the split")
        axis.set_title("class balance")
        axis.legend(fontsize=7)
        return to_svg(fig, "class balance per split")


def population_stability(expected: Any, actual: Any, bins: int = 10) -> float:
    """PSI of ``actual`` against ``expected`` on ``expected``'s deciles: under 0.1 is stable,
    over 0.25 a shift worth a look."""
    import numpy as np

    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    expected, actual = expected[np.isfinite(expected)], actual[np.isfinite(actual)]
    if len(expected) == 0 or len(actual) == 0:
        return 0.0
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(expected, edges)[0] / len(expected)
    a = np.histogram(actual, edges)[0] / len(actual)
    e, a = np.clip(e, 1e-6, None), np.clip(a, 1e-6, None)
    return float(np.sum((a - e) * np.log(a / e)))


def category_shift(expected: Any, actual: Any) -> float:
    """Total variation distance between two splits' category shares (0 same, 1 disjoint)."""
    import numpy as np

    def shares(values: Any) -> dict[str, float]:
        texts, numbers = np.unique(np.asarray(values, dtype=str), return_counts=True)
        return dict(zip(texts.tolist(), (numbers / max(1, numbers.sum())).tolist(), strict=True))

    e, a = shares(expected), shares(actual)
    return 0.5 * sum(abs(e.get(k, 0.0) - a.get(k, 0.0)) for k in set(e) | set(a))
