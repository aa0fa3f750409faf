"""Evaluation fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class EvaluationSettings(BaseModel):
    """Rows a training run's by-products are computed on: samples above bound the cost."""

    reference_max_rows: int = Field(
        default=20_000, ge=100, description="Rows of the holdout kept as the drift reference."
    )
    train_metrics_max_rows: int = Field(
        default=100_000,
        ge=100,
        description="Rows of the training split scored for the train_* metrics (a sample "
        "above it).",
    )
    baseline_max_rows: int = Field(
        default=200_000,
        ge=1_000,
        description="Rows of the training split the baselines are fitted on (a sample above).",
    )
    importance_max_rows: int = Field(
        default=20_000,
        ge=1_000,
        description="Holdout rows the challenger's permutation importance shuffles (a seeded "
        "sample above); informative, the gate does not use it.",
    )
    importance_repeats: int = Field(
        default=3,
        ge=1,
        description="Shuffles per feature of the permutation importance; each repeat costs "
        "one prediction of importance_max_rows rows per feature the model splits on.",
    )
