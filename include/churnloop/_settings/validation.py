"""Validation fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ValidationSettings(BaseModel):
    """What a daily drop must hold to pass, and how much of the Data Docs index is built."""

    snapshot_min_rows: int = Field(default=50, description="Fewest rows a daily drop may have.")
    snapshot_max_rows: int = Field(default=5_000_000, description="Most rows in a daily drop.")
    data_docs_index_runs: int = Field(
        default=60,
        ge=1,
        description="Newest validation runs the Data Docs index lists (bounds its build); every "
        "failed one is listed besides.",
    )
