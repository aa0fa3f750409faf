"""Evaluation gate fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class GateSettings(BaseModel):
    """The gate on the whole holdout: interval confidence, labels needed, margins."""

    gate_confidence: float = Field(
        default=0.95,
        gt=0.5,
        lt=1,
        description="Two-sided confidence of the gate's DeLong intervals of ROC AUC.",
    )
    gate_min_holdout_positives: int = Field(
        default=100,
        ge=2,
        description="Fewer churners in the holdout fail the gate: its intervals would be too "
        "wide to tell a model from noise (widen holdout_days).",
    )
    gate_min_holdout_negatives: int = Field(
        default=100, ge=2, description="Fewer non-churners in the holdout fail the gate."
    )
    gate_min_roc_auc: float = Field(
        default=0.65,
        description="Value threshold: the lower bound of the challenger's holdout ROC AUC.",
    )
    gate_noninferiority_margin: float | None = Field(
        default=0.01,
        ge=0,
        description="Non-inferiority: the lower bound of the ROC AUC change vs the champion "
        "must stay above minus this; None: off.",
    )
    gate_superiority_margin: float = Field(
        default=0.005,
        ge=0,
        description="A change whose lower bound exceeds this is called superior (a label; "
        "seed-to-seed differences of one specification stay below it).",
    )
    gate_min_gain_over_baseline: float | None = Field(
        default=0.0,
        description="The lower bound of the ROC AUC gain over the best baseline must exceed "
        "this; None: baselines are reported, not required.",
    )
