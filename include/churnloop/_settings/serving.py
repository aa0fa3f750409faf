"""Serving fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ServingSettings(BaseModel):
    """How the model server answers, what it refuses, how it writes its prediction log."""

    serving_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Churn probability from which the label is 1."
    )
    serving_poll_seconds: float = Field(
        default=10, gt=0, description="How often the server checks whether @champion moved."
    )
    serving_shadow_fraction: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of requests the @challenger also scores (logged, never answered).",
    )
    serving_max_instances: int = Field(
        default=1_000, ge=1, description="Most instances one batch /predict request may hold."
    )
    serving_max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Largest request body the model server reads (413 beyond); a full batch "
        "of serving_max_instances feature rows is about 1 MB.",
    )
    serving_max_instance_bytes: int = Field(
        default=2048,
        ge=64,
        description="Body bytes allowed per instance of serving_max_instances: a body over "
        "their product is refused (413) before it is parsed, so it cannot carry far more "
        "instances than the cap (a feature row of the 34 features is about 1 KB).",
    )
    serving_workers: int = Field(
        default=1, ge=1, description="uvicorn worker processes of `churnloop serve`."
    )
    prediction_log_flush_rows: int = Field(
        default=5_000, ge=1, description="Pending prediction-log rows that trigger a write."
    )
    prediction_log_flush_seconds: float = Field(
        default=60, gt=0, description="Longest a prediction-log row waits before it is written."
    )
    prediction_log_max_pending_rows: int = Field(
        default=500_000,
        ge=1,
        description="Unwritten rows kept while the lake is unreachable; older ones are dropped.",
    )
