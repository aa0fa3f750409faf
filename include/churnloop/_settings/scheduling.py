"""Scheduling fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class SchedulingSettings(BaseModel):
    """When the DAGs run: the first day of data, the retraining cron, days run at once."""

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
