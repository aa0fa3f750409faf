"""What the daily check measures of one day against the champion, before any decision:
drift of its features (whole day and slices) and scores, the performance estimated before
the labels, realized and served performance on the labels that matured, staleness, and the
serving checks (inputs out of contract, training/serving skew).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from churnloop import registry, schema, storage
from churnloop.features import definition
from churnloop.monitoring.effect_sizes import (
    ColumnDrift,
    DriftResult,
    DriftThresholds,
    compute_drift,
    compute_score_drift,
)
from churnloop.monitoring.estimated_performance import (
    EstimatedPerformance,
    estimate_auc,
    estimate_performance,
    reference_calibration,
    shortage,
)
from churnloop.monitoring.history_depth import history_days, judged_at_reference_depth
from churnloop.monitoring.online_metrics import (
    VERSION,
    ServedAuc,
    served_aucs,
    served_with_labels,
)
from churnloop.monitoring.serving_inputs import serving_input_counts
from churnloop.monitoring.skew import training_serving_skew
from churnloop.monitoring.slice_drift import SliceDriftResult, compute_slice_drift
from churnloop.monitoring.verdict import (
    PerformanceCheck,
    StalenessCheck,
    performance_drift,
    staleness,
)
from churnloop.schema import LABEL, PREDICTION
from churnloop.serving.prediction_log import read_predictions
from churnloop.settings import Settings
from churnloop.training.challenger import reference_data
from churnloop.training.metrics import score


@dataclass(frozen=True)
class DayMeasurements:
    """Everything measured of one day against the champion, before any decision: kept apart
    from the verdict and the notes so that what was measured reads in one place."""

    day: dt.date
    champion_version: int
    source: str
    drift: FeatureDrift
    prediction_drift: ColumnDrift
    estimate: EstimatedPerformance
    performance: PerformanceCheck | None
    served: tuple[ServedAuc, ...]
    staleness: StalenessCheck
    important_columns: tuple[str, ...]
    serving_inputs: dict[str, Any]
    skew: dict[str, Any]


def measure_day(settings: Settings, champion, day: dt.date) -> DayMeasurements:
    """Drift, the performance estimate, realized and served performance, staleness and the
    serving checks of ``day``, all against the champion (an MLflow model version)."""
    version = int(champion.version)
    model = registry.load_model(settings, version)
    reference = reference_data(settings, version)
    names = list(model.feature_names_in_)
    current, source, logged = current_data(settings, day, model)
    inputs, skew = _serving_checks(settings, day, current if logged else None)
    thresholds = DriftThresholds.from_settings(settings)
    drift = _feature_drift(settings, reference, current, names, thresholds)
    prediction = compute_score_drift(
        reference[PREDICTION], current[PREDICTION], thresholds, name=PREDICTION
    )
    calibrated = reference_calibration(reference[PREDICTION].to_numpy(), reference[LABEL])
    performance, served = _realized_performance(settings, day, model, version, calibrated)
    estimate = estimate_performance(
        _champion_scores(current, version), reference[LABEL], reference[PREDICTION], settings
    )
    return DayMeasurements(
        day=day,
        champion_version=version,
        source=source,
        drift=drift,
        prediction_drift=prediction,
        estimate=estimate,
        performance=performance,
        served=tuple(served),
        staleness=staleness(
            registry.training_data_end(champion), day, settings.drift_max_training_age_days
        ),
        important_columns=tuple(name for name in settings.drift_important_columns if name in names),
        serving_inputs=inputs,
        skew=skew,
    )


def _serving_checks(
    settings: Settings, day: dt.date, predictions: pd.DataFrame | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The day's prediction log besides drift: inputs outside the data contract, and rows
    whose served features differ from the lake's (``predictions`` None: read the log, if
    there is one)."""
    return (
        serving_input_counts(settings, day, predictions),
        training_serving_skew(settings, day, predictions),
    )


def _realized_performance(
    settings: Settings,
    day: dt.date,
    model,
    version: int,
    calibrated: Callable[[Any], np.ndarray],
) -> tuple[PerformanceCheck | None, list[ServedAuc]]:
    """The champion's ROC AUC on the labels that matured today, and each served version's;
    ``calibrated`` maps scores as the estimate before the labels does."""
    labels = matured_labels(settings, day)
    baseline = holdout_auc(settings, version)
    performance = _performance(settings, day, model, labels, baseline, calibrated)
    return performance, _served_performance(settings, day, labels)


@dataclass(frozen=True)
class FeatureDrift:
    """The model's features compared: both samples, per column and per slice."""

    reference: pd.DataFrame
    current: pd.DataFrame
    result: DriftResult
    slices: SliceDriftResult
    note: str


def _feature_drift(
    settings: Settings,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    names: list[str],
    thresholds: DriftThresholds,
) -> FeatureDrift:
    """Drift of the model's features that the reference saw whole windows of (the lake's
    history starts with its first feature day, or the reference's if earlier).
    Slice drift is reported; only the whole day's columns can trigger retraining."""
    first_day = min(
        [*storage.lake(settings).partitions(definition.DATASET)[:1], *history_days(reference)]
    )
    columns, note = judged_at_reference_depth(reference, names, first_day)
    return FeatureDrift(
        reference,
        current,
        compute_drift(
            reference, current, columns, thresholds, categorical_columns=schema.CATEGORICAL
        ),
        compute_slice_drift(
            reference,
            current,
            columns,
            thresholds=thresholds,
            categorical_columns=schema.CATEGORICAL,
        ),
        note,
    )


def current_data(settings: Settings, day: dt.date, model) -> tuple[pd.DataFrame, str, bool]:
    """The day's served requests with their scores, else its features scored offline; the
    flag says which (True: the prediction log)."""
    try:
        served = read_predictions(settings, day)
        return served, f"prediction log of {day} ({len(served):,} served requests)", True
    except storage.PartitionNotFound:
        pass
    day_features = storage.lake(settings).read_table(definition.DATASET, day).to_pandas()
    day_features[PREDICTION] = score(model, day_features, "champion")
    return day_features, f"features of {day} scored offline (no prediction log that day)", False


def matured_labels(settings: Settings, day: dt.date) -> pd.DataFrame | None:
    """The validated labels that arrived on ``day`` (of the snapshots 30 days earlier)."""
    lake = storage.lake(settings)
    labels_dataset = schema.validated_dataset(schema.LABELS)
    if day not in lake.partitions(labels_dataset):
        return None
    labels = lake.read_table(labels_dataset, day).to_pandas()
    return None if labels.empty else labels


def _performance(
    settings: Settings,
    day: dt.date,
    model,
    labels: pd.DataFrame | None,
    baseline: float | None,
    calibrated: Callable[[Any], np.ndarray],
) -> PerformanceCheck | None:
    """The champion's ROC AUC on the snapshots whose labels arrived on ``day``, beside
    what the estimate before the labels says of the same scores."""
    if baseline is None:
        raise RuntimeError("the champion's training run has no holdout_roc_auc metric")
    lake = storage.lake(settings)
    snapshot_day = day - dt.timedelta(days=schema.LABEL_DELAY_DAYS)
    if labels is None or snapshot_day not in lake.partitions(definition.DATASET):
        return None
    rows = labels.merge(
        lake.read_table(definition.DATASET, snapshot_day).to_pandas(),
        on=[schema.ENTITY, schema.TIMESTAMP],
        how="inner",
    )
    rows[PREDICTION] = score(model, rows, "champion")
    check = performance_drift(rows[[LABEL, PREDICTION]], baseline, settings.drift_max_auc_drop)
    scores = calibrated(rows[PREDICTION].to_numpy())
    if not check.judged or shortage(scores, "the labelled day", settings):
        return check
    estimated = estimate_auc(scores, settings.drift_confidence, settings.drift_estimate_simulations)
    return replace(check, estimated_auc=estimated)


def _served_performance(
    settings: Settings, day: dt.date, labels: pd.DataFrame | None
) -> list[ServedAuc]:
    """The served ROC AUC per version on the day whose labels arrived on ``day``."""
    snapshot_day = day - dt.timedelta(days=schema.LABEL_DELAY_DAYS)
    if labels is None:
        return []
    try:
        predictions = read_predictions(settings, snapshot_day)
    except storage.PartitionNotFound:
        return []
    rows = served_with_labels(predictions, labels, snapshot_day)
    return served_aucs(rows, snapshot_day, lambda version: holdout_auc(settings, version), settings)


def _champion_scores(current: pd.DataFrame, version: int) -> pd.Series:
    """The day's scores of the champion: the log's rows it answered, or every offline score."""
    if VERSION not in current.columns:
        return current[PREDICTION]
    return current.loc[current[VERSION] == version, PREDICTION]


def holdout_auc(settings: Settings, version: int) -> float | None:
    """The holdout ROC AUC a version was registered with (its training run's metric)."""
    run_id = registry.model_version(settings, version).run_id
    return registry.connect(settings).get_run(run_id).data.metrics.get("holdout_roc_auc")
