"""Delivering an alert: the channels the settings turn on, one failing channel not silencing
the other, and links that stay links in Slack's markup."""

from __future__ import annotations

import logging

from churnloop.orchestration import alerts
from churnloop.orchestration.alerts import AlertMessage, as_slack, configured_channels, deliver
from churnloop.settings import get_settings

MESSAGE = AlertMessage(
    headline="customer_data for 2026-01-01 missed its deadline",
    facts=(("DAG", "customer_data"),),
    links=(("Run", "http://airflow.example.com/dags/customer_data/runs/a|b"),),
    detail="The run is running.",
)


def test_channels_follow_the_settings(settings, monkeypatch):
    assert configured_channels(get_settings()) == {}
    monkeypatch.setenv("CHURNLOOP_ALERT_EMAIL_TO", "oncall@example.com, data@example.com")
    monkeypatch.setenv("CHURNLOOP_ALERT_SLACK_WEBHOOK_CONN_ID", "churnloop_slack")

    configured = get_settings()

    assert configured.alert_email_to == ["oncall@example.com", "data@example.com"]
    assert set(configured_channels(configured)) == {"e-mail", "Slack"}


def test_a_failing_channel_does_not_silence_the_other(settings, monkeypatch, caplog):
    sent: list[str] = []

    def broken(settings, message):
        raise ConnectionError("smtp://mail:25 refused")

    monkeypatch.setattr(alerts, "send_email", broken)
    monkeypatch.setattr(alerts, "send_slack", lambda settings, message: sent.append("Slack"))
    monkeypatch.setenv("CHURNLOOP_ALERT_EMAIL_TO", "oncall@example.com")
    monkeypatch.setenv("CHURNLOOP_ALERT_SLACK_WEBHOOK_CONN_ID", "churnloop_slack")
    caplog.set_level(logging.INFO, logger="churnloop")

    deliver(get_settings(), MESSAGE)

    assert sent == ["Slack"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["the e-mail alert was not sent: ConnectionError: smtp://mail:25 refused"]


def test_a_bar_in_a_url_cannot_end_a_slack_link():
    """Slack reads ``<url|name>``: a ``|`` left in the URL would cut it and show the rest."""
    slack = as_slack(MESSAGE)

    assert "<http://airflow.example.com/dags/customer_data/runs/a%7Cb|Run>" in slack


def test_a_fence_quoted_in_an_error_cannot_close_the_code_block():
    """Text after a quoted fence would otherwise be read as Slack markup."""
    error = "expected ``` got *bold* <!here>"
    slack = as_slack(AlertMessage("x failed", (), (), detail=error))

    assert slack.count("```") == 2 and slack.endswith("```")
    assert "expected ''' got *bold* &lt;!here&gt;" in slack
