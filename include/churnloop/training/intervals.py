"""Confidence intervals of ROC AUC and of paired AUC differences (DeLong's method).

Models scored on the same rows are compared on one covariance (DeLong, DeLong and
Clarke-Pearson 1988, in Sun and Xu's 2014 midrank form): exact, deterministic, and
O(n log n), so a 200k-row holdout costs milliseconds where a bootstrap would cost seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata

from churnloop.training.metrics import format_number


@dataclass(frozen=True)
class Interval:
    """A point estimate with its two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float

    def describe(self) -> str:
        """``0.0123 [-0.0040, 0.0286]``: the estimate, then its interval."""
        low, high = format_number(self.low), format_number(self.high)
        return f"{format_number(self.estimate)} [{low}, {high}]"


def auc_interval(labels: np.ndarray, scores: np.ndarray, confidence: float) -> Interval:
    """ROC AUC of ``scores`` with its DeLong interval, clipped to [0, 1]."""
    aucs, covariance = _delong(labels, scores[np.newaxis, :])
    half = _z(confidence) * np.sqrt(covariance[0, 0])
    auc = float(aucs[0])
    return Interval(auc, float(max(0.0, auc - half)), float(min(1.0, auc + half)), confidence)


def auc_difference(
    labels: np.ndarray, scores: np.ndarray, reference: np.ndarray, confidence: float
) -> Interval:
    """AUC(``scores``) - AUC(``reference``) on the same rows, with its paired interval."""
    aucs, covariance = _delong(labels, np.vstack([scores, reference]))
    variance = covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]
    half = _z(confidence) * np.sqrt(max(float(variance), 0.0))
    difference = float(aucs[0] - aucs[1])
    return Interval(difference, float(difference - half), float(difference + half), confidence)


def independent_difference(first: Interval, second: Interval) -> Interval:
    """``first - second`` for estimates from disjoint rows (e.g. two slices)."""
    spread = np.hypot(first.high - first.low, second.high - second.low) / 2
    difference = first.estimate - second.estimate
    return Interval(
        difference, float(difference - spread), float(difference + spread), first.confidence
    )


def _z(confidence: float) -> float:
    return float(norm.ppf(0.5 + confidence / 2))


def _delong(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of each row of ``scores`` and their covariance matrix (Sun and Xu 2014)."""
    positive = np.asarray(labels) == 1
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs two positives and two negatives, got {m} and {n}")
    ordered = np.hstack([scores[:, positive], scores[:, ~positive]])
    ranks_all = rankdata(ordered, axis=1)
    ranks_pos = rankdata(ordered[:, :m], axis=1)
    ranks_neg = rankdata(ordered[:, m:], axis=1)
    aucs = (ranks_all[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v10 = (ranks_all[:, :m] - ranks_pos) / n
    v01 = 1.0 - (ranks_all[:, m:] - ranks_neg) / m
    covariance = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, covariance
