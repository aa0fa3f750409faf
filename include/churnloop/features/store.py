"""Feast for the loop: its configuration, the daily build and materialization, training
sets and online lookups.

The Feast configuration is built here from the settings (never from a checked-in
``feature_store.yaml``): in both profiles Feast's DuckDB offline store, reading only the
training window's rows and joining them as of each label (``feast_extensions.offline_store``),
over the lake's feature partitions (a folder, or S3 in production: see
``feast_extensions.duckdb_lake``); embedded, a SQLite online store with a row per customer
(``feast_extensions.online_store``) and a file registry; production, Feast's Redis online
store and a SQL registry in PostgreSQL. ``churnloop feast-yaml`` renders the same
configuration for the ``feast`` CLI and UI.

Materialization writes the day's already-built partition straight to the online store
from Arrow (``WideSqliteOnlineStore.write_arrow`` embedded, ``RedisArrowWriter.write_arrow``
on Redis, both in Feast's encodings without its protobuf per value) instead of
``FeatureStore.materialize``: it skips the offline store's
read-sort-deduplicate pass over the whole source and does not write the registry, so
it neither needs the file registry's single writer nor races it (``docs/benchmarks.md``
has the figures). Per customer, the online store ends up with the row of the latest
feature partition, whatever the order in which days are materialized (see
``materialize_day``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import importlib.util
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from feast import FeatureService, FeatureStore, RepoConfig
from feast.protos.feast.serving.ServingService_pb2 import FieldStatus

from churnloop import storage
from churnloop.errors import DataError
from churnloop.features import definition
from churnloop.features.definition import FEATURE_SERVICE, FEATURE_VIEW
from churnloop.features.feast_extensions import (
    duckdb_lake,
    offline_store,
    online_store,
    redis_online_writer,
)
from churnloop.schema import (
    ENTITY,
    LABEL,
    LABEL_DELAY_DAYS,
    LABELS,
    SNAPSHOTS,
    TIMESTAMP,
    validated_dataset,
)
from churnloop.settings import Settings

__all__ = [
    "FEATURE_SERVICE",
    "FOUND",
    "MaterializeStats",
    "OnlineFeatureReader",
    "apply_definitions",
    "build_feature_partition",
    "feast_config",
    "feature_names",
    "feature_store",
    "holds_current_value",
    "materialize_day",
    "online_features",
    "training_set",
    "write_feature_store_yaml",
]

log = logging.getLogger(__name__)

DEFINITIONS_FILE = "churn_features.py"
FOUND = "found"
"""Column of ``online_features`` telling whether the online store knows the customer."""
_SQL_REGISTRY_SCHEMES = ("postgresql", "mysql", "sqlite:")
_UTC_NS = pa.timestamp("ns", tz="UTC")


# -- configuration -----------------------------------------------------------------------


def _sql_registry(settings: Settings) -> bool:
    return settings.feast_registry.startswith(_SQL_REGISTRY_SCHEMES)


def feast_config(settings: Settings, *, env_references: bool = False) -> dict[str, Any]:
    """The Feast repo configuration for the settings' profile, as ``feature_store.yaml`` holds it.

    With ``env_references``, values that only come from the environment and may carry
    credentials (a registry URL, a Redis connection string) are written as
    ``${CHURNLOOP_...}`` references, which Feast expands when it loads the file.
    """
    registry: dict[str, Any] = {
        "registry_type": "sql" if _sql_registry(settings) else "file",
        "path": "${CHURNLOOP_FEAST_REGISTRY}"
        if env_references and _sql_registry(settings)
        else settings.feast_registry,
        "cache_ttl_seconds": settings.feast_registry_cache_ttl_seconds,
    }
    if settings.feast_redis:
        redis = "${CHURNLOOP_FEAST_REDIS}" if env_references else settings.feast_redis
        # Redis would skip a row whose timestamp equals the stored one, so a rebuilt day
        # would not replace its values; materialize_day decides what is newer itself.
        online: dict[str, Any] = {"type": "redis", "connection_string": redis, "skip_dedup": True}
    else:
        online = {"type": online_store.STORE_TYPE, "path": settings.feast_sqlite_path}
    return {
        "project": settings.feast_project,
        "provider": "local",
        "registry": registry,
        "online_store": online,
        # DuckDB joins in SQL: at 100k customers 7.7x faster than the file (Dask)
        # store's pandas merges, for the same rows (docs/benchmarks.md); this one reads
        # only the feature rows the window can join (feast_extensions.offline_store).
        "offline_store": {"type": offline_store.STORE_TYPE},
        "entity_key_serialization_version": 3,
    }


def _create_local_folders(settings: Settings) -> None:
    """Feast writes its file registry and SQLite store but does not create their folders."""
    local_files = [settings.feast_sqlite_path] if not settings.feast_redis else []
    if not _sql_registry(settings):
        local_files.append(settings.feast_registry)
    for path in local_files:
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def feature_store(settings: Settings) -> FeatureStore:
    """A FeatureStore on the settings' profile."""
    _create_local_folders(settings)
    repo_config = RepoConfig(**feast_config(settings), repo_path=settings.feature_repo_dir)
    return FeatureStore(repo_path=str(settings.feature_repo_dir), config=repo_config)


def write_feature_store_yaml(settings: Settings) -> Path:
    """Render ``feature_repo/feature_store.yaml`` (git-ignored) for the ``feast`` CLI and UI.

    Registry and online store work from it as they do in the tasks. Offline reads of an
    S3 lake by the bare CLI do not: DuckDB gets its httpfs extension and S3 secret from
    ``churnloop.features.feast_extensions.duckdb_lake``, which only churnloop's own code calls.
    """
    _create_local_folders(settings)
    path = settings.feature_repo_dir / "feature_store.yaml"
    text = yaml.safe_dump(feast_config(settings, env_references=True), sort_keys=False)
    path.write_text(f"# Rendered by `churnloop feast-yaml` from the settings; do not edit.\n{text}")
    return path


# -- definitions -------------------------------------------------------------------------


@functools.cache
def _definitions_module(path: Path) -> ModuleType:
    """``feature_repo/churn_features.py``, loaded by path as ``feast apply`` would."""
    spec = importlib.util.spec_from_file_location("churnloop_feature_repo", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no Feast definitions at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _definitions(settings: Settings) -> tuple[Any, ...]:
    module = _definitions_module(settings.feature_repo_dir / DEFINITIONS_FILE)
    return module.definitions(settings)


def _names_of(service: FeatureService) -> list[str]:
    return [
        feature.name
        for projection in service.feature_view_projections
        for feature in projection.features
    ]


def feature_names(settings: Settings) -> list[str]:
    """The model's input columns, in order: the features of ``FEATURE_SERVICE``."""
    service = next(obj for obj in _definitions(settings) if isinstance(obj, FeatureService))
    return _names_of(service)


def _registered_service(store: FeatureStore, settings: Settings) -> FeatureService:
    """``FEATURE_SERVICE`` as registered; refuses a registry that lags the definitions."""
    service = store.get_feature_service(FEATURE_SERVICE)
    if _names_of(service) != feature_names(settings):
        raise RuntimeError(
            f"the Feast registry's {FEATURE_SERVICE} differs from feature_repo/"
            f"{DEFINITIONS_FILE}: run `churnloop feast-apply` (apply_definitions)"
        )
    return service


def apply_definitions(settings: Settings) -> None:
    """Register the definitions and create the online tables; what ``feast apply`` does.

    Idempotent. Feature views and services of the project that the definitions no
    longer declare are removed, as ``feast apply`` would. Registry writes must not run
    concurrently against a file registry: callers serialize them (an Airflow pool of 1).
    """
    objects = list(_definitions(settings))
    store = feature_store(settings)
    declared = {obj.name for obj in objects}
    stale = [
        obj
        for obj in [*store.list_feature_views(), *store.list_feature_services()]
        if obj.name not in declared
    ]
    store.apply(objects, objects_to_delete=stale, partial=False)
    removed = [obj.name for obj in stale]
    log.info("applied Feast definitions to project %s (removed: %s)", store.project, removed)


# -- offline: daily partitions and training sets ----------------------------------------


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


def _snapshot_days(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise ValueError(f"training window ends ({end}) before it starts ({start})")
    return [start + dt.timedelta(days=offset) for offset in range((end - start).days + 1)]


def _utc_ns(timestamps: pd.Series) -> pd.Series:
    return pd.to_datetime(timestamps, utc=True).dt.as_unit("ns")


def _labels(settings: Settings, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Validated labels of the snapshots of ``start``..``end`` (they arrive 30 days later)."""
    lake = storage.lake(settings)
    dataset = validated_dataset(LABELS)
    snapshot_days = _snapshot_days(start, end)
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
    timestamp, then entity.

    DuckDB runs the join (Feast's DuckDB offline store, as `feast_extensions.offline_store`
    extends it: the window's feature rows only, an ASOF join on the customer). Past one
    machine, a warehouse or Spark offline store replaces it by configuration. The result
    stays in Arrow, from the join to the file: a pandas round trip cost a third of a
    second at 700k rows and a copy of them.
    """
    labels = _labels(settings, start, end)
    labels[TIMESTAMP] = _utc_ns(labels[TIMESTAMP])
    if not storage.lake(settings).partitions(definition.DATASET):
        raise DataError("no feature partitions yet: build features before a training set")
    store = feature_store(settings)
    service = _registered_service(store, settings)
    names = _names_of(service)
    duckdb_lake.prepare_for_lake(settings)
    job = store.get_historical_features(entity_df=labels, features=service)
    joined = _with_utc_ns(job.to_arrow())
    entity_rows = pa.Table.from_pandas(labels, preserve_index=False)
    _require_every_label_joined(entity_rows, joined, names, settings.feature_ttl_days)
    columns = [ENTITY, TIMESTAMP, *names, LABEL]
    return joined.select(columns).sort_by([(TIMESTAMP, "ascending"), (ENTITY, "ascending")])


# -- online: materialization and lookups -------------------------------------------------


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

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe, for an Airflow task's return value."""
        values = dataclasses.asdict(self)
        for name in ("days", "missing_days"):
            values[name] = [day.isoformat() for day in values[name]]
        return values


def _in_online_key_order(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s rows in the order the online store's keys sort, for writing.

    Feast keys a customer's online rows by its serialized entity key, in which the
    integer id is 8 little-endian bytes, so ids ordered by those bytes (the id with its
    bytes reversed) fill SQLite's B-tree in key order instead of at random places. At
    1M customers this wrote Feast's SQLite store 30% faster and in linear time
    (docs/benchmarks.md); the row-per-customer store is keyed the same way; Redis, a
    hash table, does not care. Only the speed depends on Feast's key layout, not what
    is written; a test checks the order against Feast's own serialization.
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
    only the customer column of later partitions, not the online store (reading 100k
    customers back from SQLite took a quarter of the time of writing them). Rows are sent in
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


def holds_current_value(vector: Any, index: int) -> bool:
    """Whether row ``index`` of a Feast online response's feature vector is a current value.

    The stores say "no value" differently: SQLite answers a customer it never stored with
    status NOT_FOUND, Redis with status PRESENT, no value and event timestamp 0; a value
    past the feature view's TTL is OUTSIDE_MAX_AGE. Present and stamped covers them all.
    """
    return (
        vector.statuses[index] == FieldStatus.PRESENT and vector.event_timestamps[index].seconds > 0
    )


class OnlineFeatureReader:
    """Online features of the FeatureService for the model server's hot path.

    Holds one FeatureStore, so the registry is read once and cached for
    ``settings.feast_registry_cache_ttl_seconds``, and connections are reused; ``store``,
    ``service`` and ``names`` are public for callers that read Feast's response
    themselves (the model server's per-request rows, ``churnloop.serving.features``).

    Unknown customers (never materialized, or every value past the TTL; see
    ``holds_current_value``) are not an error: ``read`` gives them a row
    with ``found == False`` and every feature missing (None, or NaN in numeric
    columns). The caller decides what to serve for them; predicting from missing
    values is not meaningful. Rows follow the order asked, duplicates included.
    """

    def __init__(self, settings: Settings) -> None:
        self.store = feature_store(settings)
        self.service = _registered_service(self.store, settings)
        self.names = _names_of(self.service)
        self._schema = pa.schema(
            [
                pa.field(ENTITY, pa.int64()),
                pa.field(FOUND, pa.bool_()),
                *(definition.TABLE_SCHEMA.field(name) for name in self.names),
            ]
        )

    def read(self, customer_ids: Sequence[int]) -> pd.DataFrame:
        """Columns: ``customer_id``, ``found``, then ``feature_names`` in order."""
        columns: dict[str, list[Any]] = {ENTITY: [int(customer) for customer in customer_ids]}
        if columns[ENTITY]:
            response = self.store.get_online_features(features=self.service, entity_rows=columns)
            values = response.to_dict()
            proto = response.proto
            vectors = dict(zip(proto.metadata.feature_names.val, proto.results, strict=True))
            columns[FOUND] = [
                any(holds_current_value(vectors[name], index) for name in self.names)
                for index in range(len(columns[ENTITY]))
            ]
            columns.update((name, values[name]) for name in self.names)
        else:
            columns.update((name, []) for name in [FOUND, *self.names])
        return pa.Table.from_pydict(columns, schema=self._schema).to_pandas()


def online_features(settings: Settings, customer_ids: Sequence[int]) -> pd.DataFrame:
    """One-off online lookup (see ``OnlineFeatureReader``, which a server should hold)."""
    return OnlineFeatureReader(settings).read(customer_ids)
