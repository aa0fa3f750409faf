"""Alerts to on-call: one message, escaped for each medium, sent to each configured channel.

An `AlertMessage` is what happened (a headline), the facts that place it (DAG, run, task,
day), the pages to open and a detail (an error's first lines). `deliver` sends it by e-mail
and to Slack as the settings choose (``alert_*``); Airflow connections hold the channels'
credentials. With no channel configured the alert is a warning in the log; a channel that
fails is logged and does not stop the other.

Nothing in a message passes through Jinja: Airflow's notifiers (``SmtpNotifier``,
``SlackWebhookNotifier``) render their fields as templates with the task's context, where an
error quoting a data value such as ``{{ conn.smtp_default.password }}`` would be rendered.
Messages are built by pure functions, escaped here for each medium, and masked of
credentials by their builders (`churnloop.redaction.masker`), then sent through the
providers' hooks.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from churnloop.errors import excerpt
from churnloop.redaction import describe_error
from churnloop.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertMessage:
    """What an alert says; every field already masked of credentials."""

    headline: str
    facts: tuple[tuple[str, str], ...]
    links: tuple[tuple[str, str], ...]
    detail: str
    detail_title: str = "Error"


def error_excerpt(text: str, settings: Settings) -> str:
    """The first ``alert_error_max_lines`` lines of ``text``, cut to ``alert_error_max_chars``
    (the task's log holds the rest, and the traceback)."""
    lines = text.splitlines()
    shown = "\n".join(lines[: settings.alert_error_max_lines])
    if len(lines) > settings.alert_error_max_lines:
        shown += f"\n… ({len(lines) - settings.alert_error_max_lines} more lines in the log)"
    return excerpt(shown, settings.alert_error_max_chars)


def subject(message: AlertMessage) -> str:
    """The headline as an e-mail's subject."""
    return f"[churnloop] {message.headline}"


def as_text(message: AlertMessage) -> str:
    """The alert as plain text, for the log when no channel is configured."""
    facts = [f"{name}: {value}" for name, value in message.facts + message.links]
    return "\n".join([subject(message), *facts, f"{message.detail_title}:", message.detail])


def as_html(message: AlertMessage) -> str:
    """The alert as an e-mail's HTML body; every value escaped, links only to http(s)."""
    rows = "".join(
        f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in message.facts
    )
    links = " | ".join(_html_link(name, url) for name, url in message.links)
    return (
        f"<p><b>{html.escape(subject(message))}</b></p><table>{rows}</table>"
        f"<p>{links}</p><pre>{html.escape(message.detail)}</pre>"
    )


def _html_link(name: str, url: str) -> str:
    if url.startswith(("http://", "https://")):
        return f'<a href="{html.escape(url)}">{html.escape(name)}</a>'
    return f"{html.escape(name)}: {html.escape(url)}"


FENCE = "```"
CLOSED_FENCE = "'''"
"""A fence quoted in an error, shown so that it cannot end the message's code block."""


def as_slack(message: AlertMessage) -> str:
    """The alert as a Slack message (mrkdwn): data escaped, so ``<!channel>`` or ``<url|x>``
    quoted by an error stays text, and a fence it quotes cannot close the code block."""
    facts = _slack_escape(", ".join(f"{name} {value}" for name, value in message.facts))
    links = " | ".join(f"<{_slack_url(url)}|{name}>" for name, url in message.links)
    return (
        f":red_circle: *{_slack_escape(message.headline)}* ({facts})\n{links}\n"
        f"```{_slack_escape(message.detail).replace(FENCE, CLOSED_FENCE)}```"
    )


def _slack_escape(text: str) -> str:
    """Slack's own escaping: ``&``, ``<`` and ``>`` are its markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_url(url: str) -> str:
    """A URL inside ``<url|name>``: Slack has no escape for ``|``, so it is percent-encoded."""
    return _slack_escape(quote(url, safe=":/?#[]@!$&'()*+,;=%~-._"))


def send_email(settings: Settings, message: AlertMessage) -> None:
    """E-mail the alert through the SMTP connection ``alert_smtp_conn_id``."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=settings.alert_smtp_conn_id) as smtp:
        smtp.send_email_smtp(
            to=settings.alert_email_to,
            from_email=settings.alert_email_from,
            subject=subject(message),
            html_content=as_html(message),
        )


def send_slack(settings: Settings, message: AlertMessage) -> None:
    """Post the alert to the incoming webhook of connection ``alert_slack_webhook_conn_id``."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    hook = SlackWebhookHook(slack_webhook_conn_id=settings.alert_slack_webhook_conn_id)
    hook.send(text=as_slack(message), unfurl_links=False)


Sender = Callable[[Settings, AlertMessage], None]


def configured_channels(settings: Settings) -> dict[str, Sender]:
    """The channels the settings turn on, by name."""
    channels: dict[str, Sender] = {}
    if settings.alert_email_to:
        channels["e-mail"] = send_email
    if settings.alert_slack_webhook_conn_id:
        channels["Slack"] = send_slack
    return channels


def deliver(settings: Settings, message: AlertMessage) -> None:
    """Send ``message`` to every configured channel; with none, warn in the log with it."""
    channels = configured_channels(settings)
    if not channels:
        log.warning(
            "no alert channel is configured (CHURNLOOP_ALERT_EMAIL_TO, "
            "CHURNLOOP_ALERT_SLACK_WEBHOOK_CONN_ID); this alert would be sent:\n%s",
            as_text(message),
        )
    for name, send in channels.items():
        try:
            send(settings, message)
        except Exception as error:  # one channel down must not silence the other
            log.error("the %s alert was not sent: %s", name, describe_error(error))
        else:
            log.info("alert sent by %s: %s", name, message.headline)
