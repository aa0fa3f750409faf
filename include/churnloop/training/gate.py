"""The evaluation gate: may the challenger replace the champion? (after TFX's Evaluator)

`evaluate` scores challenger, champion and baselines on the same holdout (`score_holdout`)
and decides (`judge`) on DeLong intervals, never on points: value, non-inferiority against
the champion, gain over the best baseline, per-slice change, and inclusion floors that
also hold at bootstrap.
The `Decision` survives a JSON round trip (XCom) and becomes model-version tags.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churnloop.registry import GATE_DECISION_TAG, GATE_TAG_PREFIX
from churnloop.settings import Settings
from churnloop.training.decision_text import decision_text
from churnloop.training.intervals import Interval, auc_difference, auc_interval
from churnloop.training.metrics import Scorer, binary_labels, classification_metrics, score
from churnloop.training.slices import Slice, SliceJudgement, judge_slices, slice_values

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
SUPERIOR, NON_INFERIOR, INFERIOR, BOOTSTRAP = "superior", "non-inferior", "inferior", "bootstrap"


@dataclass(frozen=True)
class GateConfig:
    """The gate's thresholds; defaults come from settings, a DAG run's Params override them."""

    confidence: float
    min_holdout_positives: int
    min_holdout_negatives: int
    min_roc_auc: float
    noninferiority_margin: float | None
    superiority_margin: float
    min_gain_over_baseline: float | None
    slice_columns: tuple[str, ...]
    min_slice_positives: int
    min_slice_negatives: int
    max_slice_drop: float | None
    min_slice_auc: float | None
    max_slice_gap: float | None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> GateConfig:
        names = [field.name for field in dataclasses.fields(cls)]
        gate = cls(**{name: getattr(settings, f"gate_{name}") for name in names})
        gate = dataclasses.replace(gate, slice_columns=tuple(gate.slice_columns))
        return dataclasses.replace(gate, **overrides)


@dataclass(frozen=True)
class Check:
    """One rule's outcome; ``interval`` is the evidence it was decided on."""

    name: str
    status: str
    observed: float | None
    threshold: float | None
    message: str
    interval: tuple[float, float] | None = None


@dataclass(frozen=True)
class Decision:
    """The gate's verdict with every check behind it; survives a JSON round trip (XCom)."""

    blessed: bool
    comparison: str
    checks: tuple[Check, ...]
    slices: tuple[Slice, ...]
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    baseline_metrics: dict[str, dict[str, float]]
    change: Interval | None
    best_baseline: str | None
    baseline_gain: Interval | None

    @property
    def failed_checks(self) -> list[Check]:
        return [check for check in self.checks if check.status == FAILED]

    @property
    def verdict(self) -> str:
        return "blessed" if self.blessed else "rejected"

    def describe(self) -> str:
        """The decision as text tables, for the task log."""
        return decision_text(self)

    def to_tags(self) -> dict[str, str]:
        """``gate.decision``, the evidence in brief, and one ``gate.<check>`` tag per check."""
        tags = {GATE_DECISION_TAG: self.verdict, f"{GATE_TAG_PREFIX}comparison": self.comparison}
        if self.change is not None:
            tags[f"{GATE_TAG_PREFIX}change_vs_champion"] = self.change.describe()
        if self.best_baseline is not None and self.baseline_gain is not None:
            gain = self.baseline_gain.describe()
            tags[f"{GATE_TAG_PREFIX}baseline"] = f"{self.best_baseline}: gain {gain}"
        for check in self.checks:
            tags[f"{GATE_TAG_PREFIX}{_tag_safe(check.name)}"] = f"{check.status}: {check.message}"
        return tags

    def to_dict(self) -> dict[str, Any]:
        """JSON's own types only (lists, not tuples): Airflow's XCom keeps a tuple as a tuple,
        which its REST API then returns as text."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        def interval(value: dict[str, float] | None) -> Interval | None:
            return None if value is None else Interval(**value)

        def check(item: dict[str, Any]) -> Check:
            bounds = item.get("interval")
            return Check(**{**item, "interval": None if bounds is None else tuple(bounds)})

        return cls(
            **{
                **data,
                "checks": tuple(check(item) for item in data["checks"]),
                "slices": tuple(Slice.from_dict(item) for item in data["slices"]),
                "change": interval(data["change"]),
                "baseline_gain": interval(data["baseline_gain"]),
            }
        )


@dataclass(frozen=True)
class ScoredHoldout:
    """What the gate judges of one holdout: its labels, its slices' values and every
    model's churn probabilities, scored once for the gate and the evaluation's plots."""

    labels: np.ndarray
    slices: dict[str, np.ndarray]
    challenger: np.ndarray
    champion: np.ndarray | None
    baselines: dict[str, np.ndarray]


def score_holdout(
    champion: Scorer | None,
    challenger: Scorer,
    holdout: pd.DataFrame,
    slice_columns: tuple[str, ...],
    baselines: Mapping[str, Scorer] | None = None,
) -> ScoredHoldout:
    """The holdout's labels and slices, checked before any model scores it, and the scores."""
    labels = binary_labels(holdout, "holdout")
    slices = {column: slice_values(holdout, column) for column in slice_columns}
    return ScoredHoldout(
        labels=labels,
        slices=slices,
        challenger=score(challenger, holdout, "challenger"),
        champion=None if champion is None else score(champion, holdout, "champion"),
        baselines={key: score(model, holdout, key) for key, model in (baselines or {}).items()},
    )


def evaluate(
    champion: Scorer | None,
    challenger: Scorer,
    holdout: pd.DataFrame,
    gate: GateConfig,
    baselines: Mapping[str, Scorer] | None = None,
) -> Decision:
    """Score every model on ``holdout`` and apply every check of ``gate``."""
    return judge(score_holdout(champion, challenger, holdout, gate.slice_columns, baselines), gate)


def judge(scored: ScoredHoldout, gate: GateConfig) -> Decision:
    """Apply every check of ``gate`` to a holdout's labels, slices and models' scores."""
    labels, challenger_scores, champion_scores = scored.labels, scored.challenger, scored.champion
    baseline_scores = scored.baselines
    challenger_metrics = classification_metrics(labels, challenger_scores)
    champion_metrics = None
    if champion_scores is not None:
        champion_metrics = classification_metrics(labels, champion_scores)

    checks = [_size_check(labels, gate), _value_check(labels, challenger_scores, gate)]
    change, comparison, check = _champion_check(labels, challenger_scores, champion_scores, gate)
    checks.append(check)
    best, gain, check = _baseline_check(labels, challenger_scores, baseline_scores, gate)
    checks.append(check)
    judgement = judge_slices(scored.slices, labels, challenger_scores, champion_scores, gate)
    checks += [_as_check(item) for item in judgement.checks]
    return Decision(
        blessed=not any(check.status == FAILED for check in checks),
        comparison=comparison,
        checks=tuple(checks),
        slices=judgement.slices,
        challenger_metrics=challenger_metrics,
        champion_metrics=champion_metrics,
        baseline_metrics={
            key: classification_metrics(labels, values) for key, values in baseline_scores.items()
        },
        change=change,
        best_baseline=best,
        baseline_gain=gain,
    )


def _size_check(labels: np.ndarray, gate: GateConfig) -> Check:
    """The holdout holds enough of each class for its intervals to mean something."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    enough = positives >= gate.min_holdout_positives and negatives >= gate.min_holdout_negatives
    message = (
        f"holdout: {positives} positives, {negatives} negatives (needs "
        f"{gate.min_holdout_positives} and {gate.min_holdout_negatives})"
    )
    if not enough:
        message += ": too few to judge; widen holdout_days"
    return Check("holdout_size", PASSED if enough else FAILED, positives, None, message)


def _value_check(labels: np.ndarray, scores: np.ndarray, gate: GateConfig) -> Check:
    """The challenger is good enough on its own: its whole interval reaches the minimum."""
    auc = auc_interval(labels, scores, gate.confidence)
    passed = auc.low >= gate.min_roc_auc
    relation = ">=" if passed else "<"
    message = (
        f"challenger ROC AUC {auc.describe()}: lower bound {relation} minimum "
        f"{gate.min_roc_auc:.4f}"
    )
    status = PASSED if passed else FAILED
    return Check("min_roc_auc", status, auc.estimate, gate.min_roc_auc, message, _bounds(auc))


def _champion_check(
    labels: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray | None,
    gate: GateConfig,
) -> tuple[Interval | None, str, Check]:
    """Non-inferiority: the change's lower bound must stay above minus the margin."""
    name, margin = "noninferiority", gate.noninferiority_margin
    if champion is None:
        return None, BOOTSTRAP, Check(name, SKIPPED, None, margin, "no champion yet (bootstrap)")
    change = auc_difference(labels, challenger, champion, gate.confidence)
    comparison = _comparison(change, gate)
    message = f"ROC AUC change vs champion {change.describe()}: {comparison}"
    if margin is None:
        return change, comparison, Check(name, SKIPPED, change.estimate, None, message)
    passed = change.low >= -margin
    message += f" (lower bound {'>=' if passed else '<'} -{margin:.4f})"
    status = PASSED if passed else FAILED
    return (
        change,
        comparison,
        Check(name, status, change.estimate, -margin, message, _bounds(change)),
    )


def _comparison(change: Interval, gate: GateConfig) -> str:
    if change.low > gate.superiority_margin:
        return SUPERIOR
    margin = gate.noninferiority_margin
    return INFERIOR if margin is not None and change.low < -margin else NON_INFERIOR


def _baseline_check(
    labels: np.ndarray,
    challenger: np.ndarray,
    baselines: Mapping[str, np.ndarray],
    gate: GateConfig,
) -> tuple[str | None, Interval | None, Check]:
    """The challenger must beat the best simple model: the gain's lower bound above the minimum."""
    name, minimum = "beats_baselines", gate.min_gain_over_baseline
    if not baselines:
        return None, None, Check(name, SKIPPED, None, minimum, "no baseline was fitted")
    aucs = {
        key: auc_interval(labels, scores, gate.confidence).estimate
        for key, scores in baselines.items()
    }
    best = max(aucs, key=aucs.__getitem__)
    gain = auc_difference(labels, challenger, baselines[best], gate.confidence)
    message = f"ROC AUC gain over {best} (AUC {aucs[best]:.4f}) {gain.describe()}"
    if minimum is None:
        return best, gain, Check(name, SKIPPED, gain.estimate, None, message)
    passed = gain.low > minimum
    message += f": lower bound {'>' if passed else '<='} {minimum:.4f}"
    status = PASSED if passed else FAILED
    return best, gain, Check(name, status, gain.estimate, minimum, message, _bounds(gain))


def _as_check(item: SliceJudgement) -> Check:
    bounds = None if item.interval is None else _bounds(item.interval)
    observed = None if item.interval is None else item.interval.estimate
    return Check(item.name, item.status, observed, item.threshold, item.message, bounds)


def _bounds(interval: Interval) -> tuple[float, float]:
    return (interval.low, interval.high)


def _tag_safe(name: str) -> str:
    """MLflow tag keys allow word characters, ``. - : /`` and spaces."""
    return re.sub(r"[^\w.\-:/ ]", "_", name)
