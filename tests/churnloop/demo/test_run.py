"""``make demo``'s story, checked without Airflow where its outcome is known in advance."""

import datetime as dt
import functools

import pandas as pd

from churnloop import schema
from churnloop.demo.run import DemoPlan, without_readings
from churnloop.demo.simulation import generate_snapshots
from churnloop.features import definition
from churnloop.monitoring.effect_sizes import compute_drift
from churnloop.monitoring.history_depth import judged_at_reference_depth
from churnloop.training.plan import plan_training_run

PLAN = DemoPlan(last=dt.date(2026, 11, 30))
FEATURES = list(definition.FEATURE_SCHEMA.names)
CATEGORICAL = [*schema.CATEGORICAL, "tenure_bucket"]


@functools.cache
def snapshots_until(index: int) -> pd.DataFrame:
    """The demo's clean snapshots of days 0..``index``, drift scenario included."""
    days = [PLAN.day(offset) for offset in range(index + 1)]
    tables = [
        generate_snapshots(day, PLAN.customers, PLAN.seed, PLAN.scenario()).to_pandas()
        for day in days
    ]
    return pd.concat(tables, ignore_index=True)


def features_of(index: int) -> pd.DataFrame:
    return definition.build_features(snapshots_until(PLAN.days - 1), PLAN.day(index))


def bootstrap_reference(settings) -> pd.DataFrame:
    """The first champion's holdout days, as the demo's first training run splits them."""
    settings = settings.model_copy(update={"training_window_days": PLAN.training_window_days})
    run = plan_training_run(
        settings, as_of=PLAN.day(PLAN.training_day), params={}, trigger="manual"
    )
    first = (run.window_end - PLAN.start).days - run.holdout_days + 1
    return pd.concat([features_of(first + offset) for offset in range(run.holdout_days)])


def test_no_column_drifts_before_the_simulated_drift_and_age_does_after(settings):
    """What ``make demo`` must show: the days the drift report checks before ages drift
    are stable on every judged column (a young lake drifted by construction before history
    depth was accounted for); once the drift has ramped up, age drifts."""
    reference = bootstrap_reference(settings)
    judged, _ = judged_at_reference_depth(reference, FEATURES, PLAN.start)

    def drifted(index: int) -> list[str]:
        current = features_of(index)
        return compute_drift(
            reference, current, judged, categorical_columns=CATEGORICAL
        ).drifted_columns

    before = range(PLAN.training_day + 1, PLAN.drift_day)
    assert {PLAN.day(index): drifted(index) for index in before} == {
        PLAN.day(index): [] for index in before
    }
    assert "age" in drifted(PLAN.drift_day + 3)


def test_the_summary_keeps_each_verdict_of_a_step_without_its_numbers():
    step = (
        "v2  2026-12-04 02:35  canary-step: step 1/3 (10% of customers) passed after 73 s: "
        "448 candidate and 3917 champion requests; error_rate pass: change in 5xx rate "
        "[-0.0026, +0.0225], lower bound within +0.01; score_drift pass: candidate's traffic "
        "PSI 0.048 (at least 0.000); champion's traffic PSI 0.083 (at least 0.043): lower "
        "bounds within 0.2; agreement wait: waiting for 100 shadow-scored instances"
    )
    assert without_readings(step) == (
        "v2  2026-12-04 02:35  canary-step: step 1/3 (10% of customers) passed after 73 s: "
        "448 candidate and 3917 champion requests; error_rate pass; score_drift pass; "
        "agreement wait"
    )
    rollback = "v2  02:35  canary-rollback: step 1/3: score_drift tripped: scores shifted: PSI 1.2"
    assert without_readings(rollback) == rollback, "a rollback keeps the numbers that tripped"
