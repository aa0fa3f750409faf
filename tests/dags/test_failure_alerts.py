"""Failure alerts delivered for real: a task of customer_data fails in ``dag.test()``, which
runs its ``on_failure_callback`` as a deployed task does (the SDK's task runner, ``finalize``);
the alert reaches a local SMTP server (aiosmtpd) and a local HTTP server standing in for a
Slack incoming webhook, through Airflow connections given as ``AIRFLOW_CONN_*`` variables.
"""

from __future__ import annotations

import html
import json

import pytest

from churnloop import schema, storage
from churnloop.demo.simulation import Scenario, simulate
from tests.alert_sinks import smtp_connection, smtp_sink, webhook_sink
from tests.dags.test_customer_data_dag import CUSTOMERS, START, report_link, run_day

pytestmark = pytest.mark.airflow

SMTP_CONN = "churnloop_alerts_smtp"
SLACK_CONN = "churnloop_alerts_slack"
HOSTILE_COLUMN = "<script>{{ run_id }}</script>"
"""An upstream column name that would run in a page, or be rendered by Jinja."""


@pytest.fixture
def alerts_on(settings, monkeypatch):
    """Both channels on, as an operator turns them on: connections and settings by variables;
    yields (the Inbox of the SMTP server, the JSON bodies posted to the webhook)."""
    with smtp_sink() as (mailbox, smtp_port), webhook_sink() as (posts, webhook_url):
        smtp = smtp_connection(smtp_port)
        monkeypatch.setenv(f"AIRFLOW_CONN_{SMTP_CONN.upper()}", json.dumps(smtp))
        slack = {"conn_type": "slackwebhook", "password": webhook_url}
        monkeypatch.setenv(f"AIRFLOW_CONN_{SLACK_CONN.upper()}", json.dumps(slack))
        monkeypatch.setenv("CHURNLOOP_ALERT_EMAIL_TO", "oncall@example.com")
        monkeypatch.setenv("CHURNLOOP_ALERT_EMAIL_FROM", "churnloop@example.com")
        monkeypatch.setenv("CHURNLOOP_ALERT_SMTP_CONN_ID", SMTP_CONN)
        monkeypatch.setenv("CHURNLOOP_ALERT_SLACK_WEBHOOK_CONN_ID", SLACK_CONN)
        yield mailbox, posts


def add_hostile_column(settings) -> None:
    """The day's snapshot drop with one more column, named to attack the alert."""
    landing = storage.landing(settings)
    dataset = schema.landing_dataset(schema.SNAPSHOTS)
    table = landing.read_table(schema.SNAPSHOTS, START)
    landing.write_table(dataset, START, table.append_column(HOSTILE_COLUMN, table["age"]))


def test_a_failed_validation_alerts_once_by_email_and_by_slack(
    customer_data_dag, settings, alerts_on
):
    mailbox, posts = alerts_on
    simulate(settings, START, 1, CUSTOMERS, Scenario(breaks={START: "out_of_range"}))
    add_hostile_column(settings)

    instances = {}
    states = run_day(customer_data_dag, START, instances)

    assert states["validate_snapshots"] == "failed", states
    assert states["validate_labels"] == "success", "a task that succeeds sends nothing"
    assert len(mailbox.messages) == 1 and len(posts) == 1, "one alert per failed task"
    [mail], [post] = mailbox.messages, posts
    assert mail["Subject"] == (
        "[churnloop] customer_data.validate_snapshots failed for 2026-01-01 (try 1)"
    )
    assert mail["To"] == "oncall@example.com"
    body, text = mail.get_body().get_content(), post["text"]
    report = settings.airflow_api_url + report_link(instances["validate_snapshots"])
    log = "/dags/customer_data/runs/"
    for message, escaped in ((body, html.escape), (text, _slack_escaped)):
        for named in (
            "validation failed for customer_snapshots dt=2026-01-01",
            "expect_column_values_to_be_between(column='age'",
            "rows, e.g. -3, 212",
            report,
        ):
            assert escaped(named) in message, named
        assert escaped(HOSTILE_COLUMN) in message, "data quoted as text, never rendered"
        assert HOSTILE_COLUMN not in message
        assert log in message and "/tasks/validate_snapshots?try_number=1" in message


def test_a_drop_that_never_lands_alerts_where_it_was_expected(
    customer_data_dag, settings, alerts_on
):
    """The landing sensor gives up (no wait in these tests) and ingest fails, alerting with
    the path the drop was expected at: what on-call asks upstream for."""
    mailbox, posts = alerts_on
    simulate(settings, START, 1, CUSTOMERS, Scenario(breaks={START: "missing_day"}))

    states = run_day(customer_data_dag, START)

    assert states["wait_for_snapshots"] == "skipped", "a late drop is not an error of its own"
    assert states["ingest_snapshots"] == "failed", states
    [mail], [post] = mailbox.messages, posts
    assert mail["Subject"] == (
        "[churnloop] customer_data.ingest_snapshots failed for 2026-01-01 (try 1)"
    )
    expected = storage.landing(settings).uri_of(
        storage.landing(settings).data_file(schema.landing_dataset(schema.SNAPSHOTS), START)
    )
    for message in (mail.get_body().get_content(), post["text"]):
        assert "no landing drop for customer_snapshots dt=2026-01-01: expected" in message
        assert expected in message


def _slack_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_every_task_of_every_dag_alerts_on_failure(settings):
    from airflow.dag_processing.dagbag import DagBag

    from churnloop.orchestration.task_failures import FailureAlert

    bag = DagBag(dag_folder=str(settings.dags_dir))
    assert set(bag.dag_ids) == {"customer_data", "continuous_training", "drift_report"}
    for dag_id, each in bag.dags.items():
        for task in each.tasks:
            callbacks = task.on_failure_callback or []
            assert any(isinstance(callback, FailureAlert) for callback in callbacks), (
                f"DAG {dag_id} task {task.task_id} fails silently"
            )
