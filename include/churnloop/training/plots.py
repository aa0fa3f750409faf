"""The figures logged with a challenger: holdout curves and the model's feature importances.

Drawn on bare ``Figure`` objects (the Agg canvas), so no pyplot state or GUI backend is
touched in a worker process.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve
from sklearn.pipeline import Pipeline

from churnloop.training.pipeline import lightgbm_classifier


def holdout_plots(model: Pipeline, labels: np.ndarray, scores: np.ndarray) -> dict[str, Figure]:
    """ROC, precision-recall and calibration curves on the holdout, and gain importances."""
    return {
        "roc_curve": roc_plot(labels, scores),
        "pr_curve": precision_recall_plot(labels, scores),
        "calibration": calibration_plot(labels, scores),
        "feature_importance": importance_plot(model),
    }


def roc_plot(labels: np.ndarray, scores: np.ndarray) -> Figure:
    false_positive_rate, true_positive_rate, _ = roc_curve(labels, scores)
    figure, axes = _curve(false_positive_rate, true_positive_rate, "ROC (holdout)")
    axes.set(xlabel="false positive rate", ylabel="true positive rate")
    _diagonal(axes, "chance")
    axes.legend(loc="lower right")
    return figure


def precision_recall_plot(labels: np.ndarray, scores: np.ndarray) -> Figure:
    precision, recall, _ = precision_recall_curve(labels, scores)
    figure, axes = _curve(recall, precision, "Precision-recall (holdout)")
    axes.set(xlabel="recall", ylabel="precision")
    axes.axhline(labels.mean(), linestyle="--", color="grey", label="base rate")
    axes.legend(loc="upper right")
    return figure


def calibration_plot(labels: np.ndarray, scores: np.ndarray) -> Figure:
    observed, predicted = calibration_curve(labels, scores, n_bins=10, strategy="quantile")
    figure, axes = _curve(predicted, observed, "Calibration (holdout)", marker="o")
    axes.set(xlabel="mean predicted", ylabel="observed churn rate")
    _diagonal(axes, "perfect")
    axes.legend(loc="upper left")
    return figure


def importance_plot(model: Pipeline) -> Figure:
    """Total gain per feature of the pipeline's LightGBM booster."""
    booster = lightgbm_classifier(model).booster_
    importance = pd.Series(
        booster.feature_importance(importance_type="gain"), index=booster.feature_name()
    ).sort_values()
    figure = Figure(figsize=(6, max(3, 0.3 * len(importance))))
    axes = figure.subplots()
    axes.barh(importance.index, importance.to_numpy())
    axes.set(xlabel="total gain", title="Feature importance")
    figure.tight_layout()
    return figure


def _curve(
    x: np.ndarray, y: np.ndarray, title: str, marker: str | None = None
) -> tuple[Figure, Axes]:
    """A square figure with the challenger's curve drawn on it."""
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    axes.plot(x, y, marker=marker, label="challenger")
    axes.set(title=title)
    return figure, axes


def _diagonal(axes: Axes, label: str) -> None:
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label=label)
