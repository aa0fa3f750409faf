"""The champion's ROC AUC before the labels arrive: confidence-based performance estimation.

Labels mature `schema.LABEL_DELAY_DAYS` late; until then the champion's own scores are the
only evidence of how well it ranks today's customers. Read as churn probabilities, they
give an expected confusion matrix at every threshold, hence an expected ROC curve whose
area is the expected ROC AUC (the CBPE method of NannyML, written here with NumPy). Its
interval is the spread of the AUC the day's labels could give, from labels drawn as
Bernoulli(score) a few hundred times: it widens as the sample shrinks.

The estimate is right only while the scores are calibrated, so the scores are first mapped
to the reference's churn rates (isotonic regression on the reference's scores and labels,
as NannyML's CBPE does): at a 6% base rate an ECE of 0.02 moved the uncorrected estimate
0.07 above the realized AUC. A
concept drift (same features, another relation to churn) leaves the scores and so the
estimate unchanged: only the realized AUC on matured labels
(`churnloop.monitoring.verdict.performance_drift`) sees it. See docs/drift.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy.stats import norm, rankdata
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from churnloop.errors import DataError
from churnloop.settings import Settings
from churnloop.training.intervals import Interval

SIMULATION_SEED = 0
"""Seed of the simulated labels: a re-run of a day gives the same interval."""
_SIMULATED_CELLS = 4_000_000
"""Most labels drawn at once (draws x rows), bounding memory on large days."""


def probabilities(scores: Any, role: str) -> np.ndarray:
    """``scores`` as a float array of probabilities; a `DataError` naming ``role`` if not."""
    values = np.asarray(scores, dtype="float64")
    missing = int(np.isnan(values).sum())
    if missing:
        raise DataError(f"the {role} has {missing} missing score(s); scores must be in [0, 1]")
    outside = values[(values < 0) | (values > 1)]
    if outside.size:
        raise DataError(
            f"the {role} has {outside.size} score(s) outside [0, 1], e.g. {outside[:3].tolist()}"
        )
    return values


def expected_roc_auc(scores: np.ndarray) -> float:
    """Area under the ROC curve expected when each score is the probability of churn.

    At the threshold of each distinct score (ties move together), the expected true
    positives are the scores summed above it and the expected false positives their
    complements: expected TPR and FPR, integrated by the trapezoid rule.
    """
    ordered = np.sort(scores)[::-1]
    last_of_tie = np.append(ordered[1:] != ordered[:-1], True)
    true_positives = np.cumsum(ordered)[last_of_tie]
    false_positives = np.cumsum(1.0 - ordered)[last_of_tie]
    tpr = np.concatenate([[0.0], true_positives / true_positives[-1]])
    fpr = np.concatenate([[0.0], false_positives / false_positives[-1]])
    return float(np.trapezoid(tpr, fpr))


def simulated_aucs(scores: np.ndarray, simulations: int, seed: int = SIMULATION_SEED) -> np.ndarray:
    """ROC AUCs of ``scores`` against ``simulations`` label draws, label i ~ Bernoulli(score i).

    Draws with a single class (no AUC) are left out; the minimum expected counts of
    `estimate_auc` make them vanishingly rare.
    """
    ranks = rankdata(scores)
    rows = scores.size
    rng = np.random.default_rng(seed)
    chunk = max(1, _SIMULATED_CELLS // rows)
    aucs = []
    for start in range(0, simulations, chunk):
        labels = rng.random((min(chunk, simulations - start), rows)) < scores
        positives = labels.sum(axis=1)
        negatives = rows - positives
        both = (positives > 0) & (negatives > 0)
        rank_sums = labels[both].astype("float64") @ ranks
        positives, negatives = positives[both], negatives[both]
        aucs.append((rank_sums - positives * (positives + 1) / 2) / (positives * negatives))
    return np.concatenate(aucs)


def estimate_auc(scores: np.ndarray, confidence: float, simulations: int) -> Interval:
    """CBPE's expected ROC AUC, ± z times the spread of the simulated AUCs (clipped)."""
    half = float(norm.ppf(0.5 + confidence / 2)) * float(
        np.std(simulated_aucs(scores, simulations), ddof=1)
    )
    expected = expected_roc_auc(scores)
    return Interval(expected, max(0.0, expected - half), min(1.0, expected + half), confidence)


@dataclass(frozen=True)
class EstimatedPerformance:
    """The day's estimated ROC AUC against the reference's; ``estimate`` None: not judged.

    The loss is the reference's expected AUC minus the upper bound of the day's interval:
    only a drop the day's sample cannot explain counts. Both sides are CBPE estimates, so
    a miscalibration common to both cancels; the reference's realized AUC is shown beside
    its estimate as the check of calibration. ``max_drop`` None: the loss is reported,
    never harmful (drift alone triggers).
    """

    rows: int
    expected_positives: float
    reference_auc: float | None
    reference_realized_auc: float | None
    max_drop: float | None
    estimate: Interval | None
    not_judged_reason: str = ""

    @property
    def judged(self) -> bool:
        return self.estimate is not None and self.reference_auc is not None

    @property
    def loss(self) -> float | None:
        if self.estimate is None or self.reference_auc is None:
            return None
        return self.reference_auc - self.estimate.high

    @property
    def harmful(self) -> bool:
        return self.loss is not None and self.max_drop is not None and self.loss > self.max_drop

    @property
    def harm_ruled_out(self) -> bool:
        """Judged against a threshold and within it: drift alone is then no reason to retrain."""
        return self.judged and self.max_drop is not None and not self.harmful

    @property
    def summary(self) -> str:
        if self.estimate is None or self.reference_auc is None:
            return f"performance not estimated: {self.not_judged_reason}"
        realized = self.reference_realized_auc
        calibration = "" if realized is None else f", realized there {realized:.3f}"
        limit = "no limit set"
        if self.max_drop is not None:
            limit = f"{'>' if self.harmful else '<='} {self.max_drop:g}"
        return (
            f"estimated ROC AUC {self.estimate.estimate:.3f} "
            f"[{self.estimate.low:.3f}, {self.estimate.high:.3f}] on {self.rows:,} rows "
            f"({self.expected_positives:,.0f} churners expected) vs {self.reference_auc:.3f} "
            f"estimated on the reference{calibration} (loss {self.loss:.3f}, {limit})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "judged": self.judged,
            "loss": self.loss,
            "harmful": self.harmful,
            "harm_ruled_out": self.harm_ruled_out,
        }


def estimate_performance(
    current_scores: Any, reference_labels: Any, reference_scores: Any, settings: Settings
) -> EstimatedPerformance:
    """Estimate the day's ROC AUC from ``current_scores`` and compare it with the reference's.

    Not judged when either side expects fewer churners or non-churners (the sum of the
    scores, of their complements) than ``drift_auc_min_positives`` / ``_negatives``.
    """
    reference = probabilities(reference_scores, "reference")
    labels = np.asarray(reference_labels)
    calibrated = reference_calibration(reference, labels)
    current = calibrated(probabilities(current_scores, "current data"))
    realized = float(roc_auc_score(labels, reference)) if np.unique(labels).size == 2 else None
    reference = calibrated(reference)
    too_few = shortage(current, "the day", settings) or shortage(
        reference, "the reference", settings
    )
    check = EstimatedPerformance(
        rows=current.size,
        expected_positives=float(current.sum()),
        reference_auc=None if too_few else expected_roc_auc(reference),
        reference_realized_auc=realized,
        max_drop=settings.drift_max_estimated_auc_drop,
        estimate=None,
        not_judged_reason=too_few or "",
    )
    if too_few:
        return check
    interval = estimate_auc(current, settings.drift_confidence, settings.drift_estimate_simulations)
    return replace(check, estimate=interval)


def reference_calibration(scores: np.ndarray, labels: np.ndarray) -> Callable[[Any], np.ndarray]:
    """The map of scores to the churn rate the reference saw at each score (isotonic, clipped
    to its range); the identity when the reference lacks a class to calibrate against."""
    if np.unique(labels).size < 2:
        return lambda values: np.asarray(values, dtype="float64")
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    isotonic.fit(scores, labels)
    return lambda values: isotonic.predict(np.asarray(values, dtype="float64"))


def shortage(scores: np.ndarray, side: str, settings: Settings) -> str | None:
    """Why ``scores`` are too few to estimate an AUC from, or None."""
    expected = {
        "churners": (float(scores.sum()), settings.drift_auc_min_positives),
        "non-churners": (float((1.0 - scores).sum()), settings.drift_auc_min_negatives),
    }
    for name, (count, minimum) in expected.items():
        if count < minimum:
            return (
                f"{side} expects {count:.1f} {name} in {scores.size:,} rows, fewer than {minimum}"
            )
    return None
