"""Retraining trigger fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TriggerSettings(BaseModel):
    """Retrain besides harmful drift (a champion too old); quiet days after a run."""

    drift_max_training_age_days: int = Field(
        default=45,
        ge=1,
        description="Days the champion's training data may end before the day judged; labels "
        "lag 30 days, so this must exceed 30 plus the training cadence. A guard against a "
        "stopped or rejecting cron: age alone costs no measurable ROC AUC by 60 days (see "
        "docs/staleness.md).",
    )
    drift_cooldown_days: int = Field(
        default=7, ge=0, description="Days after a training run in which drift triggers nothing."
    )
