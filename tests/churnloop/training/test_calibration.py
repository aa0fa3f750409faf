"""Calibration: applied when it makes the scores better probabilities, and only then."""

import datetime as dt

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import brier_score_loss

from churnloop.schema import LABEL
from churnloop.training.calibration import (
    METHODS,
    brier_gain_bound,
    fit_calibrated,
    judge_calibrators,
    with_calibrator,
)
from churnloop.training.frames import with_numpy_dtypes
from churnloop.training.metrics import classification_metrics, expected_calibration_error, score
from churnloop.training.pipeline import fit_pipeline, lightgbm_classifier
from churnloop.training.split import split_by_time
from tests.churnloop.training_support import FAST_PARAMS, FEATURES, labelled_days

HOLDOUT_DAYS = 4
OVERWEIGHTED = {**FAST_PARAMS, "scale_pos_weight": 4}
"""LightGBM parameters that overpredict churn: a model miscalibrated on purpose."""


class GivenProbability(ClassifierMixin, BaseEstimator):
    """A fitted stand-in for a model whose churn probability is its input's one column."""

    def fit(self, rows, labels):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, rows):
        probability = np.asarray(rows, dtype=float)[:, 0]
        return np.column_stack([1 - probability, probability])

    def predict(self, rows):
        return (self.predict_proba(rows)[:, 1] >= 0.5).astype(int)


def _sample(seed: int, rows: int, sharpness: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``logistic(sharpness * logit(p))`` and labels drawn as Bernoulli(p).

    Sharpness 1 is calibrated, above 1 overconfident, below 1 underconfident.
    """
    rng = np.random.default_rng(seed)
    truth = rng.beta(1.2, 7, size=rows)
    labels = rng.binomial(1, truth)
    return expit(sharpness * logit(truth)).reshape(-1, 1), labels


def _judge(scores: np.ndarray, labels: np.ndarray, seed: int):
    """Judged as a model's scores: the probabilities are also what calibrators map."""
    groups = np.arange(len(labels))
    probabilities = scores[:, 0]
    return judge_calibrators(
        probabilities, probabilities, labels, groups, confidence=0.95, seed=seed
    )


@pytest.fixture(scope="module")
def frame():
    return labelled_days(dt.date(2026, 1, 1), days=24, customers=800)


@pytest.mark.parametrize("sharpness", [2.5, 0.4], ids=["overconfident", "underconfident"])
def test_miscalibrated_scores_are_calibrated_and_score_better_on_a_fresh_sample(sharpness):
    scores, labels = _sample(1, 3_000, sharpness)

    choice = _judge(scores, labels, seed=1)

    assert choice.method in METHODS, choice.reason
    assert choice.metrics["brier_after"] < choice.metrics["brier_before"]
    assert choice.metrics["ece_after"] < choice.metrics["ece_before"]
    model = FrozenEstimator(GivenProbability().fit(scores, labels))
    calibrator = CalibratedClassifierCV(model, method=choice.method).fit(scores, labels)
    fresh, fresh_labels = _sample(2, 20_000, sharpness)
    calibrated = calibrator.predict_proba(fresh)[:, 1]
    raw_ece = expected_calibration_error(fresh_labels, fresh[:, 0])
    assert expected_calibration_error(fresh_labels, calibrated) < raw_ece / 3
    assert brier_score_loss(fresh_labels, calibrated) < brier_score_loss(fresh_labels, fresh[:, 0])


def test_scores_that_are_the_true_probabilities_are_left_alone():
    """Labels drawn from the very probabilities scored: no sample shows a calibrator's gain."""
    choices = [_judge(*_sample(seed, 2_000, 1.0), seed=seed) for seed in range(10)]

    assert [choice.method for choice in choices] == ["none"] * 10
    assert choices[0].reason.startswith("no calibrator lowers both Brier")
    assert choices[0].metrics["brier_after"] == choices[0].metrics["brier_before"]


def test_a_model_that_overpredicts_churn_is_calibrated_and_its_holdout_improves(settings, frame):
    train, holdout = split_by_time(frame, HOLDOUT_DAYS)

    model, choice = fit_calibrated(settings, train, FEATURES, OVERWEIGHTED)

    plain = fit_pipeline(train, FEATURES, OVERWEIGHTED, settings.training_seed)
    calibrated = classification_metrics(holdout[LABEL], score(model, holdout))
    uncalibrated = classification_metrics(holdout[LABEL], score(plain, holdout))
    assert choice.method in METHODS, choice.reason
    assert choice.days == 4  # a fifth of the split's 20 days
    assert calibrated["ece"] < uncalibrated["ece"] / 3
    assert calibrated["brier"] < uncalibrated["brier"]
    # The calibrator maps the scores of the classifier fitted on the whole split.
    served, refit = lightgbm_classifier(model).booster_, lightgbm_classifier(plain).booster_
    assert served.model_to_string() == refit.model_to_string()


def test_the_calibrator_maps_as_one_fitted_around_the_earlier_days_classifier(settings, frame):
    """The calibrators learn from the earlier fit's margins computed once: the served model
    scores as one whose calibrator was fitted around that classifier itself."""
    train, holdout = split_by_time(frame, HOLDOUT_DAYS)
    model, choice = fit_calibrated(settings, train, FEATURES, OVERWEIGHTED)
    assert choice.method in METHODS, choice.reason

    earlier, latest = split_by_time(train, choice.days)
    scorer = fit_pipeline(earlier, FEATURES, OVERWEIGHTED, settings.training_seed)
    rows = scorer[:-1].transform(with_numpy_dtypes(latest[FEATURES]))
    around = CalibratedClassifierCV(
        FrozenEstimator(lightgbm_classifier(scorer)), method=choice.method
    )
    plain = fit_pipeline(train, FEATURES, OVERWEIGHTED, settings.training_seed)
    expected = with_calibrator(plain, around.fit(rows, latest[LABEL].to_numpy()))

    np.testing.assert_allclose(score(model, holdout), score(expected, holdout), rtol=1e-12)


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        (
            {"calibration_min_positives": 100_000},
            "too few to judge a calibrator: the latest 4 training day(s) hold",
        ),
        ({"calibration": "off"}, "calibration is off"),
    ],
    ids=["too-few-churners", "off"],
)
def test_no_calibration_is_tried_without_enough_churners_or_when_off(
    settings, frame, override, reason
):
    train, holdout = split_by_time(frame, HOLDOUT_DAYS)

    model, choice = fit_calibrated(
        settings.model_copy(update=override), train, FEATURES, OVERWEIGHTED
    )

    assert choice.method == "none"
    assert choice.reason.startswith(reason)
    plain = fit_pipeline(train, FEATURES, OVERWEIGHTED, settings.training_seed)
    np.testing.assert_array_equal(score(model, holdout), score(plain, holdout))


def test_the_brier_gain_bound_counts_a_customer_once_however_many_days_they_appear():
    rng = np.random.default_rng(3)
    truth = rng.beta(1.2, 7, size=500)
    labels = rng.binomial(1, truth)
    before, after = np.clip(truth + 0.05, 0, 1), truth
    days = 10

    once = brier_gain_bound(before, after, labels, np.arange(500), 0.95)
    repeated = [np.tile(values, days) for values in (before, after, labels)]
    by_customer = brier_gain_bound(*repeated, np.tile(np.arange(500), days), 0.95)
    by_row = brier_gain_bound(*repeated, np.arange(500 * days), 0.95)

    assert by_customer == pytest.approx(once)
    assert by_row > once  # ten copies taken as independent rows would narrow the bound
