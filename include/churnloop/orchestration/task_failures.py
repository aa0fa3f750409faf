"""Failure alerts: a failed task tells on-call what failed, why, and where to look.

`FailureAlert` is every task's ``on_failure_callback`` (``dag_defaults.FAILURES_ALERTED``):
Airflow calls it once a task has failed for good, not before a retry. The message names the
DAG, run, task, logical day and try, quotes the error's first lines (for a failed validation:
each expectation with counts and examples) and links the task's Report and log; it is
delivered as ``churnloop.orchestration.alerts`` describes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from churnloop.orchestration.alerts import AlertMessage, deliver, error_excerpt
from churnloop.orchestration.task_support import REPORT_LINK_KEY
from churnloop.redaction import describe_error, masker
from churnloop.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailedTask:
    """The failed task, its error's first lines and the pages to open; masked."""

    dag_id: str
    run_id: str
    task_id: str
    logical_day: str
    try_number: int
    error: str
    log_url: str
    report_url: str | None = None

    def message(self) -> AlertMessage:
        report = (("Report", self.report_url),) if self.report_url else ()
        return AlertMessage(
            headline=(
                f"{self.dag_id}.{self.task_id} failed for {self.logical_day} "
                f"(try {self.try_number})"
            ),
            facts=(
                ("DAG", self.dag_id),
                ("Run", self.run_id),
                ("Task", self.task_id),
                ("Logical day", self.logical_day),
                ("Try", str(self.try_number)),
            ),
            links=(*report, ("Log", self.log_url)),
            detail=self.error,
        )


def failed_task(context: Mapping[str, Any], settings: Settings) -> FailedTask:
    """The failure a task's callback ``context`` describes, its credentials masked."""
    ti = context["ti"]
    mask = masker(settings)
    logical_date = context.get("logical_date")
    report_url = _report_link(ti)
    return FailedTask(
        dag_id=ti.dag_id,
        run_id=mask(ti.run_id),
        task_id=ti.task_id,
        logical_day=f"{logical_date:%Y-%m-%d}" if logical_date else "none (manual run)",
        try_number=ti.try_number,
        error=error_excerpt(mask(error_text(context.get("exception"))), settings),
        log_url=mask(ti.log_url),
        report_url=mask(report_url) if report_url else None,
    )


def _report_link(ti: Any) -> str | None:
    """The task's Report link, if it published one; an alert goes out without it when the
    link cannot be read (the API server down is no reason to lose the alert)."""
    try:
        return ti.xcom_pull(task_ids=ti.task_id, key=REPORT_LINK_KEY)
    except Exception as error:
        log.warning("the failed task's Report link could not be read: %s", describe_error(error))
        return None


def error_text(error: BaseException | str | None) -> str:
    """A data error (failed without retry) is its message alone: each failed expectation
    with counts and examples. Any other error is named by its type."""
    if error is None:
        return "no exception was recorded: see the task's log"
    if isinstance(error, str | AirflowFailException):
        return str(error)
    return f"{type(error).__name__}: {error}"


class FailureAlert(BaseNotifier):
    """Every task's ``on_failure_callback``: the failure, sent to each configured channel."""

    def notify(self, context: Any) -> None:
        settings = get_settings()
        deliver(settings, failed_task(context, settings).message())
