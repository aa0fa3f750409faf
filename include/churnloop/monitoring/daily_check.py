"""The daily drift check of the champion, and whether it may trigger retraining.

`check_drift` saves the day's report, which opens with the decision, and returns it as a
JSON-safe dict whose ``suppressed`` says why it must not trigger training (None: it may);
`churn_drift_event` is the ``churn_drift`` asset event's extra for a day that triggers.
Both log what they decide, for the task's main log.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from churnloop import registry, schema
from churnloop.errors import DataError
from churnloop.links import report_url
from churnloop.monitoring.day_measurements import (
    DayMeasurements,
    FeatureDrift,
    measure_day,
)
from churnloop.monitoring.estimated_performance import (
    EstimatedPerformance,
)
from churnloop.monitoring.online_metrics import (
    ServedAuc,
)
from churnloop.monitoring.report import build_report, save_report
from churnloop.monitoring.trend import TREND_PAGE, build_trend, save_day
from churnloop.monitoring.verdict import (
    DriftVerdict,
    PerformanceCheck,
    decide,
)
from churnloop.settings import Settings

log = logging.getLogger(__name__)


class TrainingServingSkew(DataError):
    """Served features differ from the lake's beyond ``skew_max_mismatch_rate``: a serving
    bug, not drift; retrying the check changes nothing."""


@dataclass(frozen=True)
class DayReport:
    """What the drift check of one day found; JSON-safe, for XCom and the Asset's extra.

    ``estimated_performance``: the champion's ROC AUC estimated on the day before its labels
    (`EstimatedPerformance.to_dict`); ``realized_performance``: its ROC AUC on the snapshots
    whose labels arrived today (`PerformanceCheck.to_dict`, None before any matured);
    ``served_performance``: the served ROC AUC per version
    on the day whose labels matured today (`ServedAuc.to_dict`); ``drift_without_harm``: drift
    found but not acted on, the estimate having ruled out a loss; ``suppressed``: why the
    day must not start training now (None: it emits ``churn_drift``); ``decision``: the
    report's first line, saying both.
    """

    day: str
    champion_version: int
    source: str
    current_rows: int
    triggered: bool
    reasons: list[str]
    drifted_columns: list[str]
    scores: dict[str, float | None]
    prediction_psi: float | None
    report: str
    report_url: str
    estimated_performance: dict[str, Any]
    realized_performance: dict[str, Any] | None = None
    served_performance: list[dict[str, Any]] = field(default_factory=list)
    drift_without_harm: list[str] = field(default_factory=list)
    drifted_slices: list[str] = field(default_factory=list)
    serving_inputs: dict[str, Any] = field(default_factory=dict)
    skew: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    suppressed: str | None = None
    decision: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_drift(
    settings: Settings, day: dt.date, active_training_runs: int, airflow_run_id: str | None = None
) -> dict[str, Any] | None:
    """Check ``day`` and decide whether it may trigger training; None: no champion yet.

    Logs the decision, then the report's notes, for the task's main log. The record keeps
    ``airflow_run_id``, so the trend page links each day to the run that checked it.
    """
    report = check_day(settings, day, active_training_runs)
    if report is None:
        return None
    log.info("%s", "\n".join([f"decision: {report.decision}", *report.notes]))
    record = {**report.to_dict(), "airflow_run_id": airflow_run_id}
    save_day(settings, day, record)
    build_trend(settings)
    return record


def churn_drift_event(report: dict[str, Any]) -> dict[str, Any]:
    """The ``churn_drift`` event's extra for a checked day: what training records it consumed,
    with a link to the day's report."""
    extra = {key: report[key] for key in ("day", "reasons", "drifted_columns", "report_url")}
    extra["scores"] = {
        column: round(report["scores"][column], 4) for column in report["drifted_columns"]
    }
    log.info("churn_drift emitted for %s: %s", report["day"], "; ".join(report["reasons"]))
    return extra


def check_day(settings: Settings, day: dt.date, active_training_runs: int = 0) -> DayReport | None:
    """Compare the day with the champion's reference, decide, and save the report; None: no
    champion. ``active_training_runs`` (queued or running) hold a triggered day back."""
    champion = registry.champion_version(settings)
    if champion is None:
        return None
    return _report_day(settings, measure_day(settings, champion, day), active_training_runs)


def _report_day(
    settings: Settings, measured: DayMeasurements, active_training_runs: int
) -> DayReport:
    """Decide on the measurements, save the HTML report with its notes and return the
    JSON-safe record, so that the decision and its evidence are written down together."""
    drift = measured.drift
    verdict = decide(
        drift.result,
        measured.performance,
        measured.staleness,
        measured.important_columns,
        estimate=measured.estimate,
        prediction_drift=measured.prediction_drift,
        slices=drift.slices,
    )
    notes = _notes(settings, measured, verdict)
    record = _record(measured, verdict, notes)
    suppressed = suppression(settings, record, active_training_runs)
    decision = decision_line(record, suppressed)
    relpaths = _save_report(settings, measured.day, drift, decision, notes)
    return replace(
        record,
        report=relpaths["html"],
        report_url=report_url(settings, relpaths["html"]),
        suppressed=suppressed,
        decision=decision,
    )


def _record(measured: DayMeasurements, verdict: DriftVerdict, notes: list[str]) -> DayReport:
    """The day's record before its report is written (``report`` and ``report_url`` empty)."""
    drift = measured.drift
    return DayReport(
        day=measured.day.isoformat(),
        champion_version=measured.champion_version,
        source=measured.source,
        current_rows=len(drift.current),
        triggered=verdict.triggered,
        reasons=verdict.reasons,
        drifted_columns=drift.result.drifted_columns,
        scores={column.column: column.score for column in drift.result.columns},
        prediction_psi=measured.prediction_drift.score,
        report="",
        report_url="",
        estimated_performance=measured.estimate.to_dict(),
        realized_performance=measured.performance.to_dict() if measured.performance else None,
        served_performance=[auc.to_dict() for auc in measured.served],
        drift_without_harm=verdict.drift_without_harm,
        drifted_slices=[item.name for item in drift.slices.drifted_slices],
        serving_inputs=measured.serving_inputs,
        skew=measured.skew,
        notes=notes,
    )


def _notes(settings: Settings, measured: DayMeasurements, verdict: DriftVerdict) -> list[str]:
    """The report's lines, in reading order: what was compared, what was found, the verdict."""
    drift = measured.drift
    return [
        f"champion: {settings.model_name} v{measured.champion_version}",
        f"current data: {measured.source}",
        f"feature drift: {drift.result.summary}",
        drift.note,
        f"slices: {drift.slices.summary}",
        f"prediction drift: {measured.prediction_drift.describe()}",
        *_performance_notes(measured.day, measured.estimate, measured.performance, measured.served),
        f"staleness: {measured.staleness.summary}",
        f"serving inputs: {describe_inputs(measured.serving_inputs)}",
        f"training/serving skew: {measured.skew['reason']}",
        *(
            f"drift without estimated harm, no retraining: {found}"
            for found in verdict.drift_without_harm
        ),
        "verdict: " + ("; ".join(verdict.reasons) if verdict.reasons else "no reason to retrain"),
        f"drift over time: {report_url(settings, TREND_PAGE)}",
    ]


def decision_line(report: DayReport, suppressed: str | None) -> str:
    """Retrain or not, why, and whether ``churn_drift`` is emitted or what holds it back."""
    reasons = "; ".join(report.reasons)
    if report.triggered and suppressed is None:
        return f"retrain: churn_drift emitted ({reasons})"
    if report.triggered:
        return f"retraining warranted ({reasons}), but churn_drift not emitted: {suppressed}"
    if report.drift_without_harm:
        found = "; ".join(report.drift_without_harm)
        return f"no retraining: drift without estimated harm ({found}); churn_drift not emitted"
    return "no retraining: no reason to retrain; churn_drift not emitted"


def _save_report(
    settings: Settings, day: dt.date, drift: FeatureDrift, decision: str, notes: list[str]
) -> dict[str, str]:
    report = build_report(
        drift.reference,
        drift.current,
        drift.result,
        title=f"Drift report {day}",
        decision=decision,
        notes=notes,
        slices=drift.slices,
    )
    return save_report(settings, day, report)


def _performance_notes(
    day: dt.date,
    estimate: EstimatedPerformance,
    performance: PerformanceCheck | None,
    served: Sequence[ServedAuc],
) -> list[str]:
    """The report's lines on performance: estimated today, realized and served on matured labels."""
    snapshot_day = day - dt.timedelta(days=schema.LABEL_DELAY_DAYS)
    realized = performance.summary if performance else "no labels matured yet"
    served_lines = [auc.describe() for auc in served] or [
        f"no prediction log of {snapshot_day} with matured labels"
    ]
    return [
        f"estimated performance (before the labels): {estimate.summary}",
        f"performance on the labels of {snapshot_day}: {realized}",
        *(f"served performance: {line}" for line in served_lines),
    ]


def describe_inputs(inputs: dict[str, Any]) -> str:
    """One line on the day's served inputs: out-of-contract values and non-finite scores."""
    if not inputs["rows"]:
        return "no prediction log that day"
    problems = [
        f"{feature} {reason} {count}"
        for feature, reasons in inputs["out_of_contract"].items()
        for reason, count in reasons.items()
    ]
    nonfinite = sum(inputs["nonfinite_predictions"].values())
    return (
        f"{inputs['rows_checked']:,} of {inputs['rows']:,} rows checked; out of contract: "
        f"{', '.join(problems) or 'none'}; non-finite predictions: {nonfinite}"
    )


def require_no_skew(report: dict[str, Any]) -> None:
    """Fail the check (after its report is saved) when served features differ from the lake's."""
    if report["skew"].get("failed"):
        raise TrainingServingSkew(f"{report['skew']['reason']}; report: {report['report_url']}")


def suppression(settings: Settings, report: DayReport, active_training_runs: int) -> str | None:
    """Why a triggered day must not start training now, or None when it may."""
    if not report.triggered:
        return (
            "drift without estimated harm" if report.drift_without_harm else "no reason to retrain"
        )
    if active_training_runs:
        return f"{active_training_runs} continuous_training run(s) queued or running"
    day = dt.date.fromisoformat(report.day)
    champion = registry.model_version(settings, report.champion_version)
    trained_until = registry.training_data_end(champion)
    if trained_until and day <= trained_until:
        return f"the champion v{report.champion_version} was trained on data up to {trained_until}"
    last = _last_training_day(settings)
    if last and last <= day < last + dt.timedelta(days=settings.drift_cooldown_days):
        return (
            f"within the {settings.drift_cooldown_days}-day cooldown after the training "
            f"run as of {last}"
        )
    return None


def _last_training_day(settings: Settings) -> dt.date | None:
    """The as-of day of the newest registered version's training run."""
    versions = registry.connect(settings).search_model_versions(f"name='{settings.model_name}'")
    tag = registry.LOGICAL_DATE_TAG
    days = [v.tags[tag] for v in versions if tag in v.tags]
    return dt.date.fromisoformat(max(days)) if days else None
