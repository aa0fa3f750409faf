"""Skew fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SkewSettings(BaseModel):
    """How many served feature values may differ from the lake's before the skew check fails."""

    skew_max_mismatch_rate: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="Share of a feature's served values that may differ from the lake's row "
        "of the same customer; the skew check fails when its interval's lower bound is above.",
    )
    skew_numeric_tolerance: float = Field(
        default=1e-9,
        ge=0,
        description="Relative and absolute difference up to which a served number equals the "
        "lake's (both are doubles of the same value when nothing is skewed).",
    )
    skew_min_rows: int = Field(
        default=200,
        ge=1,
        description="Served rows matched to a lake row below which the skew check reports "
        "insufficient data instead of a verdict.",
    )
    skew_confidence: float = Field(
        default=0.95,
        gt=0,
        lt=1,
        description="Two-sided confidence of the skew check's Wilson intervals of mismatch rates.",
    )
