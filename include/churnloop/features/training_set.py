"""Point-in-time training sets: validated labels joined with their features through Feast.

``training_set`` returns, for each labelled snapshot of a window, the features as of that
snapshot (never later); a label without features raises ``DataError`` instead of
vanishing.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnloop import storage
from churnloop.errors import DataError
from churnloop.features import definition
from churnloop.features.feast_config import (
    feature_store,
    registered_service,
    service_feature_names,
)
from churnloop.features.feast_extensions import duckdb_lake
from churnloop.schema import ENTITY, LABEL, LABEL_DELAY_DAYS, LABELS, TIMESTAMP, validated_dataset
from churnloop.settings import Settings

__all__ = ["training_set"]

log = logging.getLogger(__name__)

_UTC_NS = pa.timestamp("ns", tz="UTC")


def _days_in_window(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day from ``start`` through ``end``."""
    if end < start:
        raise ValueError(f"training window ends ({end}) before it starts ({start})")
    return [start + dt.timedelta(days=offset) for offset in range((end - start).days + 1)]


def _utc_ns(timestamps: pd.Series) -> pd.Series:
    return pd.to_datetime(timestamps, utc=True).dt.as_unit("ns")


def _labels(settings: Settings, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Validated labels of the snapshots of ``start``..``end`` (they arrive 30 days later)."""
    lake = storage.lake(settings)
    dataset = validated_dataset(LABELS)
    snapshot_days = _days_in_window(start, end)
    delay = dt.timedelta(days=LABEL_DELAY_DAYS)
    arrived = set(lake.partitions(dataset))
    unlabelled = [day for day in snapshot_days if day + delay not in arrived]
    if len(unlabelled) == len(snapshot_days):
        raise DataError(
            f"no validated labels for snapshot days {start}..{end}: their partitions "
            f"{start + delay}..{end + delay} are missing from {lake.uri_of(dataset)}"
        )
    if unlabelled:
        log.warning("snapshot days without validated labels, left out: %s", unlabelled)
    table = lake.read_days(
        dataset, [day + delay for day in snapshot_days], columns=[ENTITY, TIMESTAMP, LABEL]
    )
    labels = table.to_pandas()
    snapshot_date = labels[TIMESTAMP].dt.tz_convert("UTC").dt.date
    labels = labels[(snapshot_date >= start) & (snapshot_date <= end)].reset_index(drop=True)
    duplicated = labels.duplicated([ENTITY, TIMESTAMP])
    if duplicated.any():
        examples = labels.loc[duplicated, [ENTITY, TIMESTAMP]].head(5).to_dict("records")
        raise DataError(f"labels hold more than one row per snapshot, e.g. {examples}")
    return labels


def _require_every_label_joined(
    labels: pa.Table, joined: pa.Table, names: list[str], ttl_days: int
) -> None:
    """Fail, naming them, when labelled snapshots found no feature row.

    Feast keeps such a row with every feature empty (an offline store could also drop
    it): either way, no features for that label, which must not pass silently.
    """
    keys = [ENTITY, TIMESTAMP]
    featureless = functools.reduce(
        pc.and_, [pc.is_null(joined[name], nan_is_null=True) for name in names]
    )
    with_features = joined.select(keys).filter(pc.invert(featureless))
    missing = labels.select(keys).join(with_features, keys, join_type="left anti").to_pandas()
    if missing.empty:
        return
    missing = missing.sort_values([TIMESTAMP, ENTITY])
    per_day = missing[TIMESTAMP].dt.date.value_counts().sort_index()
    days = ", ".join(f"{day}: {count}" for day, count in per_day.items())
    examples = missing[ENTITY].head(5).tolist()
    raise DataError(
        f"{len(missing)} of {len(labels)} labelled snapshots have no feature row in the "
        f"{ttl_days} days up to them (per snapshot day: {days}; e.g. customers {examples}); "
        "build those days' features (build_feature_partition) or choose another window"
    )


def _with_utc_ns(table: pa.Table) -> pa.Table:
    """``table`` with its snapshot timestamps as UTC nanoseconds, as the labels hold them."""
    index = table.schema.get_field_index(TIMESTAMP)
    return table.set_column(index, TIMESTAMP, table[TIMESTAMP].cast(_UTC_NS))


def training_set(settings: Settings, start: dt.date, end: dt.date) -> pa.Table:
    """Labelled snapshots of ``start``..``end`` with their features as of each snapshot.

    The entity rows are the validated labels (``customer_id``, the snapshot's
    ``event_timestamp``, ``churned``); Feast joins each with the latest feature row at
    or before that timestamp, within the feature view's TTL, from the FeatureService.
    The label only rides along on the entity side, so it never reaches a feature.
    Every label keeps its row: one without features raises ``DataError``.
    Columns: entity, timestamp, ``feature_names`` in order, then ``churned``; rows by
    timestamp, then entity. The result stays in Arrow, from the join to the file.
    """
    labels = _labels(settings, start, end)
    labels[TIMESTAMP] = _utc_ns(labels[TIMESTAMP])
    if not storage.lake(settings).partitions(definition.DATASET):
        raise DataError("no feature partitions yet: build features before a training set")
    store = feature_store(settings)
    service = registered_service(store, settings)
    names = service_feature_names(service)
    duckdb_lake.prepare_for_lake(settings)
    job = store.get_historical_features(entity_df=labels, features=service)
    joined = _with_utc_ns(job.to_arrow())
    entity_rows = pa.Table.from_pandas(labels, preserve_index=False)
    _require_every_label_joined(entity_rows, joined, names, settings.feature_ttl_days)
    columns = [ENTITY, TIMESTAMP, *names, LABEL]
    return joined.select(columns).sort_by([(TIMESTAMP, "ascending"), (ENTITY, "ascending")])
