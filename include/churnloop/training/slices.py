"""The gate's slices: groups of customers judged on their own intervals.

A slice is judged only with enough positives and negatives (a few churners make its AUC
noise); a judged slice fails when its whole change interval is below the allowed drop or
its whole AUC interval is below the floor. Gaps between the slices of a column are judged
too, at bootstrap included. Age bands and tenure buckets are cut from their columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churnloop.errors import DataError
from churnloop.training.intervals import (
    Interval,
    auc_difference,
    auc_interval,
    independent_difference,
)
from churnloop.training.metrics import format_number

if TYPE_CHECKING:
    from churnloop.training.gate import GateConfig

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
MISSING = "<missing>"
DERIVED_SLICES: dict[str, tuple[str, list[float], list[str]]] = {
    "age_band": ("age", [-np.inf, 30, 45, 60, np.inf], ["<30", "30-44", "45-59", "60+"]),
    "tenure_bucket": (
        "tenure_months",
        [-np.inf, 6, 12, 24, np.inf],
        ["<6m", "6-11m", "12-23m", "24m+"],
    ),
}
"""Slices cut from a numeric column: name -> (column, bin edges, labels), left-closed."""


@dataclass(frozen=True)
class Slice:
    """One slice's counts and intervals; ``judged`` is False when it holds too few of a class."""

    column: str
    value: str
    rows: int
    positives: int
    negatives: int
    challenger_auc: Interval | None
    change: Interval | None
    judged: bool

    def cells(self) -> list[str]:
        """The slice as one row of text, for the task log and the model card alike."""
        return [
            f"{self.column}={self.value}",
            str(self.rows),
            str(self.positives),
            str(self.negatives),
            "-" if self.challenger_auc is None else self.challenger_auc.describe(),
            "-" if self.change is None else self.change.describe(),
            "yes" if self.judged else "no (too few of a class)",
        ]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Slice:
        def interval(value: dict[str, float] | None) -> Interval | None:
            return None if value is None else Interval(**value)

        return cls(
            **{
                **data,
                "challenger_auc": interval(data["challenger_auc"]),
                "change": interval(data["change"]),
            }
        )


@dataclass(frozen=True)
class SliceJudgement:
    """A check on one slice or on the gap between a column's slices."""

    name: str
    status: str
    interval: Interval | None
    threshold: float | None
    message: str


@dataclass(frozen=True)
class SliceResults:
    slices: tuple[Slice, ...]
    checks: tuple[SliceJudgement, ...]


def slice_values(holdout: pd.DataFrame, column: str) -> np.ndarray:
    """Each row's slice of ``column`` as text; derived slices are cut from their column."""
    source, edges, labels = DERIVED_SLICES.get(column, (column, None, None))
    if source not in holdout.columns:
        raise DataError(f"the holdout lacks slice column {source!r} (slice {column!r})")
    values = holdout[source]
    if edges is not None:
        values = pd.cut(values, bins=edges, labels=labels, right=False)
    return values.astype("string").fillna(MISSING).to_numpy(dtype=object)


def judge_slices(
    groups: dict[str, np.ndarray],
    labels: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray | None,
    gate: GateConfig,
) -> SliceResults:
    """Measure every slice of every column, judge the big enough ones and each column's gap."""
    slices: list[Slice] = []
    checks: list[SliceJudgement] = []
    for column, values in groups.items():
        measured = [
            _measure(column, value, values == value, labels, challenger, champion, gate)
            for value in sorted(set(values))
        ]
        slices += measured
        checks += [_judge(item, gate) for item in measured]
        checks += _gap_check(column, [item for item in measured if item.judged], gate)
    return SliceResults(tuple(slices), tuple(checks))


def _measure(
    column: str,
    value: str,
    mask: np.ndarray,
    labels: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray | None,
    gate: GateConfig,
) -> Slice:
    positives = int(labels[mask].sum())
    negatives = int(mask.sum()) - positives
    judged = positives >= gate.min_slice_positives and negatives >= gate.min_slice_negatives
    auc = change = None
    if judged:
        auc = auc_interval(labels[mask], challenger[mask], gate.confidence)
        if champion is not None:
            change = auc_difference(labels[mask], challenger[mask], champion[mask], gate.confidence)
    return Slice(column, value, int(mask.sum()), positives, negatives, auc, change, judged)


def _judge(item: Slice, gate: GateConfig) -> SliceJudgement:
    name = f"slice.{item.column}.{item.value}"
    if not item.judged:
        message = (
            f"{item.column}={item.value}: {item.positives} positives, {item.negatives} "
            f"negatives (needs {gate.min_slice_positives} and {gate.min_slice_negatives}): "
            "reported, not judged"
        )
        return SliceJudgement(name, SKIPPED, None, None, message)
    problems = _slice_problems(item, gate)
    status = FAILED if problems else PASSED
    evidence = f"AUC {item.challenger_auc.describe()}"
    if item.change is not None:
        evidence += f", change vs champion {item.change.describe()}"
    message = f"{item.column}={item.value}: {evidence}" + (
        f"; {'; '.join(problems)}" if problems else ""
    )
    return SliceJudgement(
        name, status, item.change or item.challenger_auc, gate.max_slice_drop, message
    )


def _slice_problems(item: Slice, gate: GateConfig) -> list[str]:
    """What is wrong with a judged slice beyond doubt: its whole interval past a limit."""
    problems = []
    if gate.min_slice_auc is not None and item.challenger_auc.high < gate.min_slice_auc:
        problems.append(f"AUC below the floor {gate.min_slice_auc:.4f}")
    drop = gate.max_slice_drop
    if drop is not None and item.change is not None and item.change.high < -drop:
        problems.append(f"drop beyond the allowed {drop:.4f}")
    return problems


def _gap_check(column: str, judged: list[Slice], gate: GateConfig) -> list[SliceJudgement]:
    """Best minus worst slice of ``column``: fails when its whole interval exceeds the gap."""
    if gate.max_slice_gap is None or len(judged) < 2:
        return []
    ranked = sorted(judged, key=lambda item: item.challenger_auc.estimate)
    worst, best = ranked[0], ranked[-1]
    gap = independent_difference(best.challenger_auc, worst.challenger_auc)
    failed = gap.low > gate.max_slice_gap
    message = (
        f"{column}: {best.value} vs {worst.value} AUC gap {gap.describe()}: lower bound "
        f"{'>' if failed else '<='} {format_number(gate.max_slice_gap)}"
    )
    status = FAILED if failed else PASSED
    return [SliceJudgement(f"gap.{column}", status, gap, gate.max_slice_gap, message)]
