"""The data contract: what a daily customer snapshot and a label drop look like.

Names and types live here once; ingest coerces to them, the simulator produces them, and
the suites state the value rules. A drop is one ``data.parquet`` per dataset and day, with
no null, only finite numbers and UTC microsecond timestamps (docs/reliability.md).
"""

from __future__ import annotations

import pyarrow as pa

ENTITY = "customer_id"
TIMESTAMP = "event_timestamp"
LABEL = "churned"
PREDICTION = "prediction"
"""A model's churn probability for a row: in the drift reference and in the prediction log."""
LABEL_DELAY_DAYS = 30

SNAPSHOTS = "customer_snapshots"
LABELS = "churn_labels"
TRAINING_SETS = "training_sets"
"""Point-in-time training sets of continuous_training, one partition per as-of day."""

SNAPSHOT_SCHEMA = pa.schema(
    [
        pa.field(ENTITY, pa.int64()),
        pa.field(TIMESTAMP, pa.timestamp("us", tz="UTC")),
        pa.field("plan", pa.string()),
        pa.field("region", pa.string()),
        pa.field("contract", pa.string()),
        pa.field("age", pa.int32()),
        pa.field("tenure_months", pa.int32()),
        pa.field("monthly_charges", pa.float64()),
        pa.field("logins", pa.int32()),
        pa.field("session_minutes", pa.float64()),
        pa.field("support_tickets", pa.int32()),
        pa.field("payment_failures", pa.int32()),
        pa.field("spend", pa.float64()),
        pa.field("days_since_last_login", pa.int32()),
    ]
)

LABEL_SCHEMA = pa.schema(
    [
        pa.field(ENTITY, pa.int64()),
        pa.field(TIMESTAMP, pa.timestamp("us", tz="UTC")),
        pa.field(LABEL, pa.int8()),
    ]
)

FINITE_MAX = 1.7976931348623157e308
"""The largest finite float: the suites' upper bound of a column whose only bound is
being finite."""

CATEGORICAL = ("plan", "region", "contract")
NUMERIC = tuple(
    field.name for field in SNAPSHOT_SCHEMA if field.name not in (ENTITY, TIMESTAMP, *CATEGORICAL)
)

PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")
CONTRACTS = ("monthly", "annual")


def landing_dataset(dataset: str) -> str:
    """Where upstream drops a dataset in the landing zone."""
    return dataset


def raw_dataset(dataset: str) -> str:
    """Ingested, schema-coerced, not yet validated."""
    return f"raw/{dataset}"


def validated_dataset(dataset: str) -> str:
    return f"validated/{dataset}"


def quarantine_dataset(dataset: str) -> str:
    return f"quarantine/{dataset}"
