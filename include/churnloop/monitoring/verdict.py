"""Whether the champion needs retraining: harmful drift, a performance drop, or stale data.

`decide` combines the signals, each with its own threshold in settings, and only says
whether and why; deduplicating triggers is `churnloop.monitoring.daily_check.suppression`'s job.
Drift counts only when the performance estimated before the labels
(`churnloop.monitoring.estimated_performance`) cannot rule out a loss: drift with no
estimated harm is recorded, not acted on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churnloop.errors import DataError
from churnloop.monitoring.effect_sizes import ColumnDrift, DriftResult
from churnloop.monitoring.estimated_performance import EstimatedPerformance
from churnloop.monitoring.slice_drift import SliceDriftResult
from churnloop.schema import LABEL, PREDICTION
from churnloop.settings import get_settings
from churnloop.training.intervals import Interval


@dataclass(frozen=True)
class PerformanceCheck:
    """The champion's ROC AUC on matured labels against its baseline; ``auc`` None: not judged.

    ``estimated_auc``: what the estimate before the labels says of the same scores, shown
    beside the realized AUC so that a reader sees how far to trust it.
    """

    rows: int
    baseline_auc: float
    max_drop: float
    auc: float | None
    not_judged_reason: str = ""
    estimated_auc: Interval | None = None

    @property
    def judged(self) -> bool:
        return self.auc is not None

    @property
    def drop(self) -> float | None:
        return None if self.auc is None else self.baseline_auc - self.auc

    @property
    def degraded(self) -> bool:
        return self.drop is not None and self.drop > self.max_drop

    @property
    def summary(self) -> str:
        if self.auc is None:
            return f"performance not judged: {self.not_judged_reason}"
        sign = ">" if self.degraded else "<="
        beside = ""
        if (estimated := self.estimated_auc) is not None:
            beside = (
                f"; estimated before the labels {estimated.estimate:.3f} "
                f"[{estimated.low:.3f}, {estimated.high:.3f}]"
            )
        return (
            f"ROC AUC {self.auc:.3f} on {self.rows:,} labelled rows vs baseline "
            f"{self.baseline_auc:.3f} (drop {self.drop:.3f} {sign} {self.max_drop:g}){beside}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "judged": self.judged, "drop": self.drop, "degraded": self.degraded}


@dataclass(frozen=True)
class StalenessCheck:
    """How old the champion's training data is on the day judged."""

    training_data_end: dt.date
    day: dt.date
    max_age_days: int

    @property
    def age_days(self) -> int:
        return (self.day - self.training_data_end).days

    @property
    def stale(self) -> bool:
        return self.age_days > self.max_age_days

    @property
    def summary(self) -> str:
        sign = ">" if self.stale else "<="
        return (
            f"training data ends {self.training_data_end}, {self.age_days} days before "
            f"{self.day} ({sign} {self.max_age_days} allowed)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "training_data_end": self.training_data_end.isoformat(),
            "day": self.day.isoformat(),
            "age_days": self.age_days,
            "max_age_days": self.max_age_days,
            "stale": self.stale,
        }


@dataclass(frozen=True)
class DriftVerdict:
    """Retrain or not; each reason is one sentence for the log and the Asset's extra.

    ``drift_without_harm``: the drift found while the estimate ruled out a loss beyond
    its threshold; recorded, not a reason.
    """

    reasons: list[str]
    drift_without_harm: list[str] = field(default_factory=list)

    @property
    def triggered(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "triggered": self.triggered,
            "reasons": list(self.reasons),
            "drift_without_harm": list(self.drift_without_harm),
        }


def performance_drift(
    labels_and_scores: pd.DataFrame,
    baseline_auc: float,
    max_drop: float,
    *,
    min_rows: int | None = None,
) -> PerformanceCheck:
    """ROC AUC of the served ``prediction`` on matured ``churned`` labels vs ``baseline_auc``.

    Rows whose label is still missing are left out (and counted in the reason when too
    few remain). ``min_rows`` defaults to the ``drift_performance_min_rows`` setting.
    """
    if min_rows is None:
        min_rows = get_settings().drift_performance_min_rows
    absent = [column for column in (LABEL, PREDICTION) if column not in labels_and_scores.columns]
    if absent:
        raise DataError(
            f"performance check needs columns {absent}; got {list(labels_and_scores.columns)}"
        )
    labelled = labels_and_scores[labels_and_scores[LABEL].notna()]
    labels = labelled[LABEL].to_numpy(dtype="float64")
    scores = labelled[PREDICTION].to_numpy(dtype="float64", na_value=np.nan)
    if not np.isin(labels, (0, 1)).all():
        unexpected = sorted(set(labels.tolist()) - {0, 1})[:5]
        raise DataError(f"{LABEL!r} must be 0 or 1; found {unexpected}")
    if np.isnan(scores).any():
        raise DataError(f"{int(np.isnan(scores).sum())} labelled rows have no {PREDICTION!r}")

    def not_judged(reason: str) -> PerformanceCheck:
        return PerformanceCheck(len(labelled), baseline_auc, max_drop, None, reason)

    if len(labelled) < min_rows:
        unlabelled = len(labels_and_scores) - len(labelled)
        return not_judged(
            f"{len(labelled)} labelled rows, fewer than {min_rows} "
            f"({unlabelled} rows without a label yet)"
        )
    if np.unique(labels).size < 2:
        return not_judged(f"all {len(labelled)} labelled rows are of class {int(labels[0])}")
    auc = float(roc_auc_score(labels, scores))
    return PerformanceCheck(len(labelled), baseline_auc, max_drop, auc)


def staleness(training_data_end: dt.date, day: dt.date, max_age_days: int) -> StalenessCheck:
    """A negative age (a backfilled day before the training data ends) is never stale."""
    return StalenessCheck(training_data_end, day, max_age_days)


def decide(
    result: DriftResult,
    performance: PerformanceCheck | None,
    staleness: StalenessCheck,
    important_columns: Sequence[str],
    *,
    estimate: EstimatedPerformance | None = None,
    prediction_drift: ColumnDrift | None = None,
    slices: SliceDriftResult | None = None,
) -> DriftVerdict:
    """Collect every reason to retrain; ``performance`` None: no labels have matured yet.

    Drift (important columns, a large share of columns, the score) is a reason unless
    ``estimate`` rules out harm (judged, against a threshold, loss within it); an
    estimate not judged, or None, leaves drift a reason as it was. An estimated loss
    beyond the threshold is a reason of its own. Dataset drift counts as data drift too,
    so that an empty list of important columns still reacts to a broad shift; so does an
    important column drifted within a slice (``slices``), which the whole day can dilute.
    """
    drift = _drift_reasons(result, important_columns, prediction_drift)
    drift += _slice_reasons(slices, important_columns)
    harm_ruled_out = estimate is not None and estimate.harm_ruled_out
    reasons = [] if harm_ruled_out else list(drift)
    if estimate is not None and estimate.harmful:
        reasons.append(f"estimated performance drop: {estimate.summary}")
    if performance is not None and performance.degraded:
        reasons.append(f"performance drop: {performance.summary}")
    if staleness.stale:
        reasons.append(f"stale champion: {staleness.summary}")
    return DriftVerdict(reasons, drift if harm_ruled_out else [])


def _slice_reasons(slices: SliceDriftResult | None, important_columns: Sequence[str]) -> list[str]:
    """One reason per drifted slice whose drifted columns include an important one."""
    if slices is None:
        return []
    reasons = []
    for item in slices.drifted_slices:
        important = [c for c in item.drifted_columns if c in important_columns]
        if important:
            reasons.append(f"data drift in slice {item.name} on important columns: {important}")
    return reasons


def _drift_reasons(
    result: DriftResult, important_columns: Sequence[str], prediction_drift: ColumnDrift | None
) -> list[str]:
    unknown = [column for column in important_columns if column not in result.column_names]
    if unknown:
        raise ValueError(
            f"important columns {unknown} were not compared; compared: {result.column_names}"
        )
    reasons = []
    drifted = [result.column(column) for column in important_columns]
    drifted = [column for column in drifted if column.drifted]
    if drifted:
        described = ", ".join(column.describe() for column in drifted)
        reasons.append(f"data drift on important columns: {described}")
    if result.dataset_drift:
        reasons.append(result.summary)
    if prediction_drift is not None and prediction_drift.drifted:
        reasons.append(f"prediction drift: {prediction_drift.describe()}")
    return reasons
