"""Data drift between a reference and a current sample, measured as effect sizes on all rows.

Numeric columns: PSI over the reference's quantile bins (or a normed Wasserstein distance);
categorical columns: Jensen-Shannon distance. Method names are Evidently's, so the report
(`churnloop.monitoring.report`) uses the same methods and thresholds (settings).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from churnloop.errors import DataError
from churnloop.schema import ENTITY, LABEL, PREDICTION, TIMESTAMP
from churnloop.settings import Settings, get_settings

Kind = Literal["numeric", "categorical"]

PSI_EPSILON = 1e-4
"""Floor of a bin's share: an empty bin would make PSI infinite."""

WASSERSTEIN_MIN_STD = 1e-3
"""Floor of the norm, as in Evidently: a constant reference column must not divide by 0."""

NOT_FEATURES = (ENTITY, TIMESTAMP, LABEL, PREDICTION)
"""Columns left out when no columns are given; the model's scores are compared on their
own by ``compute_score_drift``."""


@dataclass(frozen=True)
class DriftThresholds:
    """The methods and thresholds of one drift computation (see the ``drift_*`` settings)."""

    numeric_method: Literal["psi", "wasserstein"]
    psi: float
    psi_bins: int
    wasserstein: float
    jensenshannon: float
    share: float

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftThresholds:
        return cls(
            numeric_method=settings.drift_numeric_method,
            psi=settings.drift_psi_threshold,
            psi_bins=settings.drift_psi_bins,
            wasserstein=settings.drift_wasserstein_threshold,
            jensenshannon=settings.drift_jensenshannon_threshold,
            share=settings.drift_share_threshold,
        )

    def threshold(self, method: str) -> float:
        return {
            "psi": self.psi,
            "wasserstein": self.wasserstein,
            "jensenshannon": self.jensenshannon,
        }[method]


@dataclass(frozen=True)
class ColumnDrift:
    """One column's comparison; it drifted when the score reaches the threshold."""

    column: str
    kind: Kind
    method: str
    score: float
    threshold: float
    missing_reference: float
    missing_current: float

    @property
    def drifted(self) -> bool:
        return self.score >= self.threshold

    def describe(self) -> str:
        sign = ">=" if self.drifted else "<"
        return f"{self.column} {self.method} {self.score:.3f} {sign} {self.threshold:g}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drifted": self.drifted}


@dataclass(frozen=True)
class DriftResult:
    """Per-column drift and the dataset verdict: drift when a large share of columns drifted.

    The share rule matches Evidently's ``DataDriftPreset(drift_share=...)``; which single
    columns matter enough to trigger retraining on their own is decided by
    ``churnloop.monitoring.verdict.decide``.
    """

    columns: tuple[ColumnDrift, ...]
    share_threshold: float
    reference_rows: int
    current_rows: int

    @property
    def drifted_columns(self) -> list[str]:
        return [column.column for column in self.columns if column.drifted]

    @property
    def drifted_share(self) -> float:
        return len(self.drifted_columns) / len(self.columns)

    @property
    def dataset_drift(self) -> bool:
        return self.drifted_share >= self.share_threshold

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
        drifted = [column for column in self.columns if column.drifted]
        verdict = "dataset drift" if self.dataset_drift else "no dataset drift"
        head = (
            f"{verdict}: {len(drifted)} of {len(self.columns)} columns drifted "
            f"({self.drifted_share:.0%}, dataset drift from {self.share_threshold:.0%}); "
            f"reference {self.reference_rows:,} rows, current {self.current_rows:,} rows"
        )
        if drifted:
            return f"{head}; drifted: {', '.join(column.describe() for column in drifted)}"
        return head

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable record: for the report, logs and the drift Asset's extra."""
        return {
            "dataset_drift": self.dataset_drift,
            "drifted_columns": self.drifted_columns,
            "drifted_share": self.drifted_share,
            "share_threshold": self.share_threshold,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "columns": [column.to_dict() for column in self.columns],
        }


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str] | None = None,
    thresholds: DriftThresholds | None = None,
    *,
    categorical_columns: Collection[str] = (),
) -> DriftResult:
    """Compare ``columns`` of ``current`` with ``reference`` on all rows.

    ``columns`` defaults to every column of ``reference`` except ``NOT_FEATURES``. A
    column is numeric or categorical by its reference dtype (booleans are categorical);
    ``categorical_columns`` overrides that for numeric codes. Thresholds default to the
    current settings.
    """
    thresholds = thresholds or DriftThresholds.from_settings(get_settings())
    columns = _columns_to_compare(reference, current, columns)
    results = tuple(
        _column_drift(
            column,
            reference[column],
            current[column],
            _kind(reference[column], column in categorical_columns),
            thresholds,
        )
        for column in columns
    )
    return DriftResult(results, thresholds.share, len(reference), len(current))


def compute_score_drift(
    reference_scores: Sequence[float] | np.ndarray | pd.Series,
    current_scores: Sequence[float] | np.ndarray | pd.Series,
    thresholds: DriftThresholds | None = None,
    *,
    name: str = PREDICTION,
) -> ColumnDrift:
    """Prediction drift: PSI between the distributions of two sets of model scores."""
    thresholds = thresholds or DriftThresholds.from_settings(get_settings())
    samples = {"reference": pd.Series(reference_scores), "current": pd.Series(current_scores)}
    for side, scores in samples.items():
        if scores.empty:
            raise DataError(f"no {side} scores to compare for prediction drift ({name!r})")
    reference, current = (_numeric_values(scores, name, side) for side, scores in samples.items())
    return ColumnDrift(
        column=name,
        kind="numeric",
        method="psi",
        score=population_stability_index(reference, current, thresholds.psi_bins),
        threshold=thresholds.psi,
        missing_reference=float(np.isnan(reference).mean()),
        missing_current=float(np.isnan(current).mean()),
    )


def population_stability_index(reference: np.ndarray, current: np.ndarray, bins: int) -> float:
    """PSI over quantile bins of ``reference``, with missing values (NaN) as one more bin."""
    present = reference[~np.isnan(reference)]
    quantiles = np.linspace(0, 1, bins + 1)[1:-1]
    edges = np.unique(np.quantile(present, quantiles)) if present.size else np.empty(0)
    expected, actual = _bin_shares(reference, edges), _bin_shares(current, edges)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of ``values`` in the bins cut by ``edges``; the last bin holds NaN."""
    bin_index = np.searchsorted(edges, values, side="right")
    bin_index[np.isnan(values)] = edges.size + 1
    counts = np.bincount(bin_index, minlength=edges.size + 2)
    return np.maximum(counts / values.size, PSI_EPSILON)


def normed_wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """Wasserstein distance of the present values, in reference standard deviations."""
    reference, current = reference[~np.isnan(reference)], current[~np.isnan(current)]
    norm = max(float(np.std(reference)), WASSERSTEIN_MIN_STD)
    return float(wasserstein_distance(reference, current) / norm)


def category_distance(reference: pd.Series, current: pd.Series) -> float:
    """Jensen-Shannon distance (natural log, as Evidently) of the category frequencies."""
    counts = _category_counts(reference, current)
    return float(jensenshannon(counts["reference"].to_numpy(), counts["current"].to_numpy()))


def _category_counts(reference: pd.Series, current: pd.Series) -> pd.DataFrame:
    """Counts per category (NaN included) of both samples, in an order rows cannot change."""
    counts = pd.concat(
        [reference.value_counts(dropna=False), current.value_counts(dropna=False)],
        axis=1,
        keys=["reference", "current"],
    ).fillna(0)
    return counts.iloc[np.argsort(counts.index.astype(str), kind="stable")]


def _columns_to_compare(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str] | None
) -> list[str]:
    for side, frame in (("reference", reference), ("current", current)):
        if frame.empty:
            raise DataError(f"the {side} data has no rows; drift needs both samples")
    if columns is None:
        columns = [column for column in reference.columns if column not in NOT_FEATURES]
    if not columns:
        raise DataError("no columns to compare for drift")
    for side, frame in (("reference", reference), ("current", current)):
        absent = [column for column in columns if column not in frame.columns]
        if absent:
            raise DataError(
                f"the {side} data lacks column(s) {absent} that drift compares; "
                f"it has {list(frame.columns)}"
            )
    return list(columns)


def _kind(series: pd.Series, declared_categorical: bool) -> Kind:
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise DataError(
            f"column {series.name!r} holds {dtype} values; drift compares numeric and "
            "categorical columns only (leave it out of the columns)"
        )
    if declared_categorical or pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    return "numeric" if pd.api.types.is_numeric_dtype(dtype) else "categorical"


def _column_drift(
    column: str,
    reference: pd.Series,
    current: pd.Series,
    kind: Kind,
    thresholds: DriftThresholds,
) -> ColumnDrift:
    if kind == "categorical":
        counts = _category_counts(reference, current)
        expected, actual = counts["reference"].to_numpy(), counts["current"].to_numpy()
        method, score = "jensenshannon", float(jensenshannon(expected, actual))
        missing = counts.index.isna()
        missing_shares = (
            expected[missing].sum() / len(reference),
            actual[missing].sum() / len(current),
        )
    else:
        expected = _numeric_values(reference, column, "reference")
        actual = _numeric_values(current, column, "current")
        method = thresholds.numeric_method
        if method == "psi":
            score = population_stability_index(expected, actual, thresholds.psi_bins)
        else:
            for side, values in (("reference", expected), ("current", actual)):
                if np.isnan(values).all():
                    raise DataError(
                        f"column {column!r} has no values in the {side} data; Wasserstein "
                        "cannot compare it (PSI counts missing values as a bin)"
                    )
            score = normed_wasserstein(expected, actual)
        missing_shares = np.isnan(expected).mean(), np.isnan(actual).mean()
    return ColumnDrift(
        column=column,
        kind=kind,
        method=method,
        score=score,
        threshold=thresholds.threshold(method),
        missing_reference=float(missing_shares[0]),
        missing_current=float(missing_shares[1]),
    )


def _numeric_values(series: pd.Series, column: str, side: str) -> np.ndarray:
    """The column as float64 with NaN for missing; non-numbers and infinities are errors."""
    try:
        numbers = pd.to_numeric(series, errors="raise")
    except (ValueError, TypeError) as error:
        raise DataError(
            f"column {column!r} is numeric, but the {side} data holds non-numeric values ({error})"
        ) from error
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    if np.isinf(values).any():
        raise DataError(f"column {column!r} holds infinite values in the {side} data")
    return values
