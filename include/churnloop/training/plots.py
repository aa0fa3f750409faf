"""The figures logged with a challenger: holdout curves and the model's feature importances
at training, and its curves overlaid on the champion's and the baselines' at evaluation.

Drawn on bare ``Figure`` objects (the Agg canvas), so no pyplot state or GUI backend is
touched in a worker process.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)
from sklearn.pipeline import Pipeline

from churnloop import registry
from churnloop.settings import Settings
from churnloop.training.pipeline import lightgbm_classifier

CHALLENGER_LABEL = "challenger"
BASELINE_STYLE = {"linestyle": ":", "linewidth": 1.2}
"""Baselines are drawn dotted and thin: they are the floor, not the contest."""


def holdout_plots(model: Pipeline, labels: np.ndarray, scores: np.ndarray) -> dict[str, Figure]:
    """ROC, precision-recall and calibration curves on the holdout, and gain importances."""
    curves = {CHALLENGER_LABEL: scores}
    return {
        "roc_curve": roc_plot(labels, curves),
        "pr_curve": precision_recall_plot(labels, curves),
        "calibration": calibration_plot(labels, scores),
        "feature_importance": importance_plot(model),
    }


def comparison_plots(
    labels: np.ndarray,
    contenders: Mapping[str, np.ndarray],
    baselines: Mapping[str, np.ndarray],
) -> dict[str, Figure]:
    """ROC and precision-recall curves of challenger and champion (``contenders``) and the
    baselines, all scored on the same holdout, on one figure each."""
    title = " vs ".join(contenders)
    return {
        "roc_vs_champion": roc_plot(labels, contenders, baselines, f"ROC (holdout): {title}"),
        "pr_vs_champion": precision_recall_plot(
            labels, contenders, baselines, f"Precision-recall (holdout): {title}"
        ),
    }


def log_comparison_plots(
    settings: Settings,
    run_id: str,
    labels: np.ndarray,
    contenders: Mapping[str, np.ndarray],
    baselines: Mapping[str, np.ndarray],
) -> list[str]:
    """Log `comparison_plots` of the models' scores of one holdout on the run ``run_id``
    under ``plots/``; returns the artifacts' paths."""
    client = registry.connect(settings)
    paths = []
    for name, figure in comparison_plots(labels, contenders, baselines).items():
        paths.append(f"plots/{name}.png")
        client.log_figure(run_id, figure, paths[-1])
    return paths


def roc_plot(
    labels: np.ndarray,
    curves: Mapping[str, np.ndarray],
    baselines: Mapping[str, np.ndarray] | None = None,
    title: str = "ROC (holdout)",
) -> Figure:
    """One ROC curve per model, labelled with its ROC AUC."""
    figure, axes = _square(title)
    for name, scores, style in _styled(curves, baselines):
        false_positive_rate, true_positive_rate, _ = roc_curve(labels, scores)
        label = f"{name} (AUC {roc_auc_score(labels, scores):.3f})"
        axes.plot(false_positive_rate, true_positive_rate, label=label, **style)
    axes.set(xlabel="false positive rate", ylabel="true positive rate")
    _diagonal(axes, "chance")
    axes.legend(loc="lower right")
    return figure


def precision_recall_plot(
    labels: np.ndarray,
    curves: Mapping[str, np.ndarray],
    baselines: Mapping[str, np.ndarray] | None = None,
    title: str = "Precision-recall (holdout)",
) -> Figure:
    """One precision-recall curve per model, labelled with its PR AUC (average precision)."""
    figure, axes = _square(title)
    for name, scores, style in _styled(curves, baselines):
        precision, recall, _ = precision_recall_curve(labels, scores)
        label = f"{name} (PR AUC {average_precision_score(labels, scores):.3f})"
        axes.plot(recall, precision, label=label, **style)
    axes.set(xlabel="recall", ylabel="precision")
    axes.axhline(labels.mean(), linestyle="--", color="grey", label="base rate")
    axes.legend(loc="upper right")
    return figure


def calibration_plot(labels: np.ndarray, scores: np.ndarray) -> Figure:
    observed, predicted = calibration_curve(labels, scores, n_bins=10, strategy="quantile")
    figure, axes = _square("Calibration (holdout)")
    axes.plot(predicted, observed, marker="o", label=CHALLENGER_LABEL)
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


def _styled(
    curves: Mapping[str, np.ndarray], baselines: Mapping[str, np.ndarray] | None
) -> list[tuple[str, np.ndarray, dict]]:
    """Each model's name, scores and line style: solid curves first, then dotted baselines."""
    return [(name, scores, {}) for name, scores in curves.items()] + [
        (name, scores, BASELINE_STYLE) for name, scores in (baselines or {}).items()
    ]


def _square(title: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(6, 6))
    axes = figure.subplots()
    axes.set(title=title)
    return figure, axes


def _diagonal(axes: Axes, label: str) -> None:
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label=label)
