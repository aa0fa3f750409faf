"""Shared by the training, evaluation, registry and model-card tests: labelled frames from
the simulator, shaped like a Feast training set, and a fast way to an empty MLflow store."""

from __future__ import annotations

import datetime as dt
import functools
import tempfile
from pathlib import Path

import pandas as pd

from churnloop.demo.simulation import generate_labels, generate_snapshots
from churnloop.schema import CATEGORICAL, ENTITY, NUMERIC, TIMESTAMP
from churnloop.settings import Settings
from churnloop.training.challenger import TrainedModel, train_and_register
from churnloop.training.split import split_by_time

FEATURES = [*NUMERIC, *CATEGORICAL]
FEATURE_SERVICE = "churn_model_v1"
FAST_PARAMS = {"n_estimators": 40, "num_leaves": 15, "min_child_samples": 20, "n_jobs": 1}
LINEAGE = {"dag_id": "continuous_training", "run_id": "manual__test", "logical_date": "2026-02-19"}
HOLDOUT_DAYS = 3
RECORDS_GATE = {
    "min_holdout_positives": 30,
    "min_holdout_negatives": 30,
    "min_gain_over_baseline": None,
}
"""Gate overrides for tests of what happens to a decision (records, cards, promotion), whose
small holdouts the default gate would call too few to judge."""


def labelled_days(first_day: dt.date, days: int, customers: int = 600) -> pd.DataFrame:
    """Snapshots of ``days`` consecutive days joined with their (matured) churn labels."""
    frames = []
    for offset in range(days):
        day = first_day + dt.timedelta(days=offset)
        snapshots = generate_snapshots(day, customers).to_pandas()
        labels = generate_labels(day, customers).to_pandas()
        frames.append(snapshots.merge(labels, on=[ENTITY, TIMESTAMP], validate="one_to_one"))
    return pd.concat(frames, ignore_index=True)


@functools.cache
def _empty_mlflow_database() -> bytes:
    """An MLflow SQLite store with its tables created: creating them takes seconds."""
    from churnloop.registry import connect

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        connect(settings).search_experiments()
        return Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///")).read_bytes()


def with_empty_mlflow(settings: Settings) -> Settings:
    """``settings`` after giving its embedded MLflow store a pre-built empty database."""
    database = Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    database.write_bytes(_empty_mlflow_database())
    return settings


def register_challenger(
    settings: Settings, frame: pd.DataFrame, **options
) -> tuple[TrainedModel, pd.DataFrame]:
    """Train, log and register a small challenger on ``frame``; returns it and its holdout.

    ``options`` go to `train_and_register` (``params`` default to `FAST_PARAMS`)."""
    train, holdout = split_by_time(frame, HOLDOUT_DAYS)
    trained = train_and_register(
        settings,
        train,
        holdout,
        feature_names=FEATURES,
        feature_service=FEATURE_SERVICE,
        lineage=LINEAGE,
        **{"params": FAST_PARAMS, **options},
    )
    return trained, holdout
