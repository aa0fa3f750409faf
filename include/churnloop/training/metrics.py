"""How well a churn model scores labelled rows: probabilities, metrics and their text.

Shared by the evaluation gate, training's MLflow record, the deploy checks and the drift
report: every place that scores a model or quotes a metric does it through these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from churnloop.errors import DataError
from churnloop.schema import LABEL
from churnloop.training.frames import with_numpy_dtypes

METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "positives_rate", "rows")
"""The names `classification_metrics` returns, in the order reports list them."""
ECE_BINS = 10
"""Equal-mass score bins of `expected_calibration_error`: ten, as in the holdout's
calibration plot, so each bin's churn rate rests on a tenth of the rows."""


class Scorer(Protocol):
    """What scoring needs of a model: a fitted scikit-learn classifier on named columns."""

    feature_names_in_: np.ndarray

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray: ...


def classification_metrics(labels: Sequence[int], scores: np.ndarray) -> dict[str, float]:
    """Ranking (ROC/PR AUC), probability quality (log loss, Brier, ECE) and the base rate."""
    labels = np.asarray(labels)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "pr_auc": float(average_precision_score(labels, scores)),
        "log_loss": float(log_loss(labels, scores, labels=[0, 1])),
        "brier": float(brier_score_loss(labels, scores)),
        "ece": expected_calibration_error(labels, scores),
        "positives_rate": float(labels.mean()),
        "rows": float(len(labels)),
    }


def expected_calibration_error(
    labels: Sequence[int], scores: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Row-weighted mean gap between the churn rate and the mean score of each score bin.

    Bins hold equal shares of the rows (`ECE_BINS` by default): their edges are score
    quantiles, cut as `sklearn.calibration.calibration_curve` does with
    ``strategy="quantile"``, so tied scores share a bin. A perfectly calibrated sample
    still shows sampling noise of about ``sqrt(bins * rate * (1 - rate) / rows)``.
    """
    labels, scores = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
    edges = np.quantile(scores, np.linspace(0, 1, bins + 1))
    bin_of = np.searchsorted(edges[1:-1], scores)
    churned = np.bincount(bin_of, weights=labels, minlength=bins)
    expected = np.bincount(bin_of, weights=scores, minlength=bins)
    return float(np.abs(churned - expected).sum() / len(scores))


def score(model: Scorer, frame: pd.DataFrame, role: str = "model") -> np.ndarray:
    """Churn probabilities of ``frame``'s rows; names the columns the model lacks."""
    missing = sorted(set(model.feature_names_in_) - set(frame.columns))
    if missing:
        raise DataError(f"the {role} needs column(s) the data lacks: {', '.join(missing)}")
    return model.predict_proba(with_numpy_dtypes(frame[list(model.feature_names_in_)]))[:, 1]


def binary_labels(frame: pd.DataFrame, role: str) -> np.ndarray:
    """The label column as 0/1 integers; both classes must be present for ROC AUC."""
    labels = nonempty_column(frame, role, LABEL)
    invalid = labels.isna() | ~labels.isin([0, 1])
    if invalid.any():
        examples = list(labels[invalid].unique()[:5])
        raise DataError(
            f"the {role}'s {LABEL!r} must be 0/1; {invalid.sum()} rows are not, e.g. {examples}"
        )
    if labels.nunique() < 2:
        raise DataError(
            f"the {role} has only {LABEL}={labels.iloc[0]} in {len(labels)} rows: "
            "ROC AUC is undefined; widen the window"
        )
    return labels.to_numpy(dtype=np.int64)


def nonempty_column(frame: pd.DataFrame, role: str, column: str) -> pd.Series:
    """``frame[column]``; a `DataError` naming ``role`` if the frame is empty or lacks it."""
    if frame.empty:
        raise DataError(f"the {role} is empty")
    if column not in frame.columns:
        raise DataError(f"the {role} has no {column!r} column")
    return frame[column]


def format_number(value: float | None) -> str:
    """Four significant digits, ``-`` for a value that does not exist."""
    return "-" if value is None else f"{value:.4g}"
