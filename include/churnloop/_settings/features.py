"""Feature fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FeatureSettings(BaseModel):
    """How features reach Feast, and how old a feature row a training example may join."""

    feast_pool_slots: int = Field(
        default=1,
        ge=1,
        description="Slots of the Airflow pool for Feast writes (1 for a file "
        "registry; more with the SQL registry).",
    )
    feature_ttl_days: int = Field(
        default=2,
        ge=1,
        description="Feast feature view TTL: the oldest feature row a training example may "
        "join when its own day's row is missing; older gaps fail the training set.",
    )
    materialize_overlap_days: int = Field(
        default=1,
        ge=0,
        description="Days before the logical day re-materialized with it, to carry late rows.",
    )
    feast_online_write_batch_rows: int = Field(
        default=20_000, gt=0, description="Rows per write to the online store (bounds memory)."
    )
    feast_registry_cache_ttl_seconds: int = Field(
        default=60,
        ge=0,
        description="How long a process trusts its cached Feast registry; a new apply is seen "
        "by long-running readers (the model server) after at most this.",
    )
