"""DeLong intervals against known truth: sklearn's AUC, a bootstrap's spread, and the
coverage of a binormal model whose AUC is known in closed form."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from churnloop.training.intervals import (
    Interval,
    auc_difference,
    auc_interval,
    independent_difference,
)


def binormal(rng: np.random.Generator, rows: int, separation: float, churn_rate: float = 0.2):
    """Labels and scores whose AUC is Phi(separation / sqrt(2)), known exactly."""
    labels = (rng.random(rows) < churn_rate).astype(int)
    return labels, rng.normal(size=rows) + separation * labels


def test_auc_equals_sklearns_with_ties():
    rng = np.random.default_rng(1)
    labels, scores = binormal(rng, 2_000, 1.0)
    rounded = np.round(scores)

    assert auc_interval(labels, rounded, 0.95).estimate == pytest.approx(
        roc_auc_score(labels, rounded)
    )


def test_paired_spread_matches_a_bootstrap():
    rng = np.random.default_rng(2)
    labels, first = binormal(rng, 3_000, 1.0)
    second = first + rng.normal(scale=0.7, size=len(first))
    delong = auc_difference(labels, first, second, 0.95)
    boot = []
    for _ in range(400):
        rows = rng.integers(0, len(labels), len(labels))
        boot.append(
            roc_auc_score(labels[rows], first[rows]) - roc_auc_score(labels[rows], second[rows])
        )

    assert (delong.high - delong.low) / (2 * 1.96) == pytest.approx(np.std(boot), rel=0.15)


def test_95_percent_intervals_cover_the_true_auc_about_95_percent_of_the_time():
    """Stated error rate: over 400 seeded samples of 1,000 rows, coverage within 0.92-0.98."""
    rng = np.random.default_rng(3)
    separation = 1.0
    truth = norm.cdf(separation / np.sqrt(2))
    covered = []
    for _ in range(400):
        labels, scores = binormal(rng, 1_000, separation)
        interval = auc_interval(labels, scores, 0.95)
        covered.append(interval.low <= truth <= interval.high)

    assert 0.92 <= np.mean(covered) <= 0.98


def test_identical_scores_differ_by_exactly_nothing():
    rng = np.random.default_rng(4)
    labels, scores = binormal(rng, 500, 1.0)

    difference = auc_difference(labels, scores, scores, 0.95)

    assert difference == Interval(0.0, 0.0, 0.0, 0.95)


def test_independent_difference_adds_the_variances():
    first, second = Interval(0.8, 0.78, 0.82, 0.95), Interval(0.7, 0.67, 0.73, 0.95)

    gap = independent_difference(first, second)

    assert gap.estimate == pytest.approx(0.1)
    assert (gap.high - gap.low) / 2 == pytest.approx(np.hypot(0.02, 0.03))


def test_too_few_of_a_class_is_refused():
    with pytest.raises(ValueError, match="two positives"):
        auc_interval(np.array([0, 0, 0, 1]), np.array([0.1, 0.2, 0.3, 0.4]), 0.95)
