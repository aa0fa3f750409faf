"""The daily build: one day's feature partition from the validated snapshots.

``build_feature_partition`` writes ``features/customer_features/dt=DAY`` (Feast's offline
source, ``definition.TABLE_SCHEMA``); re-running a day replaces its partition.
"""

from __future__ import annotations

import datetime as dt
import logging

import pyarrow as pa

from churnloop import storage
from churnloop.errors import DataError
from churnloop.features import definition
from churnloop.schema import ENTITY, SNAPSHOTS, validated_dataset
from churnloop.settings import Settings

__all__ = ["build_feature_partition"]

log = logging.getLogger(__name__)


def build_feature_partition(settings: Settings, day: dt.date) -> str:
    """Build ``day``'s features from the validated snapshots and write its partition.

    Reads the day's snapshot whole and, of the lookback's earlier days, only the
    activity columns, one partition at a time. Re-running replaces the partition.
    Returns its URI.
    """
    lake = storage.lake(settings)
    snapshots = validated_dataset(SNAPSHOTS)
    try:
        today = lake.read_table(snapshots, day).to_pandas()
    except storage.PartitionNotFound as error:
        raise DataError(f"cannot build features for {day}: {error}") from error
    today = definition.snapshot_of_day(today, day)
    windows = definition.RollingWindows(day, today[ENTITY])
    windows.add(today)
    held = set(lake.partitions(snapshots))
    earlier = [d for d in definition.lookback_days(day)[:-1] if d in held]
    for history_day in earlier:
        windows.add(lake.read_table(snapshots, history_day, definition.HISTORY_COLUMNS).to_pandas())
    frame = definition.assemble(today, windows)
    table = pa.Table.from_pandas(frame, schema=definition.TABLE_SCHEMA, preserve_index=False)
    uri = lake.write_table(definition.DATASET, day, table)
    log.info(
        "features of %s: %d customers from %d snapshot days -> %s",
        day,
        len(frame),
        len(earlier) + 1,
        uri,
    )
    return uri
