"""Performance fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PerformanceSettings(BaseModel):
    """When drift harms the model: ROC AUC on matured labels, and estimated before."""

    drift_max_auc_drop: float = Field(
        default=0.05, ge=0, description="Largest ROC AUC drop on matured labels vs the baseline."
    )
    drift_performance_min_rows: int = Field(
        default=200, ge=2, description="Fewer labelled rows are reported, not judged."
    )
    drift_max_estimated_auc_drop: float | None = Field(
        default=0.05,
        ge=0,
        description="Largest ROC AUC loss estimated before the labels (the reference's "
        "estimate minus the upper bound of the day's); drift with a smaller loss does not "
        "trigger retraining (see docs/drift.md). None: drift alone triggers.",
    )
    drift_estimate_simulations: int = Field(
        default=200,
        ge=20,
        description="Label draws (Bernoulli of each score) whose AUCs' spread gives the "
        "interval of the estimated ROC AUC.",
    )
    drift_confidence: float = Field(
        default=0.95,
        gt=0.5,
        lt=1,
        description="Two-sided confidence of the drift check's intervals of ROC AUC "
        "(estimated before the labels, and served).",
    )
    drift_auc_min_positives: int = Field(
        default=30,
        ge=2,
        description="Fewer churners (expected, before the labels) leave an estimated or "
        "served ROC AUC reported, not judged.",
    )
    drift_auc_min_negatives: int = Field(
        default=30, ge=2, description="Fewer non-churners: likewise not judged."
    )
