"""The server's Prometheus metrics of scores: a NaN or infinite score is counted, not observed."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
from prometheus_client import generate_latest

from churnloop.serving.metrics import ServingMetrics
from tests.churnloop.serving_support import metric


def test_nonfinite_scores_are_counted_by_version_and_kept_out_of_the_histogram():
    metrics = ServingMetrics()
    metrics.record_load("champion", 7, None)
    metrics.record_load("challenger", 8, None)

    metrics.record_scores(7, "champion", np.array([0.25, math.nan, 0.5, math.inf, -math.inf]))
    metrics.record_scores(8, "shadow", np.array([0.125, 0.75]))

    text = generate_latest(metrics.registry).decode()
    nonfinite = "churnloop_nonfinite_predictions_total"
    assert metric(text, nonfinite, model_version="7") == 3
    assert metric(text, nonfinite, model_version="8") == 0, "exported at 0 once loaded"
    champion = {"model_version": "7", "variant": "champion"}
    assert metric(text, "churnloop_prediction_score_count", **champion) == 2
    assert metric(text, "churnloop_prediction_score_sum", **champion) == 0.75


def test_the_champions_training_data_end_and_the_staleness_limit_are_exported():
    """What the ChurnloopChampionTrainingDataStale rule compares (include/observability)."""
    metrics = ServingMetrics(max_training_age_days=60)
    metrics.record_load("champion", 7, None, trained_until=dt.date(2026, 3, 4))
    metrics.record_load("champion", 8, "corrupt artifact", trained_until=None)

    text = generate_latest(metrics.registry).decode()
    end = dt.datetime(2026, 3, 5, tzinfo=dt.UTC).timestamp()
    stamp = "churnloop_model_training_data_end_timestamp_seconds"
    assert metric(text, stamp, alias="champion") == end, "a failed load keeps the served one's"
    assert metric(text, "churnloop_model_max_training_age_seconds") == 60 * 86_400


def test_an_alias_no_longer_served_reads_zero_and_leaves_no_age_behind():
    """A deleted @candidate must not keep its version on the dashboard, nor feed the
    staleness rule a model that serves nobody."""
    metrics = ServingMetrics(max_training_age_days=60)
    metrics.record_load("candidate", 9, None, trained_until=dt.date(2026, 3, 4))

    metrics.record_unload("candidate")
    metrics.record_unload("candidate")  # twice is no error

    text = generate_latest(metrics.registry).decode()
    assert metric(text, "churnloop_model_version", alias="candidate") == 0
    stamp = "churnloop_model_training_data_end_timestamp_seconds"
    assert metric(text, stamp, alias="candidate") is None
