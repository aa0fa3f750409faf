"""Data drift between a reference and a current sample: per column, an effect size and a test.

A column drifts when both say so: its effect size (PSI or a normed Wasserstein distance for
numeric columns, Jensen-Shannon distance for categorical ones; Evidently's method names, so
the report uses the same) reaches its threshold, and a likelihood-ratio test of "one
distribution" over the same bins or categories rejects, Holm-corrected over the columns
compared. An effect size alone is noise at a hundred rows; a test alone calls a negligible
difference significant at a million. A side with fewer than ``min_rows`` rows is
"insufficient data" and never judged. Method and measured error rates: docs/drift.md.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from churnloop.errors import DataError
from churnloop.monitoring.binning import (
    bin_counts,
    bin_edges,
    category_counts,
    normed_wasserstein,
    population_stability_index,
)
from churnloop.monitoring.column_checks import (
    Kind,
    column_kind,
    columns_to_compare,
    numeric_values,
    require_same_value_type,
)
from churnloop.monitoring.significance import holm_adjusted, homogeneity_p_value
from churnloop.schema import PREDICTION
from churnloop.settings import Settings, get_settings

DRIFTED, STABLE, INSUFFICIENT = "drifted", "stable", "insufficient data"


@dataclass(frozen=True)
class DriftThresholds:
    """The methods, thresholds and test settings of one drift computation (``drift_*``)."""

    numeric_method: Literal["psi", "wasserstein"]
    psi: float
    psi_bins: int
    wasserstein: float
    jensenshannon: float
    share: float
    min_rows: int
    alpha: float

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftThresholds:
        return cls(
            numeric_method=settings.drift_numeric_method,
            psi=settings.drift_psi_threshold,
            psi_bins=settings.drift_psi_bins,
            wasserstein=settings.drift_wasserstein_threshold,
            jensenshannon=settings.drift_jensenshannon_threshold,
            share=settings.drift_share_threshold,
            min_rows=settings.drift_min_rows,
            alpha=settings.drift_alpha,
        )

    def threshold(self, method: str) -> float:
        return {
            "psi": self.psi,
            "wasserstein": self.wasserstein,
            "jensenshannon": self.jensenshannon,
        }[method]


@dataclass(frozen=True)
class Measurement:
    """One column measured: effect size and raw p-value, None when a side has too few rows.

    Missing shares are None for a side without rows.
    """

    column: str
    kind: Kind
    method: str
    score: float | None
    threshold: float
    missing_reference: float | None
    missing_current: float | None
    reference_rows: int
    current_rows: int
    p_value: float | None


@dataclass(frozen=True)
class ColumnDrift(Measurement):
    """A measured column and its verdict: "drifted", "stable" or "insufficient data".

    ``p_adjusted`` is Holm-corrected over the columns judged together; the column drifted
    when its score reaches the threshold and ``p_adjusted`` is at most the family's alpha.
    """

    p_adjusted: float | None
    status: str

    @property
    def drifted(self) -> bool:
        return self.status == DRIFTED

    @property
    def judged(self) -> bool:
        return self.status != INSUFFICIENT

    def describe(self) -> str:
        if not self.judged:
            return (
                f"{self.column}: insufficient data ({self.reference_rows:,} reference, "
                f"{self.current_rows:,} current rows)"
            )
        sign = ">=" if self.score >= self.threshold else "<"
        return (
            f"{self.column} {self.method} {self.score:.3f} {sign} {self.threshold:g}, "
            f"p={self.p_adjusted:.2g} (Holm): {self.status}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drifted": self.drifted}


@dataclass(frozen=True)
class DriftResult:
    """Per-column verdicts and the dataset's: drift when a large share of judged columns drifted.

    The share rule matches Evidently's ``DataDriftPreset(drift_share=...)``; a dataset with
    no judged column (too few rows) has insufficient data and never drifts. Which single
    columns matter enough to trigger retraining on their own is decided by
    ``churnloop.monitoring.verdict.decide``.
    """

    columns: tuple[ColumnDrift, ...]
    share_threshold: float
    reference_rows: int
    current_rows: int
    alpha: float
    min_rows: int

    @property
    def judged_columns(self) -> list[str]:
        return [column.column for column in self.columns if column.judged]

    @property
    def insufficient_data(self) -> bool:
        return not self.judged_columns

    @property
    def drifted_columns(self) -> list[str]:
        return [column.column for column in self.columns if column.drifted]

    @property
    def drifted_share(self) -> float:
        judged = len(self.judged_columns)
        return len(self.drifted_columns) / judged if judged else 0.0

    @property
    def dataset_drift(self) -> bool:
        return not self.insufficient_data and self.drifted_share >= self.share_threshold

    def column(self, name: str) -> ColumnDrift:
        for column in self.columns:
            if column.column == name:
                return column
        raise KeyError(f"column {name!r} was not compared; compared: {self.column_names}")

    @property
    def column_names(self) -> list[str]:
        return [column.column for column in self.columns]

    @property
    def summary(self) -> str:
        rows = f"reference {self.reference_rows:,} rows, current {self.current_rows:,} rows"
        if self.insufficient_data:
            return (
                f"insufficient data: {rows}, fewer than {self.min_rows:,} on a side; "
                "no column judged"
            )
        drifted = [column for column in self.columns if column.drifted]
        verdict = "dataset drift" if self.dataset_drift else "no dataset drift"
        head = (
            f"{verdict}: {len(drifted)} of {len(self.judged_columns)} columns drifted "
            f"({self.drifted_share:.0%}, dataset drift from {self.share_threshold:.0%}); {rows}; "
            f"drift: effect size over its threshold and test rejecting (Holm, alpha {self.alpha:g})"
        )
        if drifted:
            return f"{head}; drifted: {', '.join(column.describe() for column in drifted)}"
        return head

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable record: for the report, logs and the drift Asset's extra."""
        return {
            "dataset_drift": self.dataset_drift,
            "insufficient_data": self.insufficient_data,
            "drifted_columns": self.drifted_columns,
            "drifted_share": self.drifted_share,
            "share_threshold": self.share_threshold,
            "alpha": self.alpha,
            "min_rows": self.min_rows,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "columns": [column.to_dict() for column in self.columns],
        }


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None = None,
    thresholds: DriftThresholds | None = None,
    *,
    categorical_columns: Collection[str] = (),
) -> DriftResult:
    """Compare ``columns`` of ``current`` with ``reference`` on all rows.

    ``columns`` defaults to the model's features (``FEATURE_COLUMNS``); ids, times, the
    label and the score are refused. A column is numeric or categorical by its reference
    dtype (booleans are categorical); ``categorical_columns`` overrides that for numeric
    codes. Thresholds default to the current settings.
    """
    thresholds = thresholds or DriftThresholds.from_settings(get_settings())
    columns = columns_to_compare(reference, current, columns)
    measured = [
        measure_column(
            column,
            reference[column],
            current[column],
            thresholds,
            categorical=column in categorical_columns,
        )
        for column in columns
    ]
    return DriftResult(
        tuple(judge(measured, thresholds.alpha)),
        thresholds.share,
        len(reference),
        len(current),
        thresholds.alpha,
        thresholds.min_rows,
    )


def compute_score_drift(
    reference_scores: Sequence[float] | np.ndarray | pd.Series,
    current_scores: Sequence[float] | np.ndarray | pd.Series,
    thresholds: DriftThresholds | None = None,
    *,
    name: str = PREDICTION,
) -> ColumnDrift:
    """Prediction drift: PSI and the test between two sets of model scores, one comparison."""
    thresholds = thresholds or DriftThresholds.from_settings(get_settings())
    measured = measure_column(
        name,
        pd.Series(reference_scores, dtype="float64"),
        pd.Series(current_scores, dtype="float64"),
        replace(thresholds, numeric_method="psi"),
    )
    return judge([measured], thresholds.alpha)[0]


def measure_column(
    column: str,
    reference: pd.Series,
    current: pd.Series,
    thresholds: DriftThresholds,
    *,
    categorical: bool = False,
) -> Measurement:
    """One column's effect size and test p-value; both None when a side has too few rows.

    The p-value is raw: ``judge`` corrects it over the columns compared together.
    """
    kind = column_kind(reference, categorical)
    require_same_value_type(column, reference, current)
    values = None
    if kind == "categorical":
        method = "jensenshannon"
        counts = category_counts(reference, current)
    else:
        method = thresholds.numeric_method
        values = (
            numeric_values(reference, column, "reference"),
            numeric_values(current, column, "current"),
        )
        edges = bin_edges(values[0], thresholds.psi_bins)
        counts = (bin_counts(values[0], edges), bin_counts(values[1], edges))
    score = p_value = None
    if min(len(reference), len(current)) >= thresholds.min_rows:
        score = _effect_size(column, method, counts, values)
        p_value = homogeneity_p_value(*counts)
    return Measurement(
        column=column,
        kind=kind,
        method=method,
        score=score,
        threshold=thresholds.threshold(method),
        missing_reference=_missing_share(counts[0]),
        missing_current=_missing_share(counts[1]),
        reference_rows=len(reference),
        current_rows=len(current),
        p_value=p_value,
    )


def judge(measurements: Sequence[Measurement], alpha: float) -> list[ColumnDrift]:
    """The verdict of each measurement, the p-values Holm-corrected together.

    Pass every comparison of one decision at once (the columns of a day, or the columns of
    every slice): the correction keeps the chance of any false alarm among them at ``alpha``.
    """
    tested = [m.p_value for m in measurements if m.p_value is not None]
    adjusted = iter(holm_adjusted(tested))
    verdicts = []
    for measured in measurements:
        p_adjusted = None if measured.p_value is None else float(next(adjusted))
        if p_adjusted is None:
            status = INSUFFICIENT
        elif measured.score >= measured.threshold and p_adjusted <= alpha:
            status = DRIFTED
        else:
            status = STABLE
        verdicts.append(ColumnDrift(**asdict(measured), p_adjusted=p_adjusted, status=status))
    return verdicts


def _effect_size(
    column: str,
    method: str,
    counts: tuple[np.ndarray, np.ndarray],
    values: tuple[np.ndarray, np.ndarray] | None,
) -> float:
    if method == "psi":
        return population_stability_index(*counts)
    if method == "jensenshannon":
        return float(jensenshannon(*counts))
    for side, side_values in zip(("reference", "current"), values, strict=True):
        if np.isnan(side_values).all():
            raise DataError(
                f"column {column!r} has no values in the {side} data; Wasserstein cannot "
                "compare it (PSI counts missing values as a bin)"
            )
    return normed_wasserstein(*values)


def _missing_share(counts: np.ndarray) -> float | None:
    total = counts.sum()
    return float(counts[-1] / total) if total else None
