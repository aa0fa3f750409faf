"""Slice gate fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SliceGateSettings(BaseModel):
    """The gate per slice: the columns that cut the holdout, when and what fails a slice."""

    gate_slice_columns: list[str] = Field(
        default=["plan", "region", "contract", "age_band", "tenure_bucket"],
        description="Columns whose values are slices (age_band and tenure_bucket are cut "
        "from age and tenure_months).",
    )
    gate_min_slice_positives: int = Field(
        default=30, ge=2, description="Fewer churners in a slice: reported, not judged."
    )
    gate_min_slice_negatives: int = Field(
        default=30, ge=2, description="Fewer non-churners in a slice: reported, not judged."
    )
    gate_max_slice_drop: float | None = Field(
        default=0.05,
        ge=0,
        description="A judged slice fails when its whole change interval vs the champion "
        "lies below minus this; None: off.",
    )
    gate_min_slice_auc: float | None = Field(
        default=0.6,
        description="Inclusion floor: a judged slice fails when its whole AUC interval lies "
        "below this, at bootstrap too; None: off.",
    )
    gate_max_slice_gap: float | None = Field(
        default=0.15,
        ge=0,
        description="Inclusion: the best and worst judged slice of a column fail when their "
        "AUC gap's whole interval exceeds this, at bootstrap too; None: off.",
    )
