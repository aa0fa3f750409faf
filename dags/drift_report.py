"""
### drift_report: is the champion still looking at the world it was trained on?

Daily, after `customer_data` has published the day. Compares the day with the sample of
the champion's holdout kept as its reference, using effect sizes (PSI, Wasserstein,
Jensen-Shannon) on all rows, and saves an Evidently report to
`reports/drift/dt=<day>/` (open it with the task's **Report** link, or *Browse → Drift
reports*). Current data is the model server's prediction log of the day when there is
one, else the day's features scored offline; the report says which.

It also reports prediction drift (the score distribution), the champion's real
performance on the day whose labels matured today (concept drift), and the age of its
training data.

**Triggering retraining**: `emit_churn_drift` emits the `churn_drift` asset, which starts
`continuous_training`, only when the verdict is drift *and* no training run is queued or
running, the cooldown after the last training has passed, and the day is newer than the
champion's training data. Otherwise it is skipped, and its log says why. Backfills are
safe: they rewrite the reports of their days and never re-trigger on old data.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from churnloop.orchestration.dag_defaults import (
    CHURN_DRIFT,
    CREDENTIALS_MASKED,
    DECISIONS_LOGGED,
    FAILURES_ALERTED,
    INFRA_RETRIES,
    dag_start_date,
)
from churnloop.settings import get_settings

SETTINGS = get_settings()


@task(multiple_outputs=True)
def check_drift(ds: str | None = None) -> dict:
    """Drift of the day vs the champion's reference; saves the Evidently report and decides
    whether it may trigger retraining (deduplication). Fails, report linked, when served
    features differ from the lake's (training/serving skew)."""
    from churnloop.monitoring import daily_check
    from churnloop.orchestration.task_support import (
        data_errors_fail_fast,
        publish_report_link,
        skip_task,
    )

    context = get_current_context()
    active = context["ti"].get_dr_count(dag_id="continuous_training", states=["queued", "running"])
    day = dt.date.fromisoformat(ds)
    with data_errors_fail_fast():
        report = daily_check.check_drift(get_settings(), day, active, context["run_id"])
    if report is None:
        skip_task("no champion yet: nothing to compare with")
    publish_report_link(report["report_url"])
    with data_errors_fail_fast():
        daily_check.require_no_skew(report)
    return report


@task(multiple_outputs=True, outlets=[CHURN_DRIFT])
def emit_churn_drift(report: dict) -> dict:
    """Emit `churn_drift` unless deduplicated."""
    from churnloop.monitoring.daily_check import churn_drift_event
    from churnloop.orchestration.task_support import skip_task

    if report["suppressed"]:
        skip_task(f"churn_drift not emitted: {report['suppressed']}")
    extra = churn_drift_event(report)
    get_current_context()["outlet_events"][CHURN_DRIFT].extra = extra
    return extra


@dag(
    dag_id="drift_report",
    description="Daily drift check of the champion; emits churn_drift when retraining helps",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=dag_start_date(SETTINGS),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "ml-engineering",
        **INFRA_RETRIES,
        **CREDENTIALS_MASKED,
        **DECISIONS_LOGGED,
        **FAILURES_ALERTED,
        "retry_delay": dt.timedelta(minutes=5),
    },
    tags=["churnloop", "monitoring", "evidently"],
    doc_md=__doc__,
)
def drift_report():
    emit_churn_drift(check_drift())


drift_report()
