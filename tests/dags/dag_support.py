"""Shared set-up of the DAG tests: the lake as customer_data leaves it."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa

from churnloop import features, schema, storage
from churnloop.simulation import Scenario, generate_labels, generate_snapshots

START = dt.date(2026, 1, 1)
CUSTOMERS = 400


def publish_days(settings, scenario: Scenario, days: int) -> None:
    """What customer_data leaves in the lake: validated days, their features and labels.

    Written directly, not through the DAG, so that tests of the later DAGs do not pay for
    tens of customer_data runs (that DAG has its own tests).
    """
    from churnloop.feature_store import apply_definitions

    lake = storage.lake(settings)
    snapshot_days = [START + dt.timedelta(days=offset) for offset in range(days)]
    history = []
    for day in snapshot_days:
        snapshot = generate_snapshots(day, CUSTOMERS, scenario=scenario)
        lake.write_table(schema.validated_dataset(schema.SNAPSHOTS), day, snapshot)
        history.append(snapshot.to_pandas())
        arrival = day + dt.timedelta(days=schema.LABEL_DELAY_DAYS)
        labels = generate_labels(day, CUSTOMERS, scenario=scenario)
        lake.write_table(schema.validated_dataset(schema.LABELS), arrival, labels)
    frame = pd.concat(history, ignore_index=True)
    for day in snapshot_days:
        rows = features.build_features(frame, day)
        table = pa.Table.from_pandas(rows, schema=features.TABLE_SCHEMA, preserve_index=False)
        lake.write_table(features.DATASET, day, table)
    apply_definitions(settings)
