"""Failure alerts: a failed task tells on-call, by e-mail and Slack, what failed and where to look.

`FailureAlert` is every task's ``on_failure_callback`` (``dag_defaults.FAILURES_ALERTED``):
Airflow calls it once a task has failed for good, not before a retry. The settings choose
the channels (``alert_*``); Airflow connections hold their credentials. With no channel
configured the alert is a warning in the task's log; a channel that fails is logged and
does not stop the other.

Nothing from the failure passes through Jinja: Airflow's notifiers (``SmtpNotifier``,
``SlackWebhookNotifier``) render their fields as templates with the task's context, where an
error quoting a data value such as ``{{ conn.smtp_default.password }}`` would be rendered.
The message is built here by pure functions, escaped for each medium and masked of
credentials, then sent through the providers' hooks.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from churnloop.errors import excerpt
from churnloop.orchestration.task_support import REPORT_LINK_KEY
from churnloop.redaction import MASK, describe_error, redact, secret_values
from churnloop.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailedTask:
    """What an alert says: the failed task, its error's first lines and the pages to open."""

    dag_id: str
    run_id: str
    task_id: str
    logical_day: str
    try_number: int
    error: str
    log_url: str
    report_url: str | None = None


def failed_task(context: Mapping[str, Any], settings: Settings) -> FailedTask:
    """The failure a task's callback ``context`` describes, its credentials masked."""
    ti = context["ti"]
    mask = _masker(settings)
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


def error_excerpt(text: str, settings: Settings) -> str:
    """The first ``alert_error_max_lines`` lines of ``text``, cut to ``alert_error_max_chars``
    (the task's log holds the rest, and the traceback)."""
    lines = text.splitlines()
    shown = "\n".join(lines[: settings.alert_error_max_lines])
    if len(lines) > settings.alert_error_max_lines:
        shown += f"\n… ({len(lines) - settings.alert_error_max_lines} more lines in the log)"
    return excerpt(shown, settings.alert_error_max_chars)


def _masker(settings: Settings) -> Callable[[str], str]:
    """Masks URI passwords, secret parameters and the settings' secrets in a text; applied
    before any cut, which could leave a secret's head where the patterns no longer match."""
    secrets = secret_values(settings.model_dump().values())

    def mask(text: str) -> str:
        text = redact(text)
        for secret in secrets:
            text = text.replace(secret, MASK)
        return text

    return mask


def subject(task: FailedTask) -> str:
    """One line naming the task, the day and the try: an e-mail's subject."""
    return (
        f"[churnloop] {task.dag_id}.{task.task_id} failed for {task.logical_day} "
        f"(try {task.try_number})"
    )


def _facts(task: FailedTask) -> list[tuple[str, str]]:
    return [
        ("DAG", task.dag_id),
        ("Run", task.run_id),
        ("Task", task.task_id),
        ("Logical day", task.logical_day),
        ("Try", str(task.try_number)),
    ]


def _links(task: FailedTask) -> list[tuple[str, str]]:
    report = [("Report", task.report_url)] if task.report_url else []
    return [*report, ("Log", task.log_url)]


def as_text(task: FailedTask) -> str:
    """The alert as plain text, for the log when no channel is configured."""
    facts = [f"{name}: {value}" for name, value in _facts(task) + _links(task)]
    return "\n".join([subject(task), *facts, "Error:", task.error])


def as_html(task: FailedTask) -> str:
    """The alert as an e-mail's HTML body; every value escaped, links only to http(s)."""
    rows = "".join(
        f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in _facts(task)
    )
    links = " | ".join(_html_link(name, url) for name, url in _links(task))
    return (
        f"<p><b>{html.escape(subject(task))}</b></p><table>{rows}</table>"
        f"<p>{links}</p><pre>{html.escape(task.error)}</pre>"
    )


def _html_link(name: str, url: str) -> str:
    if url.startswith(("http://", "https://")):
        return f'<a href="{html.escape(url)}">{html.escape(name)}</a>'
    return f"{html.escape(name)}: {html.escape(url)}"


def as_slack(task: FailedTask) -> str:
    """The alert as a Slack message (mrkdwn): data escaped, so ``<!channel>`` or ``<url|x>``
    quoted by an error stays text."""
    what = _slack_escape(f"{task.dag_id}.{task.task_id}")
    when = _slack_escape(
        f"logical day {task.logical_day}, try {task.try_number}, run {task.run_id}"
    )
    links = " | ".join(f"<{_slack_escape(url)}|{name}>" for name, url in _links(task))
    return f":red_circle: *{what} failed* ({when})\n{links}\n```{_slack_escape(task.error)}```"


def _slack_escape(text: str) -> str:
    """Slack's own escaping: ``&``, ``<`` and ``>`` are its markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def send_email(settings: Settings, task: FailedTask) -> None:
    """E-mail the alert through the SMTP connection ``alert_smtp_conn_id``."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=settings.alert_smtp_conn_id) as smtp:
        smtp.send_email_smtp(
            to=settings.alert_email_to,
            from_email=settings.alert_email_from,
            subject=subject(task),
            html_content=as_html(task),
        )


def send_slack(settings: Settings, task: FailedTask) -> None:
    """Post the alert to the incoming webhook of connection ``alert_slack_webhook_conn_id``."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    hook = SlackWebhookHook(slack_webhook_conn_id=settings.alert_slack_webhook_conn_id)
    hook.send(text=as_slack(task), unfurl_links=False)


Sender = Callable[[Settings, FailedTask], None]


def configured_channels(settings: Settings) -> dict[str, Sender]:
    """The channels the settings turn on, by name."""
    channels: dict[str, Sender] = {}
    if settings.alert_email_to:
        channels["e-mail"] = send_email
    if settings.alert_slack_webhook_conn_id:
        channels["Slack"] = send_slack
    return channels


class FailureAlert(BaseNotifier):
    """Every task's ``on_failure_callback``: the failure, sent to each configured channel."""

    def notify(self, context: Any) -> None:
        settings = get_settings()
        task = failed_task(context, settings)
        channels = configured_channels(settings)
        if not channels:
            log.warning(
                "no alert channel is configured (CHURNLOOP_ALERT_EMAIL_TO, "
                "CHURNLOOP_ALERT_SLACK_WEBHOOK_CONN_ID); this alert would be sent:\n%s",
                as_text(task),
            )
        for name, send in channels.items():
            try:
                send(settings, task)
            except Exception as error:  # one channel down must not silence the other
                log.error("the %s alert was not sent: %s", name, describe_error(error))
            else:
                log.info("failure alert sent by %s", name)
