"""Scoring metrics: expected calibration error on hand-checked and simulated cases."""

import numpy as np
import pytest

from churnloop.training.metrics import (
    METRICS,
    classification_metrics,
    expected_calibration_error,
)


def test_ece_of_a_hand_checked_case():
    # Two equal-mass bins: {0.1, 0.2} with no churner, {0.3, 0.4} with two.
    # (|0 - 0.3| + |2 - 0.7|) / 4 rows = 0.4
    ece = expected_calibration_error([0, 0, 1, 1], np.array([0.1, 0.2, 0.3, 0.4]), bins=2)

    assert ece == pytest.approx(0.4)


def test_tied_scores_share_a_bin():
    """Ten rows scored 0.3, three churners: calibrated, however the equal-mass cuts fall."""
    labels = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]

    assert expected_calibration_error(labels, np.full(10, 0.3)) == pytest.approx(0, abs=1e-12)


def test_ece_is_near_zero_when_calibrated_and_measures_a_shift():
    rng = np.random.default_rng(7)
    probability = rng.beta(1.2, 7, size=200_000)
    labels = rng.binomial(1, probability)

    calibrated = expected_calibration_error(labels, probability)
    shifted = expected_calibration_error(labels, np.clip(probability + 0.05, 0, 1))

    # Sampling noise: about sqrt(2 / pi) * sqrt(10 bins * rate * (1 - rate) / rows) ~ 0.002.
    assert calibrated < 0.005
    assert shifted == pytest.approx(0.05, abs=0.005)


def test_classification_metrics_returns_the_listed_metrics_with_ece():
    rng = np.random.default_rng(1)
    probability = rng.uniform(size=1_000)
    labels = rng.binomial(1, probability)

    metrics = classification_metrics(labels, probability)

    assert tuple(metrics) == METRICS
    assert metrics["ece"] == expected_calibration_error(labels, probability)
