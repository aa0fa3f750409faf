"""Tuning fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TuningSettings(BaseModel):
    """The Optuna search of the LightGBM parameters: off unless given trials, time-boxed."""

    tuning_trials: int = Field(
        default=0,
        ge=0,
        description="Most Optuna trials searching the LightGBM parameters before training; "
        "0: tuning off, the parameters are reused as they are.",
    )
    tuning_timeout_seconds: float = Field(
        default=600,
        gt=0,
        description="Wall-clock budget of tuning; no trial starts that the mean trial time "
        "says would end past it, and the best trial so far wins.",
    )
    tuning_cv_folds: int = Field(
        default=3,
        ge=1,
        description="Expanding-window folds by snapshot day that score each tuning trial, "
        "inside the training split (never the holdout).",
    )
