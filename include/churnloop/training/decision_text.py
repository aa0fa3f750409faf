"""The gate's decision and the features' importance as text tables, for the task log and
the model card."""

from __future__ import annotations

from typing import TYPE_CHECKING

from churnloop.training.metrics import METRICS, format_number

if TYPE_CHECKING:
    from churnloop.training.gate import Decision
    from churnloop.training.importance import Importance

SLICE_HEADER = ["slice", "rows", "positives", "negatives", "AUC [interval]", "change", "judged"]
IMPORTANCE_HEADER = ["feature", "gain", "ROC AUC drop when shuffled [interval]"]


def decision_text(decision: Decision) -> str:
    """Title, the evidence in brief, then metrics, checks and slices as tables."""
    failed = len(decision.failed_checks)
    title = (
        f"Evaluation gate: {decision.verdict.upper()} ({failed} of {len(decision.checks)} "
        f"checks failed); vs champion: {decision.comparison}"
    )
    checks = [
        [c.name, c.status, format_number(c.observed), format_number(c.threshold), c.message]
        for c in decision.checks
    ]
    return "\n\n".join(
        [
            title,
            *evidence_lines(decision),
            text_table(["metric", *metric_columns(decision)], metric_rows(decision)),
            text_table(["check", "status", "observed", "threshold", "message"], checks),
            text_table(SLICE_HEADER, [item.cells() for item in decision.slices]),
        ]
    )


def evidence_lines(decision: Decision) -> list[str]:
    """The change against the champion and the gain over the best baseline, with intervals."""
    lines = []
    if decision.change is not None:
        lines.append(f"ROC AUC change vs champion: {decision.change.describe()}")
    if decision.baseline_gain is not None:
        lines.append(
            f"ROC AUC gain over the best baseline ({decision.best_baseline}): "
            f"{decision.baseline_gain.describe()}"
        )
    return lines


def metric_columns(decision: Decision) -> list[str]:
    return ["challenger", "champion", *decision.baseline_metrics]


def metric_rows(decision: Decision) -> list[list[str]]:
    """Each metric for the challenger, the champion and every baseline, as text cells."""
    champion = decision.champion_metrics or {}
    return [
        [
            name,
            format_number(decision.challenger_metrics.get(name)),
            format_number(champion.get(name)),
            *(format_number(metrics.get(name)) for metrics in decision.baseline_metrics.values()),
        ]
        for name in METRICS
    ]


def importance_text(importance: Importance) -> str:
    """A summary line, then the features that do not earn their place as a table."""
    summary = importance_summary(importance)
    if not importance.unearned:
        return summary
    return summary + "\n\n" + text_table(IMPORTANCE_HEADER, unearned_rows(importance))


def importance_summary(importance: Importance) -> str:
    """How many features do not earn their place, by which rule, measured how."""
    unearned, total = len(importance.unearned), len(importance.features)
    return (
        f"Feature importance (informative: the gate does not use it): {unearned} of {total} "
        "features do not earn their place (zero gain, or a ROC AUC drop when shuffled whose "
        f"{importance.confidence:.0%} interval does not lie above zero; {importance.rows} "
        f"holdout rows, {importance.repeats} shuffles each, seed {importance.seed})"
    )


def unearned_rows(importance: Importance) -> list[list[str]]:
    """Each feature that does not earn its place: name, total gain, drop with interval."""
    return [
        [feature.name, format_number(feature.gain), feature.drop.describe()]
        for feature in importance.unearned
    ]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
