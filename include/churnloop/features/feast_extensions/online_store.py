"""A Feast online store for the embedded profile: one SQLite row per entity, not one per value.

Plugged in through ``online_store.type``: ``write_arrow`` writes a day straight from Arrow,
reads stay Feast's (``online_read`` answers in Feast's values, so statuses and TTLs are
Feast's). Scalar features only; a write replaces the entity's whole row. Not for production.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from feast import Entity, FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import compute_table_id
from feast.infra.online_stores.online_store import OnlineStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import FeastConfigBaseModel, RepoConfig
from feast.type_map import feast_value_type_to_python_type, python_values_to_proto_values
from feast.types import Bool, Bytes, Float32, Float64, Int32, Int64, String
from pydantic import StrictStr

from churnloop.features.feast_extensions import feast_encoding

STORE_TYPE = "churnloop.features.feast_extensions.online_store.WideSqliteOnlineStore"
_SCALAR_TYPES = (Bool, Bytes, Float32, Float64, Int32, Int64, String)
_KEYS_PER_QUERY = 10_000
"""Entity keys per SELECT, under SQLite's limit on bound parameters (32,766)."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TABLE_SUFFIX = "__by_entity"


class WideSqliteOnlineStoreConfig(FeastConfigBaseModel):
    """``online_store`` of ``feature_store.yaml``: ``type`` (this class) and ``path``."""

    type: Literal["churnloop.features.feast_extensions.online_store.WideSqliteOnlineStore"] = (
        STORE_TYPE
    )
    path: StrictStr = "data/online.db"
    """The SQLite file; relative paths are from the feature repo."""


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def store_path(config: RepoConfig) -> Path:
    """The SQLite file of ``config``'s online store (a relative path is from the repo)."""
    path = Path(config.online_store.path)
    if config.repo_path and not path.is_absolute():
        return Path(config.repo_path) / path
    return path


def select_by_keys(
    connection: sqlite3.Connection, table: str, columns: list[str], keys: list[bytes]
) -> list[tuple[Any, ...]]:
    """The rows of ``table`` (``entity_key``, then ``columns``) whose key is one of ``keys``,
    at most `_KEYS_PER_QUERY` keys per SELECT; none while the table does not exist
    (`feast apply` from the CLI creates no table here, only the SDK's apply calls
    ``update``: until the first write, every entity is unknown)."""
    selected = ", ".join(["entity_key", *map(quoted, columns)])
    rows: list[tuple[Any, ...]] = []
    for first in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[first : first + _KEYS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))
        query = f"SELECT {selected} FROM {table} WHERE entity_key IN ({marks})"
        try:
            rows += connection.execute(query, chunk).fetchall()
        except sqlite3.OperationalError as error:
            if "no such table" not in str(error):
                raise
            return []
    return rows


def _micros(timestamp: dt.datetime) -> int:
    if timestamp.tzinfo is None:  # Feast passes naive datetimes as UTC
        timestamp = timestamp.replace(tzinfo=dt.UTC)
    return (timestamp - _EPOCH) // dt.timedelta(microseconds=1)


def _feature_names(view: FeatureView) -> list[str]:
    return [field.name for field in view.features]


def _require_scalar_features(view: FeatureView) -> None:
    unsupported = [f"{f.name} ({f.dtype})" for f in view.features if f.dtype not in _SCALAR_TYPES]
    if unsupported:
        raise ValueError(
            f"feature view {view.name!r}: {STORE_TYPE} holds scalar features only, "
            f"not {', '.join(unsupported)}"
        )


class WideSqliteOnlineStore(OnlineStore):
    """A table per feature view: ``entity_key`` (Feast's serialized key), ``event_ts``
    (microseconds since the epoch, UTC), then a column per feature."""

    def __init__(self) -> None:
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    # -- connection and tables ---------------------------------------------------------

    def _connect(self, config: RepoConfig) -> sqlite3.Connection:
        """One connection per store, shared by Feast's reader threads (as Feast's own
        SQLite store does); write-ahead logging lets the model server read while a
        materialization writes."""
        with self._lock:
            if self._connection is None:
                path = store_path(config)
                path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(path, check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                self._connection = connection
            return self._connection

    @staticmethod
    def table_name(config: RepoConfig, view: FeatureView) -> str:
        """Feast's table name with a suffix, so that a file Feast's own SQLite store wrote
        (same name, a row per value) is never read or written as this layout."""
        versioned = config.registry.enable_online_feature_view_versioning
        return quoted(f"{compute_table_id(config.project, view, versioned)}{_TABLE_SUFFIX}")

    def _create(
        self, connection: sqlite3.Connection, config: RepoConfig, view: FeatureView
    ) -> None:
        """Create the view's table, or add the columns of features it gained."""
        _require_scalar_features(view)
        table = self.table_name(config, view)
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {table} "
            "(entity_key BLOB PRIMARY KEY, event_ts INTEGER NOT NULL) WITHOUT ROWID"
        )
        held = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        for name in _feature_names(view):
            if name not in held:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {quoted(name)}")

    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[FeatureView],
        tables_to_keep: Sequence[FeatureView],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
        partial: bool,
    ) -> None:
        connection = self._connect(config)
        with connection:
            for view in tables_to_keep:
                self._create(connection, config, view)
            for view in tables_to_delete:
                connection.execute(f"DROP TABLE IF EXISTS {self.table_name(config, view)}")

    def teardown(
        self, config: RepoConfig, tables: Sequence[FeatureView], entities: Sequence[Entity]
    ) -> None:
        connection = self._connect(config)
        with connection:
            for view in tables:
                connection.execute(f"DROP TABLE IF EXISTS {self.table_name(config, view)}")
        with self._lock:
            connection.close()
            self._connection = None

    # -- writes ------------------------------------------------------------------------

    def _write_rows(
        self, config: RepoConfig, view: FeatureView, rows: Iterable[Sequence[Any]]
    ) -> None:
        names = _feature_names(view)
        columns = ", ".join(["entity_key", "event_ts", *map(quoted, names)])
        values = ", ".join("?" * (len(names) + 2))
        connection = self._connect(config)
        with connection:
            self._create(connection, config, view)
            table = self.table_name(config, view)
            connection.executemany(
                f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({values})", rows
            )

    def write_arrow(self, config: RepoConfig, view: FeatureView, data: pa.Table) -> None:
        """Write ``data`` (the view's join keys, its source's timestamp field and every
        feature) in one transaction, without Feast's per-value protobufs.

        Values are stored as Arrow gives them to Python; a float NaN is stored as NULL,
        which Feast's own conversion also treats as no value.
        """
        version = config.entity_key_serialization_version
        keys = feast_encoding.serialized_keys(view, data, version)
        stamps = data.column(view.batch_source.timestamp_field)
        # Feast's own stores keep seconds; nanoseconds past the microsecond are dropped.
        in_micros = pc.cast(stamps, pa.timestamp("us", "UTC"), safe=False)
        micros = pc.cast(in_micros, pa.int64()).to_pylist()
        features = [data.column(name).to_pylist() for name in _feature_names(view)]
        self._write_rows(config, view, zip(keys, micros, *features, strict=True))

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], dt.datetime, dt.datetime | None]],
        progress: Any,
    ) -> None:
        """Feast's write path (``feast materialize``, ``write_to_online_store``): a
        feature missing from a row's values is stored as no value."""
        version = config.entity_key_serialization_version
        names = _feature_names(table)
        empty = ValueProto()
        rows = [
            (
                serialize_entity_key(key, entity_key_serialization_version=version),
                _micros(timestamp),
                *(feast_value_type_to_python_type(values.get(name, empty)) for name in names),
            )
            for key, values, timestamp, _created in data
        ]
        self._write_rows(config, table, rows)
        if progress:
            progress(len(data))

    # -- reads -------------------------------------------------------------------------

    def online_read(
        self,
        config: RepoConfig,
        table: FeatureView,
        entity_keys: list[EntityKeyProto],
        requested_features: list[str] | None = None,
    ) -> list[tuple[dt.datetime | None, dict[str, ValueProto] | None]]:
        version = config.entity_key_serialization_version
        types = {field.name: field.dtype.to_value_type() for field in table.features}
        names = requested_features or list(types)
        keys = [
            serialize_entity_key(k, entity_key_serialization_version=version) for k in entity_keys
        ]
        connection = self._connect(config)
        table_name = self.table_name(config, table)
        # one row per stored key asked for (the key is unique)
        rows = select_by_keys(connection, table_name, ["event_ts", *names], keys)
        values = {
            name: python_values_to_proto_values([row[2 + i] for row in rows], types[name])
            for i, name in enumerate(names)
        }
        by_key = {
            row[0]: (
                _EPOCH + dt.timedelta(microseconds=row[1]),
                {name: values[name][index] for name in names},
            )
            for index, row in enumerate(rows)
        }
        return [by_key.get(key, (None, None)) for key in keys]
