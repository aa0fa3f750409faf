"""Calibration fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class CalibrationSettings(BaseModel):
    """Calibrate the challenger's probabilities only with labels enough, when it helps."""

    calibration: Literal["auto", "off"] = Field(
        default="auto",
        description="auto: calibrate the challenger's probabilities (isotonic or sigmoid) when "
        "that lowers Brier and ECE on the latest training days; off: serve the raw scores.",
    )
    calibration_share: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of the training split's snapshot days (the latest) that "
        "calibrators are fitted and judged on; at least one day, never all.",
    )
    calibration_min_positives: int = Field(
        default=100,
        ge=10,
        description="Fewer churners in the calibration days: no calibration is tried.",
    )
    calibration_min_negatives: int = Field(
        default=100,
        ge=10,
        description="Fewer non-churners in the calibration days: no calibration is tried.",
    )
    calibration_confidence: float = Field(
        default=0.95,
        gt=0.5,
        lt=1,
        description="One-sided confidence that a calibrator lowers the Brier score before it "
        "is applied (out-of-fold, rows grouped by customer).",
    )
