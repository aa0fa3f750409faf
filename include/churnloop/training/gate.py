"""The evaluation gate: may the challenger replace the champion? (after TFX's Evaluator)

`evaluate` scores both models on the same holdout and returns a `Decision`: value, change
and slice checks, each with what was observed, its threshold and its status. The decision
survives a JSON round trip (XCom) and becomes model-version tags (`Decision.to_tags`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churnloop.errors import DataError
from churnloop.registry import GATE_DECISION_TAG, GATE_TAG_PREFIX
from churnloop.settings import Settings
from churnloop.training.metrics import (
    METRICS,
    Scorer,
    binary_labels,
    classification_metrics,
    format_number,
    score,
)

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass(frozen=True)
class GateConfig:
    """The gate's thresholds; defaults come from settings, a DAG run's Params override them."""

    min_roc_auc: float
    max_auc_drop_abs: float | None
    max_auc_drop_rel: float | None
    slice_columns: tuple[str, ...]
    min_slice_rows: int
    max_slice_drop: float | None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> GateConfig:
        gate = cls(
            min_roc_auc=settings.gate_min_roc_auc,
            max_auc_drop_abs=settings.gate_max_auc_drop_abs,
            max_auc_drop_rel=settings.gate_max_auc_drop_rel,
            slice_columns=tuple(settings.gate_slice_columns),
            min_slice_rows=settings.gate_min_slice_rows,
            max_slice_drop=settings.gate_max_slice_drop,
        )
        return dataclasses.replace(gate, **overrides)


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    observed: float | None
    threshold: float | None
    message: str


@dataclass(frozen=True)
class SliceMetrics:
    """One slice's ROC AUC for both models; ``judged`` is False when it is too small."""

    column: str
    value: str
    rows: int
    positives: int
    challenger_auc: float | None
    champion_auc: float | None
    judged: bool

    def cells(self) -> list[str]:
        """The slice as one row of text, for the task log and the model card alike."""
        return [
            f"{self.column}={self.value}",
            str(self.rows),
            str(self.positives),
            format_number(self.challenger_auc),
            format_number(self.champion_auc),
            "yes" if self.judged else "no (too small or one class)",
        ]


@dataclass(frozen=True)
class Decision:
    """The gate's verdict with every check behind it; survives a JSON round trip (XCom)."""

    blessed: bool
    checks: tuple[Check, ...]
    slices: tuple[SliceMetrics, ...]
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None

    @property
    def failed_checks(self) -> list[Check]:
        return [check for check in self.checks if check.status == FAILED]

    @property
    def verdict(self) -> str:
        return "blessed" if self.blessed else "rejected"

    def describe(self) -> str:
        """The decision as text tables, for the task log."""
        failed = len(self.failed_checks)
        title = f"Evaluation gate: {self.verdict.upper()} ({failed} of {len(self.checks)} failed)"
        champion = self.champion_metrics or {}
        metrics = [
            [
                name,
                format_number(self.challenger_metrics.get(name)),
                format_number(champion.get(name)),
            ]
            for name in METRICS
        ]
        checks = [
            [c.name, c.status, format_number(c.observed), format_number(c.threshold), c.message]
            for c in self.checks
        ]
        slices = [item.cells() for item in self.slices]
        return "\n\n".join(
            [
                title,
                _text_table(["metric", "challenger", "champion"], metrics),
                _text_table(["check", "status", "observed", "threshold", "message"], checks),
                _text_table(
                    ["slice", "rows", "positives", "challenger_auc", "champion_auc", "judged"],
                    slices,
                ),
            ]
        )

    def to_tags(self) -> dict[str, str]:
        """``gate.decision`` plus one ``gate.<check>`` tag per check, for the model version."""
        tags = {GATE_DECISION_TAG: self.verdict}
        for check in self.checks:
            tags[f"{GATE_TAG_PREFIX}{_tag_safe(check.name)}"] = f"{check.status}: {check.message}"
        return tags

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        return cls(
            blessed=data["blessed"],
            checks=tuple(Check(**check) for check in data["checks"]),
            slices=tuple(SliceMetrics(**item) for item in data["slices"]),
            challenger_metrics=data["challenger_metrics"],
            champion_metrics=data["champion_metrics"],
        )


def evaluate(
    champion: Scorer | None, challenger: Scorer, holdout: pd.DataFrame, gate: GateConfig
) -> Decision:
    """Score both models on ``holdout`` and apply every check of ``gate``."""
    missing = [column for column in gate.slice_columns if column not in holdout.columns]
    if missing:
        raise DataError(f"the holdout lacks slice column(s) {', '.join(missing)}")
    labels = binary_labels(holdout, "holdout")
    challenger_scores = score(challenger, holdout, "challenger")
    champion_scores = None if champion is None else score(champion, holdout, "champion")
    challenger_metrics = classification_metrics(labels, challenger_scores)
    champion_metrics = None
    if champion_scores is not None:
        champion_metrics = classification_metrics(labels, champion_scores)

    checks = [_value_check(challenger_metrics["roc_auc"], gate.min_roc_auc)]
    champion_auc = None if champion_metrics is None else champion_metrics["roc_auc"]
    checks += _change_checks(challenger_metrics["roc_auc"], champion_auc, gate)
    slices = _slice_metrics(holdout, labels, challenger_scores, champion_scores, gate)
    checks += [_slice_check(item, gate) for item in slices]
    return Decision(
        blessed=not any(check.status == FAILED for check in checks),
        checks=tuple(checks),
        slices=tuple(slices),
        challenger_metrics=challenger_metrics,
        champion_metrics=champion_metrics,
    )


def _value_check(auc: float, minimum: float) -> Check:
    passed = auc >= minimum
    relation = ">=" if passed else "<"
    message = f"challenger ROC AUC {auc:.4f} {relation} minimum {minimum:.4f}"
    return Check("min_roc_auc", PASSED if passed else FAILED, auc, minimum, message)


def _change_checks(challenger: float, champion: float | None, gate: GateConfig) -> list[Check]:
    checks = []
    for name, limit, relative in (
        ("max_auc_drop_abs", gate.max_auc_drop_abs, False),
        ("max_auc_drop_rel", gate.max_auc_drop_rel, True),
    ):
        if champion is None:
            checks.append(Check(name, SKIPPED, None, limit, "no champion yet (bootstrap)"))
            continue
        drop = (champion - challenger) / champion if relative else champion - challenger
        if limit is None:
            checks.append(Check(name, SKIPPED, drop, None, "check disabled"))
            continue
        passed = drop <= limit
        unit = " (relative)" if relative else ""
        message = (
            f"ROC AUC {challenger:.4f} vs champion {champion:.4f}: drop{unit} {drop:.4f} "
            f"{'<=' if passed else '>'} {limit:.4f}"
        )
        checks.append(Check(name, PASSED if passed else FAILED, drop, limit, message))
    return checks


def _slice_metrics(
    holdout: pd.DataFrame,
    labels: np.ndarray,
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray | None,
    gate: GateConfig,
) -> list[SliceMetrics]:
    results = []
    for column in gate.slice_columns:
        values = holdout[column].astype("string").fillna("<missing>").to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            rows, positives = int(mask.sum()), int(labels[mask].sum())
            two_classes = 0 < positives < rows
            judged = two_classes and rows >= gate.min_slice_rows
            challenger_auc = _auc(labels[mask], challenger_scores[mask]) if two_classes else None
            champion_auc = None
            if champion_scores is not None and two_classes:
                champion_auc = _auc(labels[mask], champion_scores[mask])
            results.append(
                SliceMetrics(column, value, rows, positives, challenger_auc, champion_auc, judged)
            )
    return results


def _slice_check(item: SliceMetrics, gate: GateConfig) -> Check:
    name = f"slice.{item.column}.{item.value}"
    limit = gate.max_slice_drop
    if not item.judged:
        message = (
            f"{item.column}={item.value}: {item.rows} rows, {item.positives} positive "
            f"(needs {gate.min_slice_rows} rows and both classes): reported, not judged"
        )
        return Check(name, SKIPPED, None, limit, message)
    if item.champion_auc is None:
        return Check(name, SKIPPED, None, limit, "no champion yet (bootstrap)")
    drop = item.champion_auc - item.challenger_auc
    if limit is None:
        return Check(name, SKIPPED, drop, None, "check disabled")
    passed = drop <= limit
    message = (
        f"{item.column}={item.value} ROC AUC {item.challenger_auc:.4f} vs champion "
        f"{item.champion_auc:.4f}: drop {drop:.4f} {'<=' if passed else '>'} {limit:.4f}"
    )
    return Check(name, PASSED if passed else FAILED, drop, limit, message)


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores))


def _tag_safe(name: str) -> str:
    """MLflow tag keys allow word characters, ``. - : /`` and spaces."""
    return re.sub(r"[^\w.\-:/ ]", "_", name)


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
