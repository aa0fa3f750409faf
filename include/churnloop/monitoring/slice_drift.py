"""Drift per slice (plan, region, tenure bucket, ...): a shift confined to one group of customers.

Each slice of the current data is compared with the same slice of the reference, column by
column, with the whole-data method of `effect_sizes`. Every slice needs ``min_rows`` rows per
side, or it is "insufficient data"; the tests of every (column, slice) comparison are
Holm-corrected together, so more slices do not bring more false alarms. Slices are cut as
the gate cuts them (`churnloop.training.slices`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from churnloop.errors import DataError
from churnloop.monitoring.column_checks import column_kind, columns_to_compare
from churnloop.monitoring.effect_sizes import (
    DRIFTED,
    INSUFFICIENT,
    STABLE,
    ColumnDrift,
    DriftThresholds,
    judge,
    measure_column,
)
from churnloop.settings import get_settings
from churnloop.training.slices import DERIVED_SLICES, slice_values


@dataclass(frozen=True)
class SliceDrift:
    """One slice's columns compared; the slice drifted when any of its columns did."""

    slice_column: str
    value: str
    reference_rows: int
    current_rows: int
    columns: tuple[ColumnDrift, ...]

    @property
    def name(self) -> str:
        return f"{self.slice_column}={self.value}"

    @property
    def drifted_columns(self) -> list[str]:
        return [column.column for column in self.columns if column.drifted]

    @property
    def status(self) -> str:
        if not any(column.judged for column in self.columns):
            return INSUFFICIENT
        return DRIFTED if self.drifted_columns else STABLE

    def to_dict(self) -> dict[str, Any]:
        return {
            "slice": self.name,
            "slice_column": self.slice_column,
            "value": self.value,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "status": self.status,
            "drifted_columns": self.drifted_columns,
            "columns": [column.to_dict() for column in self.columns],
        }


@dataclass(frozen=True)
class SliceDriftResult:
    """Every slice's verdict; ``comparisons`` is the size of the Holm family."""

    slices: tuple[SliceDrift, ...]
    alpha: float
    min_rows: int

    @property
    def comparisons(self) -> int:
        return sum(column.judged for item in self.slices for column in item.columns)

    @property
    def drifted_slices(self) -> list[SliceDrift]:
        return [item for item in self.slices if item.status == DRIFTED]

    @property
    def insufficient_slices(self) -> list[SliceDrift]:
        return [item for item in self.slices if item.status == INSUFFICIENT]

    @property
    def summary(self) -> str:
        drifted = self.drifted_slices
        head = (
            f"slice drift: {len(drifted)} of {len(self.slices)} slices drifted "
            f"({len(self.insufficient_slices)} with fewer than {self.min_rows:,} rows on a "
            f"side, not judged; Holm over {self.comparisons:,} comparisons, alpha {self.alpha:g})"
        )
        if not drifted:
            return head
        named = "; ".join(f"{item.name}: {', '.join(item.drifted_columns)}" for item in drifted)
        return f"{head}; drifted: {named}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable record, for the report and the task's return value."""
        return {
            "drifted_slices": [item.name for item in self.drifted_slices],
            "comparisons": self.comparisons,
            "alpha": self.alpha,
            "min_rows": self.min_rows,
            "slices": [item.to_dict() for item in self.slices],
        }


def compute_slice_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None = None,
    slice_columns: Sequence[str] | None = None,
    thresholds: DriftThresholds | None = None,
    *,
    categorical_columns: Collection[str] = (),
) -> SliceDriftResult:
    """Compare ``columns`` within every slice of ``slice_columns`` (default: settings).

    ``columns`` and ``categorical_columns`` mean what they mean for
    `effect_sizes.compute_drift`; the column a slice is cut from is not compared within it.
    """
    settings = get_settings()
    thresholds = thresholds or DriftThresholds.from_settings(settings)
    columns = columns_to_compare(reference, current, columns)
    if slice_columns is None:
        slice_columns = settings.drift_slice_columns
    categorical = {
        column
        for column in columns
        if column_kind(reference[column], column in categorical_columns) == "categorical"
    }
    frames = [
        _prepared(frame, side, columns, slice_columns, categorical)
        for side, frame in (("reference", reference), ("current", current))
    ]
    heads, measured = [], []
    for slice_column in slice_columns:
        compared = [column for column in columns if column != _source(slice_column)]
        for value, reference_rows, current_rows in _slices(*frames, slice_column):
            heads.append((slice_column, value, len(reference_rows), len(current_rows)))
            measured.append(
                [
                    measure_column(
                        column,
                        reference_rows[column],
                        current_rows[column],
                        thresholds,
                        categorical=column in categorical,
                    )
                    for column in compared
                ]
            )
    verdicts = iter(judge([item for group in measured for item in group], thresholds.alpha))
    slices = tuple(
        SliceDrift(*head, tuple(next(verdicts) for _ in group))
        for head, group in zip(heads, measured, strict=True)
    )
    return SliceDriftResult(slices, thresholds.alpha, thresholds.min_rows)


def _source(slice_column: str) -> str:
    """The column a slice is cut from: itself, or the numeric column of a derived slice."""
    return DERIVED_SLICES.get(slice_column, (slice_column,))[0]


def _prepared(
    frame: pd.DataFrame,
    side: str,
    columns: list[str],
    slice_columns: Sequence[str],
    categorical: set[str],
) -> pd.DataFrame:
    """The compared and slicing columns only, categories as pandas categoricals: counting
    them per slice then reads integer codes instead of hashing text again for every slice."""
    sources = [_source(column) for column in slice_columns]
    absent = [source for source in sources if source not in frame.columns]
    if absent:
        raise DataError(f"the {side} data lacks column(s) {absent} that the slices are cut from")
    kept = frame[list(dict.fromkeys([*columns, *sources]))]
    return kept.astype({column: "category" for column in categorical})


def _slices(
    reference: pd.DataFrame, current: pd.DataFrame, slice_column: str
) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """Each value of ``slice_column`` seen on either side, with its rows on both sides."""
    reference_values = slice_values(reference, slice_column)
    current_values = slice_values(current, slice_column)
    values = sorted(set(reference_values) | set(current_values))
    reference_codes = pd.Categorical(reference_values, categories=values).codes
    current_codes = pd.Categorical(current_values, categories=values).codes
    return [
        (value, reference[reference_codes == code], current[current_codes == code])
        for code, value in enumerate(values)
    ]
