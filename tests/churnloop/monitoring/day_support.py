"""Shared by the tests of a checked day (measured, then decided): the day's calendar and the
champion's served predictions as the model server logs them."""

import datetime as dt

import pandas as pd

from churnloop import schema
from churnloop.demo.simulation import Scenario
from churnloop.serving.prediction_log import FEATURES_KEY, PredictionLog
from churnloop.training.metrics import score
from tests.churnloop.training_support import FEATURES

START = dt.date(2026, 1, 1)
CUSTOMERS = 1_000
DAY = START + dt.timedelta(days=45)  # the champion's data ends on Jan 10: 36 days old
SNAPSHOT_DAY = DAY - dt.timedelta(days=schema.LABEL_DELAY_DAYS)
AGEING = Scenario("covariate_drift", drift_start=DAY - dt.timedelta(days=3), ramp_days=1)
"""The simulator's covariate drift (ages towards 65): it costs less ROC AUC than the
estimate's threshold (docs/staleness.md, docs/drift.md)."""


def log_served(settings, model, version: int, day: dt.date, features: pd.DataFrame) -> None:
    """The champion served each row of ``features`` at noon of ``day``, as the server logs it."""
    scores = score(model, features)
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    log = PredictionLog(settings, flush_rows=10**6, flush_seconds=60, max_pending_rows=10**6)
    log.append(
        {
            schema.TIMESTAMP: noon,
            schema.ENTITY: int(row[schema.ENTITY]),
            "model_name": settings.model_name,
            "model_version": version,
            schema.PREDICTION: float(probability),
            FEATURES_KEY: {name: row[name] for name in FEATURES},
        }
        for (_, row), probability in zip(features.iterrows(), scores, strict=True)
    )
    assert log.flush(), "the day's prediction log was written"
