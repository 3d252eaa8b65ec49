"""Evaluator: metrics of a trained model on one split, overall and per slice."""

from __future__ import annotations

from typing import Any

from zenml_core.exceptions import ConfigError
from zenml_core.pipeline.context import StepContext
from zenml_core.pipeline.step import Step
from zenml_core.steps.dataset import Dataset
from zenml_core.steps.preprocess import LABEL, apply_transform, feature_names
from zenml_core.steps.trainer import Model

MAX_SLICES_PER_COLUMN = 50


class Evaluator(Step):
    """Accuracy (and AUC for two classes) for classifiers, MAE and RMSE for regressors, on
    ``split`` of the raw data, which it transforms exactly as training did; ``slices`` names
    raw columns to break the metrics down by."""

    def entrypoint(
        self,
        ctx: StepContext,
        data: Dataset,
        transform: dict[str, Any],
        model: Model,
        split: str = "eval",
        slices: list[str] | None = None,
    ) -> dict[str, Any]:
        import numpy as np

        if split not in data.splits:
            raise ConfigError(f"Evaluator: no split {split!r} in the data ({data.splits}).")
        raw = data.read(split)
        unknown = [c for c in slices or [] if c not in raw.column_names]
        if unknown:
            raise ConfigError(
                f"Evaluator: cannot slice by {unknown}; the columns are {raw.column_names}."
            )
        features = apply_transform(raw, transform)
        names = feature_names(transform)
        x = np.stack([features[f].to_numpy(zero_copy_only=False) for f in names], axis=1)
        y = features[LABEL].to_numpy(zero_copy_only=False)
        info = model.info
        scores = np.asarray(model.load().predict(x.astype(np.float32), verbose=0))
        metrics: dict[str, Any] = {
            "split": split,
            "task": info["task"],
            "overall": _metrics(info, y, scores),
            "slices": {},
            # what the report plots: ROC and confusion matrix, or residuals
            "curves": _curves(info, y, scores),
        }
        for column in slices or []:
            values = raw[column].cast("string").to_numpy(zero_copy_only=False)
            distinct = sorted({str(v) for v in values})[:MAX_SLICES_PER_COLUMN]
            metrics["slices"][column] = {
                value: _metrics(info, y[values == value], scores[values == value])
                for value in distinct
            }
        return metrics


def _metrics(info: dict[str, Any], y: Any, scores: Any) -> dict[str, float]:
    import numpy as np

    if len(y) == 0:
        return {"examples": 0}
    if info["task"] == "regression":
        error = scores.reshape(-1) - y.astype(np.float64)
        return {
            "examples": len(y),
            "mae": float(np.abs(error).mean()),
            "rmse": float(np.sqrt(np.square(error).mean())),
        }
    if scores.shape[-1] == 1:  # two classes: the probability of class 1
        probability = scores.reshape(-1)
        predicted = (probability >= 0.5).astype(np.int64)
        result = {"examples": len(y), "accuracy": float((predicted == y).mean())}
        auc = _auc(y.astype(np.int64), probability)
        if auc is not None:
            result["auc"] = auc
        return result
    predicted = scores.argmax(axis=-1)
    return {"examples": len(y), "accuracy": float((predicted == y).mean())}


#: at most this many points of a ROC curve are kept (evenly spread over its thresholds)
ROC_POINTS = 200


def _curves(info: dict[str, Any], y: Any, scores: Any) -> dict[str, Any]:
    import numpy as np

    if len(y) == 0:
        return {}
    if info["task"] == "regression":
        residuals = scores.reshape(-1) - y.astype(np.float64)
        counts, edges = np.histogram(residuals, bins=30)
        return {"residuals": {"edges": edges.tolist(), "counts": counts.tolist()}}
    labels = [str(c) for c in (info.get("classes") or [])]
    if scores.shape[-1] == 1:
        probability = scores.reshape(-1)
        predicted = (probability >= 0.5).astype(np.int64)
        curves: dict[str, Any] = {"confusion": _confusion(y.astype(np.int64), predicted, 2, labels)}
        roc = _roc(y.astype(np.int64), probability)
        if roc is not None:
            curves["roc"] = roc
        return curves
    count = scores.shape[-1]
    return {"confusion": _confusion(y.astype(np.int64), scores.argmax(axis=-1), count, labels)}


def _confusion(y: Any, predicted: Any, count: int, labels: list[str]) -> dict[str, Any]:
    import numpy as np

    matrix = np.zeros((count, count), dtype=np.int64)
    np.add.at(matrix, (y.clip(0, count - 1), predicted.clip(0, count - 1)), 1)
    names = labels if len(labels) == count else [str(i) for i in range(count)]
    return {"labels": names, "matrix": matrix.tolist()}  # rows: true class; columns: predicted


def _roc(y: Any, probability: Any) -> dict[str, list[float]] | None:
    import numpy as np

    positives, negatives = int((y == 1).sum()), int((y == 0).sum())
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(-probability, kind="mergesort")
    hits = y[order] == 1
    tpr = np.concatenate([[0.0], np.cumsum(hits) / positives])
    fpr = np.concatenate([[0.0], np.cumsum(~hits) / negatives])
    keep = np.unique(np.linspace(0, len(tpr) - 1, min(ROC_POINTS, len(tpr))).astype(int))
    return {"fpr": [round(float(v), 5) for v in fpr[keep]],
            "tpr": [round(float(v), 5) for v in tpr[keep]]}  # fmt: skip


def _auc(y: Any, probability: Any) -> float | None:
    """Area under the ROC curve by ranks (Mann-Whitney U), ties averaged."""
    import numpy as np

    positives, negatives = int((y == 1).sum()), int((y == 0).sum())
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(probability, kind="mergesort")
    ranks = np.empty(len(probability), dtype=np.float64)
    ranks[order] = np.arange(1, len(probability) + 1)
    _, inverse, counts = np.unique(probability, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]  # average rank within ties
    u = ranks[y == 1].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))
