"""Deadline Alerts: on-call hears of a day not done in time, or a training run that overruns.

Two promises, each an Airflow Deadline Alert (evaluated by the scheduler, its callback run by
the triggerer, so a missed deadline alerts even when no task is running or failing):

- a *scheduled* day of ``customer_data`` finishes within ``customer_data_deadline`` after its
  data interval ends. Backfills, manual runs and a catch-up of days older than one interval
  (a first deploy, a scheduler back after an outage) are of past days: judged by their day
  they would all be late at once, so `ScheduledDayEnd` gives them no deadline;
- a ``continuous_training`` run finishes within ``training_run_budget`` of being queued.

A run that succeeds in time has its deadline removed by Airflow; a missed one is delivered
through the same channels as failure alerts, unless the run has already failed (its failed
task alerted: a second message would say nothing new).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference
from airflow.sdk.definitions.deadline import BaseDeadlineReference, deadline_reference

from churnloop.links import airflow_run_path
from churnloop.orchestration.alerts import AlertMessage, deliver
from churnloop.redaction import masker
from churnloop.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


@deadline_reference
class ScheduledDayEnd(BaseDeadlineReference):
    """The end of a scheduled run's data interval, if the run is created within one interval
    of it; no deadline for any other run."""

    required_kwargs = {"dag_id", "run_id"}

    def _evaluate_with(self, *, session: Session, dag_id: str, run_id: str) -> dt.datetime | None:
        from airflow.models import DagRun
        from airflow.utils.types import DagRunType
        from sqlalchemy import select

        query = select(DagRun.run_type, DagRun.data_interval_start, DagRun.data_interval_end).where(
            DagRun.dag_id == dag_id, DagRun.run_id == run_id
        )
        row = session.execute(query).one_or_none()
        if row is None or row.run_type != DagRunType.SCHEDULED:
            return None
        interval = row.data_interval_end - row.data_interval_start
        caught_up = row.data_interval_end < dt.datetime.now(dt.UTC) - interval
        return None if caught_up else row.data_interval_end


def customer_data_deadline(settings: Settings) -> DeadlineAlert:
    """A scheduled day of customer_data not done ``customer_data_deadline`` after its end."""
    late = f"not finished {settings.customer_data_deadline} after its day ended"
    return DeadlineAlert(
        reference=ScheduledDayEnd(),
        interval=settings.customer_data_deadline,
        callback=AsyncCallback(deadline_missed, kwargs={"promise": late}),
        name="day finished in time",
    )


def training_budget(settings: Settings) -> DeadlineAlert:
    """A continuous_training run still going ``training_run_budget`` after it was queued."""
    late = f"not finished {settings.training_run_budget} after it was queued"
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=settings.training_run_budget,
        callback=AsyncCallback(deadline_missed, kwargs={"promise": late}),
        name="training within its budget",
    )


async def deadline_missed(promise: str, context: dict[str, Any]) -> None:
    """The triggerer's callback: on-call hears which run missed which promise."""
    run = context["dag_run"]
    if run.get("state") == "failed":
        log.info("%s missed its deadline after failing: alerted already", run["dag_run_id"])
        return
    settings = get_settings()
    message = missed_deadline(promise, context, settings)
    await asyncio.to_thread(deliver, settings, message)


def missed_deadline(promise: str, context: dict[str, Any], settings: Settings) -> AlertMessage:
    """The alert for a missed deadline, from the context Airflow gives its callback: the
    run (as the REST API shows it) and the deadline's time."""
    run, deadline = context["dag_run"], context["deadline"]
    mask = masker(settings)
    day = (run.get("logical_date") or "")[:10] or f"none ({run.get('run_type')} run)"
    run_path = airflow_run_path(run["dag_id"], run["dag_run_id"])
    run_url = f"{settings.airflow_api_url.rstrip('/')}/{run_path}"
    return AlertMessage(
        headline=f"{run['dag_id']} for {day} missed its deadline: {promise}",
        facts=(
            ("DAG", run["dag_id"]),
            ("Run", mask(run["dag_run_id"])),
            ("Logical day", day),
            ("State", str(run.get("state"))),
            ("Queued at", str(run.get("queued_at"))),
            ("Deadline", str(deadline["deadline_time"])),
        ),
        links=(("Run", mask(run_url)),),
        detail=f"The run is {run.get('state')}: see its tasks in the Airflow UI.",
        detail_title="Now",
    )
