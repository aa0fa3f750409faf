"""The drift_report DAG run for real (``dag.test()``) after a real continuous_training run."""

from __future__ import annotations

import datetime as dt

import pytest

from churnloop import storage
from churnloop.demo.simulation import Scenario
from tests.dags.dag_support import parsed_dag
from tests.loop_support import DRIFT_ALONE_TRIGGERS, START, publish_days

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

TRAINED_AS_OF = START + dt.timedelta(days=42)  # window: snapshots of Jan 2..Jan 11
DRIFT_START = START + dt.timedelta(days=44)
COVARIATE_DRIFT = Scenario("covariate_drift", drift_start=DRIFT_START, ramp_days=1)


def run(dag, day: dt.date, hour: int = 0, **conf):
    logical = dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)
    result = dag.test(logical_date=logical, run_conf=conf or None)
    return {ti.task_id: ti for ti in result.get_task_instances()}


def test_baseline_is_quiet_drift_triggers_once_then_cooldown(
    airflow_db, settings, served, monkeypatch
):
    monkeypatch.setenv("CHURNLOOP_DRIFT_COOLDOWN_DAYS", "3")
    for name, value in DRIFT_ALONE_TRIGGERS.items():
        monkeypatch.setenv(name, value)
    publish_days(settings, COVARIATE_DRIFT, days=50)
    training, drift = (
        parsed_dag(settings, "continuous_training"),
        parsed_dag(settings, "drift_report"),
    )
    params = {"training_window_days": 10, "holdout_days": 3}
    assert run(training, TRAINED_AS_OF, 3, **params)["deploy_champion"].state == "success"

    quiet = run(drift, DRIFT_START - dt.timedelta(days=1))
    assert quiet["check_drift"].state == "success"
    assert quiet["emit_churn_drift"].state == "skipped", "a baseline day never triggers"
    lake = storage.lake(settings)
    assert lake.exists(f"reports/drift/dt={DRIFT_START - dt.timedelta(days=1)}/report.html")
    assert not quiet["check_drift"].xcom_pull(task_ids="check_drift")["triggered"]

    drifted_day = DRIFT_START + dt.timedelta(days=1)
    drifted = run(drift, drifted_day)
    report = drifted["check_drift"].xcom_pull(task_ids="check_drift")
    assert report["triggered"] and "age" in report["drifted_columns"], report
    assert drifted["emit_churn_drift"].state == "success", "drift past the cooldown triggers"
    extra = drifted["emit_churn_drift"].xcom_pull(task_ids="emit_churn_drift")
    assert extra["day"] == drifted_day.isoformat() and "age" in extra["drifted_columns"]
    assert extra["report_url"].endswith(f"/churnloop/reports/drift/dt%3D{drifted_day}/report.html")

    # The scheduler now starts continuous_training; after it, drift is in the cooldown.
    retrained_as_of = drifted_day + dt.timedelta(days=1)
    run(training, retrained_as_of, 3, **params)
    suppressed = run(drift, retrained_as_of + dt.timedelta(days=1))
    assert suppressed["check_drift"].xcom_pull(task_ids="check_drift")["triggered"]
    assert suppressed["emit_churn_drift"].state == "skipped", "suppressed during the cooldown"


def test_schedule_listens_to_the_drift_asset(settings):
    from airflow.sdk import Asset

    training = parsed_dag(settings, "continuous_training")
    drift = parsed_dag(settings, "drift_report")
    emit = drift.get_task("emit_churn_drift")
    assert Asset("churn_drift") in emit.outlets
    assert training.timetable.asset_condition == Asset("churn_drift")
    assert training.timetable.timetable.expression == "0 3 * * 1", "weekly as well"
    assert training.max_active_runs == 1
