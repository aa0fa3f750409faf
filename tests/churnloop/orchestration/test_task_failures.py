"""What a failure alert says, built from a task's callback context: the failed task, its
error's first lines, its Report and log links; escaped for each medium, credentials masked.

Delivery through a real SMTP server and webhook is in tests/dags/test_failure_alerts.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field

import pytest

from churnloop.errors import DataValidationError
from churnloop.orchestration.alerts import as_html, as_slack, as_text, subject
from churnloop.orchestration.task_failures import FailureAlert, failed_task
from churnloop.orchestration.task_support import REPORT_LINK_KEY, data_errors_fail_fast
from churnloop.settings import get_settings

PASSWORD = "pl4nted-pw"
HOSTILE_COLUMN = "<script>alert(1)</script>"
REPORT = "http://localhost:8080/churnloop/reports/data_docs/customer_snapshots/dt=2026-01-01.html"
LOG = "http://localhost:8080/dags/customer_data/runs/scheduled__2026-01-01/tasks/validate_snapshots"
VALIDATION_FAILURE = (
    "validation failed for customer_snapshots dt=2026-01-01: 2 of 31 expectations failed:\n"
    " - expect_column_values_to_be_between(column='age', min_value=18, max_value=100): "
    "41 rows, e.g. -3, 212\n"
    f" - expect_table_columns_to_match_set(column_set=[...]): unexpected {HOSTILE_COLUMN!r}\n"
    "data moved to /lake/quarantine/customer_snapshots/dt=2026-01-01; "
    f"Data Docs: {REPORT}"
)


@dataclass
class TaskInstanceStandIn:
    """The attributes of Airflow's RuntimeTaskInstance that a failure callback reads."""

    xcoms: dict[str, str] = field(default_factory=dict)
    dag_id: str = "customer_data"
    run_id: str = "scheduled__2026-01-01T00:00:00+00:00"
    task_id: str = "validate_snapshots"
    try_number: int = 1
    log_url: str = LOG

    def xcom_pull(self, task_ids: str, key: str) -> str | None:
        assert task_ids == self.task_id
        return self.xcoms.get(key)


def failure_context(error: BaseException | str, ti: TaskInstanceStandIn | None = None) -> dict:
    return {
        "ti": ti or TaskInstanceStandIn(xcoms={REPORT_LINK_KEY: REPORT}),
        "logical_date": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "exception": error,
    }


def failed_validation() -> BaseException:
    """The exception a validation task fails with: the DataError as Airflow sees it (its
    Report link is in the task's XCom, as ``failure_context`` has it)."""
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException) as failure, data_errors_fail_fast():
        raise DataValidationError(VALIDATION_FAILURE)
    return failure.value


def test_the_alert_names_the_failed_task_its_expectations_and_links(settings):
    task = failed_task(failure_context(failed_validation()), settings)

    text = as_text(task.message())
    assert subject(task.message()) == (
        "[churnloop] customer_data.validate_snapshots failed for 2026-01-01 (try 1)"
    )
    for fact in ("DAG: customer_data", "Task: validate_snapshots", "Logical day: 2026-01-01"):
        assert fact in text
    assert "Run: scheduled__2026-01-01T00:00:00+00:00" in text and "Try: 1" in text
    assert task.error == VALIDATION_FAILURE, "a data error is its message, each expectation"
    assert "column='age', min_value=18, max_value=100): 41 rows, e.g. -3, 212" in text
    assert f"Report: {REPORT}" in text and f"Log: {LOG}" in text
    for message in (as_html(task.message()), as_slack(task.message())):
        assert "41 rows, e.g. -3, 212" in message and "2026-01-01" in message
        assert REPORT in message and LOG in message


def test_data_in_the_alert_is_escaped_for_html_and_slack(settings):
    error = failed_validation()
    ti = TaskInstanceStandIn(xcoms={REPORT_LINK_KEY: "javascript:alert(1)"})
    task = failed_task(failure_context(error, ti), settings)

    body = as_html(task.message())
    assert HOSTILE_COLUMN not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert 'href="javascript' not in body, "only http(s) links are clickable"
    slack = as_slack(dataclasses.replace(task, error="<!channel> <http://x|y>").message())
    assert "&lt;!channel&gt; &lt;http://x|y&gt;" in slack and "<!channel>" not in slack


def test_credentials_never_reach_the_alert(settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_SERVING_ADMIN_TOKEN", "test-admin-token")
    error = ConnectionError(
        f"cannot reach postgresql://churnloop:{PASSWORD}@db:5432/lake "
        "(admin token test-admin-token, s3 ?X-Amz-Signature=" + PASSWORD + ")"
    )
    ti = TaskInstanceStandIn(log_url=f"http://admin:{PASSWORD}@airflow.example.com/dags/x")

    task = failed_task(failure_context(error, ti), get_settings())

    for message in (
        subject(task.message()),
        as_text(task.message()),
        as_html(task.message()),
        as_slack(task.message()),
    ):
        assert PASSWORD not in message and "test-admin-token" not in message
    assert "ConnectionError: cannot reach postgresql://churnloop:***@db:5432/lake" in task.error


def test_a_cut_never_leaves_part_of_a_credential(settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_ALERT_ERROR_MAX_CHARS", "200")
    up_to_the_user = "ConnectionError: " + "postgresql://churnloop:"
    padding = "x" * (200 - len(up_to_the_user) - 5)  # the cut falls 5 characters in
    error = f"{padding}postgresql://churnloop:{PASSWORD}@db:5432/lake"

    task = failed_task(failure_context(ConnectionError(error)), get_settings())

    assert PASSWORD[:5] not in task.error and "churnloop:***" in task.error


def test_a_long_error_is_cut_to_its_first_lines_and_says_so(settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_ALERT_ERROR_MAX_LINES", "3")
    error = "\n".join(f"line {number}" for number in range(1, 101))

    task = failed_task(failure_context(error), get_settings())

    assert task.error == "line 1\nline 2\nline 3\n… (97 more lines in the log)"
    monkeypatch.setenv("CHURNLOOP_ALERT_ERROR_MAX_CHARS", "200")
    cut = failed_task(failure_context("x" * 10_000), get_settings()).error
    assert len(cut) < 260 and cut.endswith("(truncated, 10,000 characters)")


def test_with_no_channel_the_alert_is_a_warning_in_the_log(settings, caplog):
    caplog.set_level(logging.WARNING, logger="churnloop")

    FailureAlert()(failure_context(failed_validation()))

    [record] = [r for r in caplog.records if r.name == "churnloop.orchestration.alerts"]
    assert record.levelno == logging.WARNING
    assert "CHURNLOOP_ALERT_EMAIL_TO" in record.getMessage()
    assert "customer_data.validate_snapshots failed for 2026-01-01" in record.getMessage()
    assert "41 rows, e.g. -3, 212" in record.getMessage()


class UnreachableXComs(TaskInstanceStandIn):
    def xcom_pull(self, task_ids: str, key: str) -> str | None:
        raise ConnectionError("the API server is down")


def test_an_unreadable_report_link_does_not_lose_the_alert(settings):
    task = failed_task(failure_context(failed_validation(), UnreachableXComs()), settings)

    assert task.report_url is None
    assert "41 rows, e.g. -3, 212" in as_text(task.message()) and f"Log: {LOG}" in as_text(
        task.message()
    )
