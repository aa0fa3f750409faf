"""Calibration of the churn model: served scores that can be trusted as probabilities.

Readers take the scores as probabilities (the drift check estimates ROC AUC from them
before labels arrive), and LightGBM's may be over- or under-confident. `fit_calibrated`
holds out the latest `Settings.calibration_share` of the training split's snapshot days,
fits the pipeline on the earlier days, and judges isotonic and sigmoid (Platt)
calibrators on its scores of the held-out days by cross-validation. One is applied only
when it lowers the Brier score by more than noise and lowers ECE too; the returned
`CalibrationChoice` records the method (or ``none``), why, and the numbers behind it.

The model stays one scikit-learn `Pipeline`: calibrated, its last step is a
`CalibratedClassifierCV` around a `FrozenEstimator` of the LGBMClassifier
(`churnloop.training.pipeline.lightgbm_classifier` finds it; serving replays the mapping).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from churnloop.registry import CALIBRATION_REASON_TAG, CALIBRATION_TAG
from churnloop.schema import ENTITY, LABEL
from churnloop.settings import Settings
from churnloop.training.frames import with_numpy_dtypes
from churnloop.training.metrics import expected_calibration_error, format_number
from churnloop.training.pipeline import fit_pipeline, lightgbm_classifier
from churnloop.training.split import snapshot_days, split_by_time

METHODS = ("isotonic", "sigmoid")
FOLDS = 5
"""Folds, grouped by customer, that judge each calibrator on the calibration days."""


@dataclass(frozen=True)
class CalibrationChoice:
    """The calibrator applied (``none`` for none), why, and its evidence.

    ``days`` is how many of the latest training days judged it (0: none were held out).
    ``metrics`` are on those days: ``brier_before``/``ece_before`` of the raw scores,
    ``brier_after``/``ece_after`` of the applied method (equal to before for ``none``), and
    per method its out-of-fold ``<method>_brier``, ``<method>_ece`` and the one-sided
    lower bound of its Brier gain, ``<method>_brier_gain_low``.
    """

    method: str
    reason: str
    days: int = 0
    metrics: dict[str, float] = field(default_factory=dict)

    def tags(self) -> dict[str, str]:
        return {CALIBRATION_TAG: self.method, CALIBRATION_REASON_TAG: self.reason}


def fit_calibrated(
    settings: Settings, train: pd.DataFrame, feature_names: list[str], params: Mapping[str, Any]
) -> tuple[Pipeline, CalibrationChoice]:
    """The pipeline fitted on all of ``train``, with a calibrator when one helps.

    The calibrator learns its mapping from the scores a pipeline fitted on the earlier days
    gives the calibration days: out of sample and later in time, as serving's scores are.
    It is then put on the pipeline refit on the whole split, because the newest days are
    the ones the model most needs (docs/staleness.md) and the same model is then served
    whether or not it is calibrated. That assumes the refit scores as the earlier fit did;
    the holdout's ECE, measured on the final model, shows whether it does.
    """
    seed = settings.training_seed
    model = fit_pipeline(train, feature_names, params, seed)
    if settings.calibration == "off":
        return model, CalibrationChoice("none", "calibration is off in the settings")
    days = _calibration_days(train, settings.calibration_share)
    if days == 0:
        return model, CalibrationChoice("none", "the training split spans one snapshot day")
    earlier, latest = split_by_time(train, days)
    labels = latest[LABEL].to_numpy(dtype=np.int64)
    too_few = _too_few(labels, days, settings)
    if too_few:
        return model, CalibrationChoice("none", too_few, days)
    raw, before = _earlier_fit_scores(earlier, latest, feature_names, params, seed)
    groups = latest[ENTITY].to_numpy() if ENTITY in latest.columns else np.arange(len(latest))
    choice = judge_calibrators(
        raw, before, labels, groups, confidence=settings.calibration_confidence, seed=seed
    )
    choice = replace(choice, days=days)
    if choice.method == "none":
        return model, choice
    return with_calibrator(model, fit_calibrator(raw, labels, choice.method)), choice


def _earlier_fit_scores(
    earlier: pd.DataFrame,
    latest: pd.DataFrame,
    feature_names: list[str],
    params: Mapping[str, Any],
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The margins and probabilities that a pipeline fitted on ``earlier`` gives ``latest``."""
    scorer = fit_pipeline(earlier, feature_names, params, seed)
    rows = scorer[:-1].transform(with_numpy_dtypes(latest[feature_names]))
    classifier = lightgbm_classifier(scorer)
    return classifier.decision_function(rows), classifier.predict_proba(rows)[:, 1]


def judge_calibrators(
    raw: np.ndarray,
    before: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    confidence: float,
    seed: int,
) -> CalibrationChoice:
    """Which calibrator of a classifier's scores, if any, to apply.

    ``raw`` are the scores calibrators map (LightGBM's margins), ``before`` the
    probabilities served without one. Each method is fitted and scored out of fold
    (`FOLDS` folds; ``groups`` keeps each customer's rows in one fold), as it will be used:
    on rows it was not fitted on. A method qualifies when the one-sided lower bound of its
    Brier gain at ``confidence`` is above zero and its ECE is lower than the raw scores';
    the lower Brier wins among those.
    """
    metrics = {
        "brier_before": _brier(labels, before),
        "ece_before": expected_calibration_error(labels, before),
    }
    folds = GroupKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    recorded = _recorded(raw, labels)
    for method in METHODS:
        calibrator = CalibratedClassifierCV(recorded, method=method)
        after = cross_val_predict(
            calibrator, raw.reshape(-1, 1), labels, groups=groups, cv=folds, method="predict_proba"
        )[:, 1]
        metrics[f"{method}_brier"] = _brier(labels, after)
        metrics[f"{method}_ece"] = expected_calibration_error(labels, after)
        metrics[f"{method}_brier_gain_low"] = brier_gain_bound(
            before, after, labels, groups, confidence
        )
    qualified = [
        method
        for method in METHODS
        if metrics[f"{method}_brier_gain_low"] > 0
        and metrics[f"{method}_ece"] < metrics["ece_before"]
    ]
    method = min(qualified, key=lambda name: metrics[f"{name}_brier"], default="none")
    if method == "none":
        metrics["brier_after"], metrics["ece_after"] = (
            metrics["brier_before"],
            metrics["ece_before"],
        )
    else:
        metrics["brier_after"] = metrics[f"{method}_brier"]
        metrics["ece_after"] = metrics[f"{method}_ece"]
    reason = _reason(method, metrics, len(labels), confidence)
    return CalibrationChoice(method, reason, metrics=metrics)


def fit_calibrator(raw: np.ndarray, labels: np.ndarray, method: str) -> CalibratedClassifierCV:
    """A calibrator of ``method`` fitted on the scores ``raw``; `with_calibrator` points it
    at the classifier whose scores it maps."""
    calibrator = CalibratedClassifierCV(_recorded(raw, labels), method=method)
    return calibrator.fit(raw.reshape(-1, 1), labels)


class RecordedScores(ClassifierMixin, BaseEstimator):
    """A fitted classifier whose scores are its input's one column.

    Calibrators judged and fitted around it map a classifier's scores computed once, as
    `CalibratedClassifierCV` around the classifier itself would map them, without
    predicting every row again per fold and method (2 x `FOLDS` predictions of the
    calibration days: a third of the training task at 100k customers).
    """

    def fit(self, rows: np.ndarray, labels: np.ndarray) -> RecordedScores:
        self.classes_ = np.unique(labels)
        return self

    def decision_function(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(rows, dtype=float)[:, 0]

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """A classifier's labels (scikit-learn's validation asks for them; unused here)."""
        return self.classes_[(self.decision_function(rows) > 0).astype(int)]


def _recorded(raw: np.ndarray, labels: np.ndarray) -> FrozenEstimator:
    return FrozenEstimator(RecordedScores().fit(raw.reshape(-1, 1), labels))


def brier_gain_bound(
    before: np.ndarray,
    after: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    confidence: float,
) -> float:
    """One-sided lower bound at ``confidence`` of the mean per-row Brier gain of ``after``.

    One customer's rows on consecutive days are near copies, so the gains are summed per
    group and the bound uses the cluster-robust variance of the mean: a customer seen on
    many days does not count as many independent rows.
    """
    gains = (before - labels) ** 2 - (after - labels) ** 2
    _, group_of = np.unique(groups, return_inverse=True)
    totals = np.bincount(group_of, weights=gains)
    sizes = np.bincount(group_of)
    mean = float(gains.mean())
    clusters = len(totals)
    variance = clusters / (clusters - 1) * np.sum((totals - mean * sizes) ** 2) / len(gains) ** 2
    return mean - float(norm.ppf(confidence)) * float(np.sqrt(variance))


def with_calibrator(model: Pipeline, calibrator: CalibratedClassifierCV) -> Pipeline:
    """``model`` whose classifier's scores pass through ``calibrator``'s fitted mapping.

    ``calibrator`` was fitted on other scores (`fit_calibrator`: the earlier days' fit of
    the same specification); its mapping is kept and pointed at ``model``'s classifier,
    both as the estimator it wraps and as the one it predicts with, whose inputs it takes.
    """
    classifier = model.steps[-1][1]
    frozen = FrozenEstimator(classifier)
    calibrator.estimator = frozen
    calibrator.calibrated_classifiers_[0].estimator = frozen
    calibrator.n_features_in_ = classifier.n_features_in_
    calibrator.feature_names_in_ = classifier.feature_names_in_
    return Pipeline([*model.steps[:-1], ("classifier", calibrator)])


def _calibration_days(train: pd.DataFrame, share: float) -> int:
    """The latest ``share`` of the split's snapshot days: at least one, never all."""
    count = snapshot_days(train, "training split").nunique()
    if count < 2:
        return 0
    return min(count - 1, max(1, round(share * count)))


def _too_few(labels: np.ndarray, days: int, settings: Settings) -> str | None:
    """Why the calibration days cannot judge a calibrator, or None when they can."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if (
        positives >= settings.calibration_min_positives
        and negatives >= settings.calibration_min_negatives
    ):
        return None
    return (
        f"too few to judge a calibrator: the latest {days} training day(s) hold {positives} "
        f"churners and {negatives} non-churners, below calibration_min_positives="
        f"{settings.calibration_min_positives} or calibration_min_negatives="
        f"{settings.calibration_min_negatives}"
    )


def _reason(method: str, metrics: dict[str, float], rows: int, confidence: float) -> str:
    """The decision in words, with every method's out-of-fold numbers."""
    raw = f"Brier {_number(metrics, 'brier_before')}, ECE {_number(metrics, 'ece_before')}"
    evidence = "; ".join(
        f"{name} Brier {_number(metrics, f'{name}_brier')} (gain bound "
        f"{_number(metrics, f'{name}_brier_gain_low')}), ECE {_number(metrics, f'{name}_ece')}"
        for name in METHODS
    )
    verdict = (
        f"{method} lowers Brier (gain bound above 0 at {confidence:.0%}) and ECE"
        if method != "none"
        else f"no calibrator lowers both Brier (gain bound above 0 at {confidence:.0%}) and ECE"
    )
    return f"{verdict}, out of fold on {rows:,} rows: uncalibrated {raw}; {evidence}"


def _number(metrics: dict[str, float], key: str) -> str:
    return format_number(metrics[key])


def _brier(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(brier_score_loss(labels, scores))
