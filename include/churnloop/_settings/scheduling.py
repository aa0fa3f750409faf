"""Scheduling fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator


class SchedulingSettings(BaseModel):
    """When the DAGs run, how long they wait for late data, and when a run is late."""

    schedule_start: dt.date = Field(
        default=dt.date(2026, 1, 1), description="First logical day of customer_data (catchup)."
    )
    training_cron: str | None = Field(
        default="0 3 * * 1",
        description="When continuous_training runs on its own besides drift (UTC cron); null: "
        "only drift events and manual runs (a simulated history, where real time is not the "
        "data's time). Weekly: without drift a retrain buys no ROC AUC, after a concept drift "
        "each week's run adds a week of matured post-drift labels (see docs/staleness.md).",
    )
    customer_data_max_active_runs: int = Field(
        default=2, description="Days customer_data may process at once (backfills)."
    )
    landing_wait_seconds: int = Field(
        default=6 * 3600,
        ge=0,
        description="How long customer_data waits for a day's landing drop before its ingest "
        "fails with 'no landing drop' (the sensor holds no worker slot while it waits).",
    )
    landing_poke_seconds: int = Field(
        default=300, ge=1, description="How often the landing sensor looks for a late drop."
    )
    customer_data_deadline: dt.timedelta = Field(
        default=dt.timedelta(hours=8),
        description="A scheduled day of customer_data not finished this long after its data "
        "interval ended alerts on-call (an Airflow Deadline Alert; seconds or ISO 8601, e.g. "
        "PT8H). Backfills, manual runs and a catch-up of older days are not judged by it.",
    )
    training_run_budget: dt.timedelta = Field(
        default=dt.timedelta(hours=2),
        gt=dt.timedelta(0),
        description="A continuous_training run not finished this long after it was queued "
        "alerts on-call (an Airflow Deadline Alert; seconds or ISO 8601, e.g. PT2H).",
    )

    @field_validator("customer_data_deadline", "training_run_budget", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        """``3600`` from the environment as seconds (pydantic reads only ISO 8601 there)."""
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @model_validator(mode="after")
    def _deadline_after_the_wait(self) -> SchedulingSettings:
        """A deadline inside the landing wait would call a day late that is only waiting."""
        if self.customer_data_deadline.total_seconds() <= self.landing_wait_seconds:
            raise ValueError(
                f"CHURNLOOP_CUSTOMER_DATA_DEADLINE ({self.customer_data_deadline}) must "
                f"exceed CHURNLOOP_LANDING_WAIT_SECONDS ({self.landing_wait_seconds} s): a day "
                "still waiting for its drop would be reported late"
            )
        return self
