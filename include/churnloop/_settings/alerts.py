"""Alert fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode


class AlertSettings(BaseModel):
    """Where a failed task's alert goes. Only connection ids live here: the SMTP login and
    the webhook URL are credentials, kept in Airflow connections."""

    alert_email_to: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Addresses a failed task is e-mailed to (comma-separated); empty: no e-mail.",
    )
    alert_email_from: str | None = Field(
        default=None, description="Sender of the e-mails; null: the SMTP connection's from_email."
    )
    alert_smtp_conn_id: str = Field(
        default="smtp_default",
        description="Airflow connection (type smtp) of the server the e-mails are sent through.",
    )
    alert_slack_webhook_conn_id: str | None = Field(
        default=None,
        description="Airflow connection (type slackwebhook) whose password is a Slack incoming "
        "webhook's URL; null: no Slack message.",
    )
    alert_error_max_lines: int = Field(
        default=30, ge=1, description="Lines of the error an alert quotes; the log has the rest."
    )
    alert_error_max_chars: int = Field(
        default=3000,
        ge=200,
        description="Characters of the error an alert quotes (Slack shows ~4,000 in a message).",
    )

    @field_validator("alert_email_to", mode="before")
    @classmethod
    def _split_addresses(cls, value: Any) -> Any:
        """``a@example.com, b@example.com`` from the environment as a list."""
        if isinstance(value, str):
            return [address.strip() for address in value.split(",") if address.strip()]
        return value
