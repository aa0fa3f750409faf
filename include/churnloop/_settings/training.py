"""Training fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TrainingSettings(BaseModel):
    """The challenger's data window and parameters, training-set bounds, provenance."""

    training_window_days: int = Field(
        default=90, ge=2, description="Days of labelled snapshots a training set spans."
    )
    holdout_days: int = Field(
        default=7, ge=1, description="Latest days of the window held out for evaluation."
    )
    training_seed: int = Field(default=42, description="Seed of the model and of sampling.")
    model_params: dict[str, Any] = Field(
        default_factory=lambda: {
            "n_estimators": 200,
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_child_samples": 50,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "n_jobs": 2,
        },
        description="LightGBM parameters of the challenger (JSON in CHURNLOOP_MODEL_PARAMS).",
    )
    git_sha: str | None = Field(
        default=None,
        description="The commit the code was built from (the image's GIT_SHA build argument); "
        "None: asked of git in the checkout.",
    )
    require_known_commit: bool = Field(
        default=False,
        description="Refuse to register a model whose commit is unknown (production).",
    )
    training_min_rows: int = Field(
        default=1_000, ge=1, description="Fewest labelled snapshots a training set may have."
    )
    training_min_positive_rate: float = Field(
        default=0.01, ge=0, le=1, description="Lowest share of churners a training set may have."
    )
    training_max_positive_rate: float = Field(
        default=0.6, ge=0, le=1, description="Highest share of churners a training set may have."
    )
