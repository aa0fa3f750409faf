"""The server's Prometheus metrics: a NaN or infinite score is counted, not observed; shadow
agreement; the training-data end and its unloading; the server's start; and, with several
workers, their values combined (prometheus_client's multiprocess files)."""

from __future__ import annotations

import datetime as dt
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from churnloop.serving.metrics import SERVER_START_VARIABLE, ServingMetrics, WorkersMetrics
from tests.churnloop.serving_support import metric

START = "churnloop_server_start_time_seconds"
STAMP = "churnloop_model_training_data_end_timestamp_seconds"


def test_nonfinite_scores_are_counted_by_version_and_variant_and_kept_out_of_the_histogram():
    metrics = ServingMetrics()
    metrics.record_load("champion", 7, None)
    metrics.record_load("challenger", 8, None)

    metrics.record_scores(7, "champion", np.array([0.25, math.nan, 0.5, math.inf, -math.inf]))
    metrics.record_scores(8, "shadow", np.array([0.125, 0.75]))

    text = generate_latest(metrics.registry).decode()
    nonfinite = "churnloop_nonfinite_predictions_total"
    assert metric(text, nonfinite, model_version="7", variant="champion") == 3
    assert metric(text, nonfinite, model_version="8", variant="shadow") == 0, "0 once loaded"
    champion = {"model_version": "7", "variant": "champion"}
    assert metric(text, "churnloop_prediction_score_count", **champion) == 2
    assert metric(text, "churnloop_prediction_score_sum", **champion) == 0.75


def test_shadow_agreement_counts_label_pairs_whose_scores_are_both_finite():
    metrics = ServingMetrics()
    served = np.array([0.2, 0.7, 0.6, math.nan, 0.9, 0.5])
    shadow = np.array([0.3, 0.4, 0.9, 0.1, math.inf, 0.49])

    metrics.record_agreement((7, "candidate"), 6, served, shadow, threshold=0.5)

    text = generate_latest(metrics.registry).decode()
    pair = {"model_version": "7", "variant": "candidate", "shadow_version": "6"}
    agreement = "churnloop_shadow_agreement_total"
    assert metric(text, agreement, **pair, agreement="agree") == 2
    assert metric(text, agreement, **pair, agreement="disagree") == 2, "0.5 is a 1, 0.49 a 0"


def test_the_champions_training_data_end_and_the_staleness_limit_are_exported():
    """What the ChurnloopChampionTrainingDataStale rule compares (include/observability)."""
    metrics = ServingMetrics(max_training_age_days=60)
    metrics.record_load("champion", 7, None, trained_until=dt.date(2026, 3, 4))
    metrics.record_load("champion", 8, "corrupt artifact", trained_until=None)

    text = generate_latest(metrics.registry).decode()
    end = dt.datetime(2026, 3, 5, tzinfo=dt.UTC).timestamp()
    assert metric(text, STAMP, alias="champion") == end, "a failed load keeps the served one's"
    assert metric(text, "churnloop_model_max_training_age_seconds") == 60 * 86_400


def test_an_alias_no_longer_served_reads_zero_and_leaves_no_age_behind():
    """A deleted @candidate must not keep its version on the dashboard, nor feed the
    staleness rule a model that serves nobody: its training-data end is NaN, whose age
    ``time() - x > limit`` never finds too old."""
    metrics = ServingMetrics(max_training_age_days=60)
    metrics.record_load("candidate", 9, None, trained_until=dt.date(2026, 3, 4))

    metrics.record_unload("candidate")
    metrics.record_unload("candidate")  # twice is no error

    text = generate_latest(metrics.registry).decode()
    assert metric(text, "churnloop_model_version", alias="candidate") == 0
    assert math.isnan(metric(text, STAMP, alias="candidate"))


def test_the_start_time_is_the_runs_when_churnloop_serve_noted_it_else_now(monkeypatch):
    before = time.time()
    alone = generate_latest(ServingMetrics().registry).decode()
    assert before <= metric(alone, START) <= time.time()

    monkeypatch.setenv(SERVER_START_VARIABLE, "1775000000.25")
    worker = generate_latest(ServingMetrics().registry).decode()
    assert metric(worker, START) == 1775000000.25


def record_in_a_worker(folder: Path, *calls: str) -> None:
    """Run ``calls`` on ``metrics``, a `ServingMetrics` in a process of its own that keeps its
    values in ``folder``, as each worker of ``churnloop serve`` does."""
    script = "\n".join(
        ["from churnloop.serving.metrics import ServingMetrics", "metrics = ServingMetrics(60)"]
        + list(calls)
    )
    environment = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        SERVER_START_VARIABLE: "1775000000.25",
    }
    subprocess.run([sys.executable, "-c", script], env=environment, check=True, timeout=120)


def test_several_workers_values_add_up_and_gauges_show_one_value_each(tmp_path):
    """Counters are summed; a rolled-back version shows as the most recent (not the
    highest); an unloaded alias reads 0 and NaN (multiprocess mode removes no series);
    the limit and the start time are one value, without a ``pid`` label; a library's
    metrics in the same files (Feast's) are left out."""
    load = "metrics.record_load('{}', {}, None, __import__('datetime').date(2026, 3, 4))"
    served = "metrics.requests.labels('/predict', '200', '{}', 'champion').inc()"
    record_in_a_worker(tmp_path, load.format("champion", 5), load.format("candidate", 6))
    record_in_a_worker(
        tmp_path,
        load.format("champion", 4),
        "metrics.record_unload('candidate')",
        served.format(4),
        served.format(4),
    )
    record_in_a_worker(
        tmp_path,
        served.format(4),
        "__import__('prometheus_client').Counter('feast_requests', 'Feast requests').inc()",
    )

    registry = CollectorRegistry()
    registry.register(WorkersMetrics(str(tmp_path)))
    text = generate_latest(registry).decode()

    requests = "churnloop_requests_total"
    ok = {"endpoint": "/predict", "status": "200", "model_version": "4", "variant": "champion"}
    assert metric(text, requests, **ok) == 3
    assert metric(text, "churnloop_model_version", alias="champion") == 4
    assert metric(text, "churnloop_model_version", alias="candidate") == 0
    assert math.isnan(metric(text, STAMP, alias="candidate"))
    assert metric(text, "churnloop_model_max_training_age_seconds") == 60 * 86_400
    assert metric(text, START) == 1775000000.25
    assert text.count(f"\n{START}") == 1 and "pid=" not in text
    assert "feast" not in text


def test_a_worker_file_still_being_created_is_left_out_of_the_sum(tmp_path):
    """A worker creating its value file leaves it empty for a moment; prometheus_client's
    reader fails on an empty file, so ``GET /metrics`` would answer 500 then."""
    (tmp_path / "counter_4242.db").touch()

    assert list(WorkersMetrics(str(tmp_path)).collect()) == []
