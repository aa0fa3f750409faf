"""Failure alerts delivered for real: a task of customer_data fails in ``dag.test()``, which
runs its ``on_failure_callback`` as a deployed task does (the SDK's task runner, ``finalize``);
the alert reaches a local SMTP server (aiosmtpd) and a local HTTP server standing in for a
Slack incoming webhook, through Airflow connections given as ``AIRFLOW_CONN_*`` variables.
"""

from __future__ import annotations

import email
import html
import json
import threading
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from churnloop import schema, storage
from churnloop.demo.simulation import Scenario, simulate
from tests.dags.test_customer_data_dag import CUSTOMERS, START, dag, report_link, run_day
from tests.service_support import free_port

pytestmark = pytest.mark.airflow

__all__ = ["dag"]  # the customer_data tests' fixture, used here too

SMTP_CONN = "churnloop_alerts_smtp"
SLACK_CONN = "churnloop_alerts_slack"
HOSTILE_COLUMN = "<script>{{ run_id }}</script>"
"""An upstream column name that would run in a page, or be rendered by Jinja."""


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 OK"


@pytest.fixture
def inbox():
    """An SMTP server on a free loopback port; yields (Inbox, port)."""
    from aiosmtpd.controller import Controller

    received = Inbox()
    controller = Controller(received, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield received, controller.port
    controller.stop()


@pytest.fixture
def webhook():
    """An HTTP server on a free loopback port answering Slack's ``ok``; yields (the JSON
    bodies posted to it, its webhook URL)."""
    posts: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield posts, f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXXX"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def alerts_on(settings, inbox, webhook, monkeypatch):
    """Both channels on, as an operator turns them on: connections and settings by variables."""
    mailbox, smtp_port = inbox
    posts, webhook_url = webhook
    smtp = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": smtp_port,
        "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{SMTP_CONN.upper()}", json.dumps(smtp))
    slack = {"conn_type": "slackwebhook", "password": webhook_url}
    monkeypatch.setenv(f"AIRFLOW_CONN_{SLACK_CONN.upper()}", json.dumps(slack))
    monkeypatch.setenv("CHURNLOOP_ALERT_EMAIL_TO", "oncall@example.com")
    monkeypatch.setenv("CHURNLOOP_ALERT_EMAIL_FROM", "churnloop@example.com")
    monkeypatch.setenv("CHURNLOOP_ALERT_SMTP_CONN_ID", SMTP_CONN)
    monkeypatch.setenv("CHURNLOOP_ALERT_SLACK_WEBHOOK_CONN_ID", SLACK_CONN)
    return mailbox, posts


def add_hostile_column(settings) -> None:
    """The day's snapshot drop with one more column, named to attack the alert."""
    landing = storage.landing(settings)
    dataset = schema.landing_dataset(schema.SNAPSHOTS)
    table = landing.read_table(schema.SNAPSHOTS, START)
    landing.write_table(dataset, START, table.append_column(HOSTILE_COLUMN, table["age"]))


def test_a_failed_validation_alerts_once_by_email_and_by_slack(dag, settings, alerts_on):
    mailbox, posts = alerts_on
    simulate(settings, START, 1, CUSTOMERS, Scenario(breaks={START: "out_of_range"}))
    add_hostile_column(settings)

    instances = {}
    states = run_day(dag, START, instances)

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


def _slack_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_every_task_of_every_dag_alerts_on_failure(settings):
    from airflow.dag_processing.dagbag import DagBag

    from churnloop.orchestration.alerts import FailureAlert

    bag = DagBag(dag_folder=str(settings.dags_dir))
    assert set(bag.dag_ids) == {"customer_data", "continuous_training", "drift_report"}
    for dag_id, each in bag.dags.items():
        for task in each.tasks:
            callbacks = task.on_failure_callback or []
            assert any(isinstance(callback, FailureAlert) for callback in callbacks), (
                f"DAG {dag_id} task {task.task_id} fails silently"
            )
