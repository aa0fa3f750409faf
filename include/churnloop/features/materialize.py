"""Materialization: built feature partitions into the online store, straight from Arrow.

``materialize_day`` writes a day (and a small overlap) so that, per customer, the online
store holds the row of its latest feature partition, whatever order days are materialized
in; ``materialize_features`` is the daily task: register the definitions, then that.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from feast import FeatureStore

from churnloop import storage
from churnloop.errors import DataError
from churnloop.features import definition
from churnloop.features.definition import FEATURE_VIEW
from churnloop.features.feast_config import apply_definitions, feature_store
from churnloop.features.feast_extensions import online_store, redis_online_writer
from churnloop.schema import ENTITY
from churnloop.settings import Settings

__all__ = ["MaterializeStats", "materialize_day", "materialize_features"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MaterializeStats:
    """What ``materialize_day`` wrote to the online store."""

    days: list[dt.date]
    rows_read: int
    rows_written: int
    rows_superseded: int
    """Rows not written because a later feature partition holds that customer."""
    seconds: float
    missing_days: list[dt.date] = dataclasses.field(default_factory=list)
    """Overlap days that have no feature partition (nothing to carry)."""

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, for an Airflow task's return value."""
        values = dataclasses.asdict(self)
        for name in ("days", "missing_days"):
            values[name] = [day.isoformat() for day in values[name]]
        return values


def _in_online_key_order(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s rows in the order the online store's keys sort, for writing.

    Feast's serialized entity key holds the integer id as 8 little-endian bytes, so ids
    ordered by those bytes (the id with its bytes reversed) fill SQLite's B-tree in key
    order. Only the write speed depends on it; a test pins the order against Feast's.
    """
    key = frame[ENTITY].to_numpy().astype("<u8").byteswap()
    return frame.iloc[np.argsort(key, kind="stable")]


def _customers_in(lake: storage.Store, days: Sequence[dt.date]) -> np.ndarray:
    """The distinct customers of the feature partitions of ``days``."""
    ids = [lake.read_table(definition.DATASET, day, [ENTITY]).column(0).to_numpy() for day in days]
    return np.unique(np.concatenate(ids)) if ids else np.array([], dtype=np.int64)


def _online_writer(store: FeatureStore) -> Callable[[pd.DataFrame], None]:
    """How ``materialize_day`` writes rows of the feature view online: straight from Arrow
    into the embedded profile's row-per-customer store (``feast_extensions.online_store``) and
    into Redis in ``skip_dedup`` mode, the production profile's
    (``feast_extensions.redis_online_writer``); through Feast's ``write_to_online_store`` into
    any other store."""
    config = store.config
    if isinstance(config.online_store, online_store.WideSqliteOnlineStoreConfig):
        writer: Any = online_store.WideSqliteOnlineStore()
    elif redis_online_writer.writes_arrow(config.online_store):
        writer = redis_online_writer.RedisArrowWriter()
    else:
        return functools.partial(store.write_to_online_store, FEATURE_VIEW)
    view = store.get_feature_view(FEATURE_VIEW)

    def write(rows: pd.DataFrame) -> None:
        writer.write_arrow(config, view, pa.Table.from_pandas(rows, preserve_index=False))

    return write


def materialize_day(
    settings: Settings, day: dt.date, overlap_days: int | None = None
) -> MaterializeStats:
    """Write ``day``'s feature partition, and the ``overlap_days`` before it, online.

    The overlap re-sends days that late rows may have changed. A customer's row is
    written unless a later feature partition also holds that customer, so the online
    store converges to each customer's row from its latest partition, whatever the
    order days are materialized in and however often: the state of materializing every
    day once, in order. A rebuilt day overwrites its own earlier rows. The check reads
    only the customer column of later partitions, not the online store. Rows are sent in
    batches of ``settings.feast_online_write_batch_rows``. Runs must not overlap (the
    Airflow pool of one for Feast writes).
    """
    overlap = settings.materialize_overlap_days if overlap_days is None else overlap_days
    if overlap < 0:
        raise ValueError(f"overlap_days must be >= 0, not {overlap}")
    started = time.perf_counter()
    lake = storage.lake(settings)
    held = set(lake.partitions(definition.DATASET))
    if day not in held:
        raise DataError(
            f"no feature partition for {day} in {lake.uri_of(definition.DATASET)}: "
            "build it (build_feature_partition) before materializing"
        )
    wanted = [day - dt.timedelta(days=offset) for offset in range(overlap, -1, -1)]
    days = [d for d in wanted if d in held]
    write = _online_writer(feature_store(settings))
    batch = settings.feast_online_write_batch_rows
    later = _customers_in(lake, sorted(d for d in held if d > day))
    rows_read = rows_written = 0
    for partition_day in reversed(days):
        frame = lake.read_table(definition.DATASET, partition_day).to_pandas()
        rows_read += len(frame)
        current = _in_online_key_order(frame[~frame[ENTITY].isin(later)])
        for first in range(0, len(current), batch):
            write(current.iloc[first : first + batch])
        rows_written += len(current)
        later = np.union1d(later, frame[ENTITY].to_numpy())
    stats = MaterializeStats(
        days=days,
        rows_read=rows_read,
        rows_written=rows_written,
        rows_superseded=rows_read - rows_written,
        seconds=time.perf_counter() - started,
        missing_days=[d for d in wanted if d not in held],
    )
    log.info("materialized %s", stats)
    return stats


def materialize_features(settings: Settings, day: dt.date) -> dict[str, Any]:
    """The daily materialization: register the definitions, write ``day`` (and its overlap)
    online, log what was written; returns ``MaterializeStats.to_dict()``."""
    apply_definitions(settings)
    stats = materialize_day(settings, day)
    log.info(
        "materialized %s rows of %s (%s rows/s)",
        f"{stats.rows_written:,}",
        stats.days,
        f"{stats.rows_per_second:,.0f}",
    )
    return stats.to_dict()


def features_event(day: dt.date, stats: dict[str, Any]) -> dict[str, Any]:
    """The ``customer_features`` asset event's extra: which day went online, and how much."""
    return {
        "day": day.isoformat(),
        "rows_written": stats["rows_written"],
        "rows_read": stats["rows_read"],
        "days_read": stats["days"],
    }
