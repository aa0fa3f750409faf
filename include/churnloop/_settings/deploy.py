"""Deploy fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DeploySettings(BaseModel):
    """How the deploy step proves the server serves the new champion as it was trained."""

    deploy_timeout_seconds: float = Field(
        default=120, gt=0, description="How long the deploy step waits for the server to serve."
    )
    deploy_smoke_rows: int = Field(
        default=200, ge=1, description="Reference rows the deploy step scores on the server."
    )
    deploy_skew_tolerance: float = Field(
        default=1e-6,
        ge=0,
        description="Largest |served - offline| probability the deploy step accepts.",
    )
    deploy_start_server: bool = Field(
        default=True,
        description="Let the deploy step start `churnloop serve` when nothing answers at a "
        "loopback serving_url (embedded profile); a remote server is never started.",
    )
