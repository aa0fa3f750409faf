"""Drift fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class DriftSettings(BaseModel):
    """When a day's features drifted from the reference, overall and per slice."""

    drift_numeric_method: Literal["psi", "wasserstein"] = Field(
        default="psi",
        description="Effect size for numeric columns: PSI on reference-quantile bins (counts "
        "missing values as a bin), or Wasserstein distance over the reference's std.",
    )
    drift_psi_threshold: float = Field(
        default=0.2, gt=0, description="PSI from which a numeric column or the score drifted."
    )
    drift_psi_bins: int = Field(
        default=10, ge=2, description="Quantile bins of the reference that PSI compares."
    )
    drift_wasserstein_threshold: float = Field(
        default=0.1, gt=0, description="Normed Wasserstein distance from which a column drifted."
    )
    drift_jensenshannon_threshold: float = Field(
        default=0.1, gt=0, description="Jensen-Shannon distance from which a categorical drifted."
    )
    drift_share_threshold: float = Field(
        default=0.5, gt=0, le=1, description="Share of drifted columns that is dataset drift."
    )
    drift_min_rows: int = Field(
        default=100,
        ge=2,
        description="Fewest rows per side (the whole day or a slice) for a drift verdict; "
        "fewer: insufficient data, never drift (see docs/drift.md).",
    )
    drift_alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Family-wise error rate of the drift tests: a column drifts only when its "
        "test of 'same distribution' rejects at this level, Holm-corrected over the columns "
        "compared (columns x slices for slice drift).",
    )
    drift_slice_columns: list[str] = Field(
        default=["plan", "region", "tenure_bucket"],
        description="Slices whose drift is checked on its own (JSON list); age_band and "
        "tenure_bucket are cut from age and tenure_months as the gate's slices are.",
    )
    drift_important_columns: list[str] = Field(
        default=["age", "monthly_charges", "plan", "contract", "region"],
        description="Columns whose drift alone triggers retraining (JSON list): who the "
        "customers are, which rolling aggregates do not change as history accumulates.",
    )
    drift_report_sample_rows: int = Field(
        default=50_000, ge=1_000, description="Rows per side the Evidently HTML is drawn from."
    )
