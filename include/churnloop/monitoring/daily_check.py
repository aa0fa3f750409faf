"""The daily drift check of the champion, and whether it may trigger retraining.

`check_drift` saves the day's report and returns it as a JSON-safe dict whose
``suppressed`` says why it must not trigger training (None: it may); `churn_drift_event`
is the ``churn_drift`` asset event's extra for a day that triggers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from churnloop import registry, schema, storage
from churnloop.features import definition
from churnloop.links import report_url
from churnloop.monitoring.effect_sizes import compute_drift, compute_score_drift
from churnloop.monitoring.report import build_report, save_report
from churnloop.monitoring.verdict import decide, performance_drift, staleness
from churnloop.schema import PREDICTION
from churnloop.serving.prediction_log import read_predictions
from churnloop.settings import Settings
from churnloop.training.challenger import reference_data
from churnloop.training.metrics import score


@dataclass(frozen=True)
class DayReport:
    """What the drift check of one day found; JSON-safe, for XCom and the Asset's extra."""

    day: str
    champion_version: int
    source: str
    current_rows: int
    triggered: bool
    reasons: list[str]
    drifted_columns: list[str]
    scores: dict[str, float]
    prediction_psi: float
    report: str
    report_url: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_drift(
    settings: Settings, day: dt.date, active_training_runs: int
) -> dict[str, Any] | None:
    """Check ``day`` and decide whether it may trigger training; None: no champion yet.

    Prints the report's notes and the trigger decision for the task log.
    """
    report = check_day(settings, day)
    if report is None:
        return None
    suppressed = suppression(settings, report, active_training_runs)
    print("\n".join([*report.notes, f"trigger: {suppressed or 'yes'}"]))
    return {**report.to_dict(), "suppressed": suppressed}


def churn_drift_event(report: dict[str, Any]) -> dict[str, Any]:
    """The ``churn_drift`` event's extra for a checked day: what training records it consumed."""
    extra = {key: report[key] for key in ("day", "reasons", "drifted_columns", "report")}
    extra["scores"] = {
        column: round(report["scores"][column], 4) for column in report["drifted_columns"]
    }
    print(f"churn_drift emitted for {report['day']}: {'; '.join(report['reasons'])}")
    return extra


def check_day(settings: Settings, day: dt.date) -> DayReport | None:
    """Compare the day with the champion's reference and save the report; None: no champion."""
    champion = registry.champion_version(settings)
    if champion is None:
        return None
    version = int(champion.version)
    model = registry.load_model(settings, version)
    reference = reference_data(settings, version)
    names = list(model.feature_names_in_)
    current, source = current_data(settings, day, model)

    result = compute_drift(reference, current, names, categorical_columns=schema.CATEGORICAL)
    prediction = compute_score_drift(reference[PREDICTION], current[PREDICTION], name=PREDICTION)
    performance = _performance(settings, day, model, champion)
    age = staleness(registry.training_data_end(champion), day, settings.drift_max_training_age_days)
    important = [name for name in settings.drift_important_columns if name in names]
    verdict = decide(result, performance, age, important)
    reasons = list(verdict.reasons)
    if prediction.drifted:
        reasons.append(f"prediction drift: {prediction.describe()}")

    notes = [
        f"champion: {settings.model_name} v{version}",
        f"current data: {source}",
        f"prediction drift: {prediction.describe()}",
        "performance: " + (performance.summary if performance else "no labels matured yet"),
        f"staleness: {age.summary}",
        "verdict: " + ("; ".join(reasons) if reasons else "no reason to retrain"),
    ]
    report = build_report(reference, current, result, title=f"Drift report {day}", notes=notes)
    relpaths = save_report(settings, day, report)
    return DayReport(
        day=day.isoformat(),
        champion_version=version,
        source=source,
        current_rows=len(current),
        triggered=bool(reasons),
        reasons=reasons,
        drifted_columns=result.drifted_columns,
        scores={column.column: column.score for column in result.columns},
        prediction_psi=prediction.score,
        report=relpaths["html"],
        report_url=report_url(settings, relpaths["html"]),
        notes=notes,
    )


def current_data(settings: Settings, day: dt.date, model) -> tuple[pd.DataFrame, str]:
    """The day's served requests with their scores, else its features scored offline."""
    try:
        served = read_predictions(settings, day)
        return served, f"prediction log of {day} ({len(served):,} served requests)"
    except storage.PartitionNotFound:
        pass
    day_features = storage.lake(settings).read_table(definition.DATASET, day).to_pandas()
    day_features[PREDICTION] = score(model, day_features, "champion")
    return day_features, f"features of {day} scored offline (no prediction log that day)"


def _performance(settings: Settings, day: dt.date, model, champion):
    """The champion's ROC AUC on the snapshots whose labels arrived on ``day``."""
    lake = storage.lake(settings)
    snapshot_day = day - dt.timedelta(days=schema.LABEL_DELAY_DAYS)
    labels_dataset = schema.validated_dataset(schema.LABELS)
    if day not in lake.partitions(labels_dataset) or snapshot_day not in lake.partitions(
        definition.DATASET
    ):
        return None
    labels = lake.read_table(labels_dataset, day).to_pandas()
    if labels.empty:
        return None
    rows = labels.merge(
        lake.read_table(definition.DATASET, snapshot_day).to_pandas(),
        on=[schema.ENTITY, schema.TIMESTAMP],
        how="inner",
    )
    rows[PREDICTION] = score(model, rows, "champion")
    baseline = registry.connect(settings).get_run(champion.run_id).data.metrics["holdout_roc_auc"]
    max_drop = settings.drift_max_auc_drop
    return performance_drift(rows[[schema.LABEL, PREDICTION]], baseline, max_drop)


def suppression(settings: Settings, report: DayReport, active_training_runs: int) -> str | None:
    """Why a triggered day must not start training now, or None when it may."""
    if not report.triggered:
        return "no reason to retrain"
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
