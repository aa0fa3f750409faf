"""The ROC AUC of what was served, once its labels matured: per day and model version.

The prediction log of day D holds the scores the servers answered with; the validated
churn labels of day D + `schema.LABEL_DELAY_DAYS` label the snapshots of day D. Joined on
the customer, they give the served ROC AUC of each version that answered on D (the
champion, a canary's candidate), with its DeLong interval, beside the holdout AUC the
version was promoted on. A customer scored several times by a version on D counts once,
with the day's last score: repeated requests are not independent rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from churnloop.errors import DataError
from churnloop.monitoring.estimated_performance import probabilities
from churnloop.schema import ENTITY, LABEL, PREDICTION, TIMESTAMP
from churnloop.settings import Settings
from churnloop.training.intervals import Interval, auc_interval

VERSION = "model_version"
"""The prediction log's column naming the version that answered."""


@dataclass(frozen=True)
class ServedAuc:
    """One version's served ROC AUC on a day's matured labels; ``auc`` None: not judged."""

    snapshot_day: str
    model_version: int
    rows: int
    positives: int
    holdout_auc: float | None
    auc: Interval | None
    not_judged_reason: str = ""

    def describe(self) -> str:
        holdout = "no holdout AUC recorded"
        if self.holdout_auc is not None:
            holdout = f"holdout {self.holdout_auc:.3f}"
        counts = (
            f"{self.rows:,} served customers of {self.snapshot_day}, {self.positives:,} churned"
        )
        if self.auc is None:
            return (
                f"v{self.model_version}: served ROC AUC not judged ({self.not_judged_reason}); "
                f"{holdout}"
            )
        return (
            f"v{self.model_version}: served ROC AUC {self.auc.estimate:.3f} "
            f"[{self.auc.low:.3f}, {self.auc.high:.3f}] on {counts}; {holdout}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def served_with_labels(
    predictions: pd.DataFrame, labels: pd.DataFrame, snapshot_day: dt.date
) -> pd.DataFrame:
    """Each version's last score of ``snapshot_day`` per customer, with the customer's label.

    ``labels`` are a matured drop; only its rows of ``snapshot_day`` are used. Customers
    served but not labelled (or the reverse) are left out, and so are requests that
    brought their own features (no ``customer_id``).
    """
    _require(predictions, "prediction log", [ENTITY, TIMESTAMP, VERSION, PREDICTION])
    _require(labels, "matured labels", [ENTITY, TIMESTAMP, LABEL])
    labels = labels[labels[TIMESTAMP].dt.date == snapshot_day][[ENTITY, LABEL]]
    repeated = labels[ENTITY].duplicated()
    if repeated.any():
        examples = labels.loc[repeated, ENTITY].head(3).tolist()
        raise DataError(
            f"the matured labels of {snapshot_day} label {int(repeated.sum())} customer(s) "
            f"twice, e.g. {examples}"
        )
    served = predictions[
        (predictions[TIMESTAMP].dt.date == snapshot_day) & predictions[ENTITY].notna()
    ].astype({ENTITY: "int64"})
    last = served.sort_values(TIMESTAMP, kind="stable").drop_duplicates(
        [ENTITY, VERSION], keep="last"
    )
    return last[[ENTITY, VERSION, PREDICTION]].merge(labels, on=ENTITY, how="inner")


def served_aucs(
    rows: pd.DataFrame,
    snapshot_day: dt.date,
    holdout_auc: Callable[[int], float | None],
    settings: Settings,
) -> list[ServedAuc]:
    """The served ROC AUC of each version in ``rows`` (from `served_with_labels`).

    A version with fewer churners or non-churners than ``drift_auc_min_positives`` /
    ``drift_auc_min_negatives`` is reported, not judged.
    """
    return [
        _served_auc(group, snapshot_day, int(version), holdout_auc(int(version)), settings)
        for version, group in rows.groupby(VERSION, sort=True)
    ]


def _served_auc(
    group: pd.DataFrame,
    snapshot_day: dt.date,
    version: int,
    holdout_auc: float | None,
    settings: Settings,
) -> ServedAuc:
    labels = group[LABEL].to_numpy(dtype="float64")
    if not np.isin(labels, (0, 1)).all():
        unexpected = sorted(set(labels.tolist()) - {0.0, 1.0})[:5]
        raise DataError(f"{LABEL!r} of the matured labels must be 0 or 1; found {unexpected}")
    scores = probabilities(group[PREDICTION], f"prediction log of v{version}")
    positives = int(labels.sum())
    served = ServedAuc(
        snapshot_day=snapshot_day.isoformat(),
        model_version=version,
        rows=len(group),
        positives=positives,
        holdout_auc=holdout_auc,
        auc=None,
    )
    shortage = _shortage(positives, len(group) - positives, settings)
    if shortage:
        return replace(served, not_judged_reason=shortage)
    return replace(served, auc=auc_interval(labels, scores, settings.drift_confidence))


def _shortage(positives: int, negatives: int, settings: Settings) -> str | None:
    if positives < settings.drift_auc_min_positives:
        return f"{positives} churned, fewer than {settings.drift_auc_min_positives}"
    if negatives < settings.drift_auc_min_negatives:
        return f"{negatives} stayed, fewer than {settings.drift_auc_min_negatives}"
    return None


def _require(frame: pd.DataFrame, role: str, columns: list[str]) -> None:
    absent = [column for column in columns if column not in frame.columns]
    if absent:
        raise DataError(f"the {role} lacks column(s) {absent}; it has {list(frame.columns)}")
