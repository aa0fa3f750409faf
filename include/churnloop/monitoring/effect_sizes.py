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
from scipy.stats import chi2, wasserstein_distance

from churnloop.errors import DataError
from churnloop.features.definition import FEATURE_SCHEMA
from churnloop.schema import ENTITY, LABEL, PREDICTION, TIMESTAMP
from churnloop.settings import Settings, get_settings

Kind = Literal["numeric", "categorical"]
DRIFTED, STABLE, INSUFFICIENT = "drifted", "stable", "insufficient data"

PSI_EPSILON = 1e-4
"""Floor of a bin's share: an empty bin would make PSI infinite."""

WASSERSTEIN_MIN_STD = 1e-3
"""Floor of the norm, as in Evidently: a constant reference column must not divide by 0."""

MIN_EXPECTED_COUNT = 5.0
"""Bins expected to hold fewer rows of the smaller sample are pooled into one for the test:
the chi-square approximation fails on sparse bins (Cochran's rule)."""

NOT_FEATURES = (ENTITY, TIMESTAMP, LABEL, PREDICTION)
"""Never compared as features; the model's scores are compared by ``compute_score_drift``."""

FEATURE_COLUMNS = tuple(FEATURE_SCHEMA.names)
"""The columns compared when none are given: the model's inputs, as the feature definition
names them."""

_VALUE_TYPES = {
    "integer": "number",
    "floating": "number",
    "mixed-integer-float": "number",
    "decimal": "number",
    "string": "text",
    "boolean": "boolean",
}
"""pandas' inferred value types, grouped into the types a column may hold on both sides."""


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
    _require_same_value_type(column, reference, current)
    values = None
    if kind == "categorical":
        method = "jensenshannon"
        counts = category_counts(reference, current)
    else:
        method = thresholds.numeric_method
        values = (
            _numeric_values(reference, column, "reference"),
            _numeric_values(current, column, "current"),
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


def holm_adjusted(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values: rejecting those <= alpha keeps the family-wise
    error rate at most alpha, whatever the dependence between the tests."""
    p = np.asarray(p_values, dtype="float64")
    order = np.argsort(p, kind="stable")
    steps = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(steps, 1.0)
    return adjusted


def bin_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Left-closed bin edges ``[e_i, e_i+1)`` cut from the reference's present values.

    Values below the reference's minimum and above its maximum fall in bins of their own
    (the reference has none there). A value holding at least 1/``bins`` of the reference
    (a point mass such as 0), and every value of a column with at most ``bins`` distinct
    values, starts a bin that ends at the reference's next value, so it is alone there in
    the reference; the other values are cut at their quantiles into ``bins`` bins.
    """
    present = reference[~np.isnan(reference)]
    if present.size == 0:
        return np.empty(0)
    values, counts = np.unique(present, return_counts=True)
    point_masses = values if values.size <= bins else values[counts * bins >= present.size]
    others = values[~np.isin(values, point_masses)]
    other_rows = present[~np.isin(present, point_masses)]
    quantiles = np.quantile(other_rows, np.arange(1, bins) / bins) if others.size else []
    after = np.searchsorted(others, point_masses, side="right")
    next_values = others[after[after < others.size]]
    cuts = [values[:1], quantiles, point_masses, next_values, np.nextafter(values[-1:], np.inf)]
    return np.unique(np.concatenate(cuts))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the ``edges.size + 1`` bins, then of missing values (NaN)."""
    missing = np.isnan(values)
    index = np.searchsorted(edges, values[~missing], side="right")
    return np.append(np.bincount(index, minlength=edges.size + 1), missing.sum())


def category_counts(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Counts per category of both samples, in an order rows cannot change, then missing."""
    counts = [series.value_counts(dropna=False) for series in (reference, current)]
    present = [side[side.index.notna()] for side in counts]
    categories = sorted(set(present[0].index) | set(present[1].index), key=str)
    return tuple(
        np.append(side.reindex(categories, fill_value=0).to_numpy(), whole.sum() - side.sum())
        for side, whole in zip(present, counts, strict=True)
    )


def population_stability_index(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI of two samples' counts over the same bins, shares floored at ``PSI_EPSILON``."""
    expected = np.maximum(reference_counts / reference_counts.sum(), PSI_EPSILON)
    actual = np.maximum(current_counts / current_counts.sum(), PSI_EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def normed_wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """Wasserstein distance of the present values, in reference standard deviations."""
    reference, current = reference[~np.isnan(reference)], current[~np.isnan(current)]
    norm = max(float(np.std(reference)), WASSERSTEIN_MIN_STD)
    return float(wasserstein_distance(reference, current) / norm)


def homogeneity_p_value(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """p-value of a likelihood-ratio (G) test that both samples share one distribution.

    Bins expected to hold fewer than ``MIN_EXPECTED_COUNT`` rows of the smaller sample are
    pooled into one bin, so that the chi-square approximation holds (rare categories would
    otherwise reject far more often than the level says); mass where the reference has none
    still counts, in the pooled bin.
    """
    table = np.vstack([reference_counts, current_counts]).astype("float64")
    table = table[:, table.sum(axis=0) > 0]
    expected_in_smaller = table.sum(axis=0) * table.sum(axis=1).min() / table.sum()
    sparse = expected_in_smaller < MIN_EXPECTED_COUNT
    if sparse.any():
        table = np.column_stack([table[:, ~sparse], table[:, sparse].sum(axis=1)])
    if table.shape[1] < 2:
        return 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    observed = table > 0
    statistic = 2 * np.sum(table[observed] * np.log(table[observed] / expected[observed]))
    return float(chi2.sf(statistic, df=table.shape[1] - 1))


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


def columns_to_compare(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str] | None
) -> list[str]:
    """``columns`` (default: the model's features) after checking both frames hold them."""
    compared = list(FEATURE_COLUMNS if columns is None else columns)
    if not compared:
        raise DataError("no columns to compare for drift")
    not_features = [column for column in compared if column in NOT_FEATURES]
    if not_features:
        raise DataError(
            f"drift compares the model's features, not {not_features} (ids, times and the "
            "label never; scores with compute_score_drift)"
        )
    for side, frame in (("reference", reference), ("current", current)):
        absent = [column for column in compared if column not in frame.columns]
        if absent:
            hint = (
                "; without columns drift compares the model's features" if columns is None else ""
            )
            raise DataError(
                f"the {side} data lacks column(s) {absent} that drift compares{hint}; "
                f"it has {list(frame.columns)}"
            )
    return compared


def column_kind(series: pd.Series, declared_categorical: bool = False) -> Kind:
    """Numeric or categorical, by the reference's dtype; booleans and declared codes are
    categorical, datetimes are refused."""
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise DataError(
            f"column {series.name!r} holds {dtype} values; drift compares numeric and "
            "categorical columns only (leave it out of the columns)"
        )
    if declared_categorical or pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    return "numeric" if pd.api.types.is_numeric_dtype(dtype) else "categorical"


def _value_type(series: pd.Series) -> str | None:
    """ "number", "text" or "boolean" (or what else pandas infers); None: no value present."""
    values = series.cat.categories if isinstance(series.dtype, pd.CategoricalDtype) else series
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred == "empty" or (inferred == "floating" and series.isna().all()):
        return None
    return _VALUE_TYPES.get(inferred, inferred)


def _require_same_value_type(column: str, reference: pd.Series, current: pd.Series) -> None:
    """Refuse a column whose values change type between the samples (text vs numbers), which
    would otherwise read as a complete change of distribution."""
    types = {"reference": _value_type(reference), "current": _value_type(current)}
    for side, value_type in types.items():
        if value_type not in (None, *_VALUE_TYPES.values()):
            raise DataError(
                f"column {column!r} holds {value_type} values in the {side} data; drift "
                "compares columns of numbers, booleans or text"
            )
    if None not in types.values() and types["reference"] != types["current"]:
        raise DataError(
            f"column {column!r} holds {types['reference']} values in the reference data and "
            f"{types['current']} values in the current data: cast one side to the other's type"
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
