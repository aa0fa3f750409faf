import datetime as dt
import logging

import pytest

from churnloop.errors import DataError
from churnloop.training.plan import TrainingPlan, drift_events_from, plan_run, plan_training_run

AS_OF = dt.date(2026, 3, 2)


def test_window_ends_where_labels_have_matured(settings):
    plan = plan_training_run(
        settings, as_of=AS_OF, params={"training_window_days": 30}, trigger="scheduled"
    )
    # customer_data has processed up to AS_OF - 1, which brought labels of AS_OF - 31
    assert plan.window_end == dt.date(2026, 1, 30)
    assert plan.window_start == dt.date(2026, 1, 1)
    assert plan.holdout_days == settings.holdout_days


def test_params_override_the_gate_and_are_recorded(settings):
    params = {"min_roc_auc": 0.7, "noninferiority_margin": None, "dry_run": True}
    plan = plan_training_run(settings, as_of=AS_OF, params=params, trigger="manual")
    assert plan.gate_overrides == {"min_roc_auc": 0.7, "noninferiority_margin": None}
    assert plan.dry_run and plan.force_reason is None
    assert "dry run" in plan.describe()


def test_a_reason_forces_the_promotion_and_a_blank_one_is_refused(settings):
    with pytest.raises(DataError, match="force_promote_reason is blank"):
        plan_training_run(
            settings, as_of=AS_OF, params={"force_promote_reason": " "}, trigger="manual"
        )
    plan = plan_training_run(
        settings,
        as_of=AS_OF,
        trigger="manual",
        params={"force_promote_reason": " hotfix for region east "},
    )
    assert plan.force_reason == "hotfix for region east"
    unforced = plan_training_run(
        settings, as_of=AS_OF, params={"force_promote_reason": None}, trigger="manual"
    )
    assert unforced.force_reason is None


def test_holdout_must_leave_days_to_train_on(settings):
    with pytest.raises(DataError, match="holdout_days .7. must be smaller"):
        plan_training_run(
            settings,
            as_of=AS_OF,
            trigger="manual",
            params={"training_window_days": 7, "holdout_days": 7},
        )


def test_plan_survives_xcom_with_its_drift_events(settings):
    events = [{"timestamp": "2026-03-01T02:00:00+00:00", "day": "2026-02-28", "columns": ["age"]}]
    plan = plan_training_run(settings, as_of=AS_OF, params={}, trigger="drift", drift_events=events)
    assert TrainingPlan.from_dict(plan.to_dict()) == plan
    assert "1 drift event(s)" in plan.describe()


def test_consumed_drift_events_are_kept_with_their_extra():
    """Airflow merges queued churn_drift events into one run: every one is recorded."""
    from types import SimpleNamespace

    def event(day: str, hour: int) -> SimpleNamespace:
        stamp = dt.datetime(2026, 3, 1, hour, tzinfo=dt.UTC)
        return SimpleNamespace(timestamp=stamp, extra={"day": day, "reasons": ["age drifted"]})

    consumed = drift_events_from({"churn_drift": [event("2026-02-27", 2), event("2026-02-28", 3)]})
    assert [item["day"] for item in consumed] == ["2026-02-27", "2026-02-28"]
    assert consumed[0]["timestamp"] == "2026-03-01T02:00:00+00:00"
    assert drift_events_from(None) == []


def test_a_drift_triggered_run_trains_as_of_the_day_after_the_drift_it_reacts_to():
    """A backfilled or simulated drift day must not make a run train as of the wall clock."""
    from churnloop.training.plan import as_of_day

    now = dt.datetime(2026, 11, 24, 9, tzinfo=dt.UTC)
    events = [{"day": "2026-02-27"}, {"day": "2026-02-28"}, {"timestamp": "no day"}]
    assert as_of_day(None, now, events) == dt.date(2026, 3, 1)
    assert as_of_day(dt.datetime(2026, 3, 9, 3, tzinfo=dt.UTC), now, events) == dt.date(2026, 3, 9)
    assert as_of_day(None, now, []) == now.date()


def test_plan_run_reads_the_runs_facts_and_returns_the_xcom_dict(settings, caplog):
    """The ``plan`` task's work: drift events make a drift run as of the day after."""
    from types import SimpleNamespace

    stamp = dt.datetime(2026, 3, 1, 2, tzinfo=dt.UTC)
    drift = SimpleNamespace(timestamp=stamp, extra={"day": "2026-02-28"})
    now = dt.datetime(2026, 11, 24, 9, tzinfo=dt.UTC)

    caplog.set_level(logging.INFO, logger="churnloop")
    planned = plan_run(
        settings,
        params={"dry_run": True},
        logical_date=None,
        run_after=now,
        run_type="asset_triggered",
        asset_events={"churn_drift": [drift]},
    )
    scheduled = plan_run(
        settings,
        params={},
        logical_date=dt.datetime(2026, 3, 9, 3, tzinfo=dt.UTC),
        run_after=now,
        run_type="scheduled",
        asset_events=None,
    )

    plan = TrainingPlan.from_dict(planned)
    assert (plan.as_of, plan.trigger, plan.dry_run) == (AS_OF - dt.timedelta(days=1), "drift", True)
    assert plan.drift_events == [{"timestamp": stamp.isoformat(), "day": "2026-02-28"}]
    assert TrainingPlan.from_dict(scheduled).trigger == "scheduled"
    assert plan.describe() in caplog.messages


@pytest.mark.parametrize(
    "enum_module", ["airflow.sdk.api.datamodels._generated", "airflow.utils.types"]
)
def test_the_trigger_is_the_airflow_run_types_value(settings, enum_module):
    """A task's context holds the Task SDK's ``DagRunType``, whose ``str()`` is its name."""
    import importlib

    run_type = importlib.import_module(enum_module).DagRunType.SCHEDULED

    planned = plan_run(
        settings,
        params={},
        logical_date=dt.datetime(2026, 10, 26, 3, tzinfo=dt.UTC),
        run_after=dt.datetime(2026, 10, 26, 3, tzinfo=dt.UTC),
        run_type=run_type,
        asset_events=None,
    )

    plan = TrainingPlan.from_dict(planned)
    assert plan.trigger == "scheduled"
    assert plan.run_name() == "train as of 2026-10-26 (scheduled)"


def test_why_a_run_trains_names_trigger_day_window_airflow_run_and_each_drift_event(settings):
    events = [
        {
            "timestamp": "2026-03-01T02:00:00+00:00",
            "day": "2026-02-28",
            "reasons": ["age drifted (PSI 0.31 > 0.2)", "estimated AUC drop <0.03>"],
            "report_url": "http://127.0.0.1:8080/churnloop/reports/drift/2026-02-28.html",
        },
        {"timestamp": "2026-03-01T03:00:00+00:00"},
        {"day": "<b>2026-03-01</b>", "reasons": ["x"], "report_url": "javascript:alert(1)"},
    ]
    params = {"training_window_days": 30, "holdout_days": 7}
    drift = plan_training_run(
        settings, as_of=AS_OF, params=params, trigger="drift", drift_events=events
    )
    manual = plan_training_run(settings, as_of=AS_OF, params=params, trigger="manual")

    why = drift.why("asset_triggered__2026-03-01T02:00:00")

    assert drift.run_name() == "train as of 2026-03-02 (drift)"
    assert why.startswith("Trained as of 2026-03-02 by a **drift** run of `continuous_training`")
    assert "(Airflow run `asset_triggered__2026-03-01T02:00:00`)" in why
    assert "snapshots 2026-01-01 to 2026-01-30, the last 7 days held out" in why
    assert "Drift events consumed (3):" in why
    assert "- &lt;b&gt;2026-03-01&lt;/b&gt;: x" in why, "an extra is posted by API users"
    assert "javascript" not in why
    assert (
        "- 2026-02-28: age drifted (PSI 0.31 &gt; 0.2); estimated AUC drop &lt;0.03&gt; "
        "([drift report](http://127.0.0.1:8080/churnloop/reports/drift/2026-02-28.html))"
    ) in why
    assert "- 2026-03-01T03:00:00+00:00: no reason recorded" in why
    assert manual.why(None) == (
        "Trained as of 2026-03-02 by a **manual** run of `continuous_training`: "
        "snapshots 2026-01-01 to 2026-01-30, the last 7 days held out."
    )
