"""Shared by the features tests: two days of validated snapshots and labels in the lake,
and a check that the online store holds the rows of given feature partitions."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa

from churnloop.features import definition
from churnloop.features.feast_config import feature_names
from churnloop.features.online import FOUND, online_features
from churnloop.schema import (
    ENTITY,
    LABEL,
    LABEL_DELAY_DAYS,
    LABEL_SCHEMA,
    LABELS,
    SNAPSHOT_SCHEMA,
    SNAPSHOTS,
    TIMESTAMP,
    validated_dataset,
)
from churnloop.storage import lake
from tests.churnloop.features.test_definition import snapshot_rows

D1, D2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)


def write_snapshots(settings, day: dt.date, customers: dict[int, dict]) -> None:
    table = pa.Table.from_pandas(snapshot_rows(day, customers), SNAPSHOT_SCHEMA, False)
    lake(settings).write_table(validated_dataset(SNAPSHOTS), day, table)


def write_labels(settings, snapshot_day: dt.date, churned: dict[int, int]) -> None:
    midnight = dt.datetime.combine(snapshot_day, dt.time(), tzinfo=dt.UTC)
    rows = [{ENTITY: c, TIMESTAMP: midnight, LABEL: label} for c, label in churned.items()]
    arrival = snapshot_day + dt.timedelta(days=LABEL_DELAY_DAYS)
    table = pa.Table.from_pylist(rows, schema=LABEL_SCHEMA)
    lake(settings).write_table(validated_dataset(LABELS), arrival, table)


def partition(settings, day: dt.date) -> pd.DataFrame:
    return lake(settings).read_table(definition.DATASET, day).to_pandas().set_index(ENTITY)


def assert_online_holds(settings, expected: dict[int, dt.date]) -> None:
    """The online row of each customer equals its feature row of the given day."""
    online = online_features(settings, list(expected)).set_index(ENTITY)
    assert online[FOUND].all()
    names = feature_names(settings)
    for customer, day in expected.items():
        offline = partition(settings, day).loc[customer, names]
        assert online.loc[customer, names].tolist() == offline.tolist(), (customer, day)
