"""Reading the embedded profile's SQLite online store directly: one SELECT per feature view.

Feast's read of `WideSqliteOnlineStore` builds protobuf keys, values and a response proto
for every request, in a worker thread (SQLite has no async read). The store is ours
(``online_store``), so `SqliteDirectReader` reads its rows itself: the serialized key as
``feast_encoding`` lays it out, each value typed as Feast's round trip types it (a
Float32 rounded to single precision, a Bool from SQLite's 0/1). A primary-key SELECT takes
tens of microseconds, less than the hand-off to a thread, so it runs on the caller's
event loop, on a read-only connection of its own (write-ahead logging: a materialization
does not block it).

TTL, as Feast's read of this store: none is applied at read time (a row past its view's
TTL is served); a customer never written, or whose table does not exist yet, is unknown.
`sqlite_direct_reader` returns None for another store, or, with a warning, when Feast's
keys are not laid out as read here.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from feast import FeatureService, FeatureStore, FeatureView, RepoConfig
from feast.types import Bool, Bytes, FeastType, Float32, Float64, Int32, Int64, String

from churnloop.features.feast_extensions.feast_encoding import (
    int64_key_prefix,
    int64_keys,
    shared_int64_join_key,
)
from churnloop.features.feast_extensions.online_store import (
    WideSqliteOnlineStore,
    WideSqliteOnlineStoreConfig,
    select_by_keys,
    store_path,
)

log = logging.getLogger(__name__)

_TYPED: dict[FeastType, Callable[[Any], Any]] = {
    Int32: int,
    Int64: int,
    Float32: lambda value: float(np.float32(value)),
    Float64: float,
    String: str,
    Bool: bool,
    Bytes: bytes,
}
"""Per feature type, a stored value as Feast's read answers it."""


@dataclass(frozen=True)
class ViewRead:
    """One feature view's SELECT: its table, its features and their types."""

    table: str
    names: list[str]
    typed: list[Callable[[Any], Any]]


class SqliteDirectReader:
    """The features of one FeatureService for a list of customers, read straight from the
    embedded profile's SQLite store; answers equal Feast's (the tests compare them)."""

    def __init__(self, path: Path, key_prefix: bytes, reads: list[ViewRead]) -> None:
        self._path, self._key_prefix, self._reads = path, key_prefix, reads
        self._connection: sqlite3.Connection | None = None

    def keys(self, customer_ids: Sequence[int]) -> list[bytes]:
        return int64_keys(customer_ids, self._key_prefix)

    async def read(self, customer_ids: Sequence[int]) -> list[tuple[dict[str, Any], bool]]:
        """Per customer, in the order asked: its stored values by feature name (None where
        missing) and whether any feature view holds a row for it."""
        keys = self.keys(customer_ids)
        values: list[dict[str, Any]] = [{} for _ in keys]
        found = [False] * len(keys)
        for read in self._reads:
            rows = self._select(read, keys)
            for index, key in enumerate(keys):
                stored = rows.get(key)
                found[index] = found[index] or stored is not None
                if stored is None:
                    stored = (None,) * len(read.names)
                for name, typed, value in zip(read.names, read.typed, stored, strict=True):
                    values[index][name] = None if value is None else typed(value)
        return list(zip(values, found, strict=True))

    def _select(self, read: ViewRead, keys: list[bytes]) -> dict[bytes, tuple[Any, ...]]:
        """The stored features of ``keys``, by key."""
        distinct = list(dict.fromkeys(keys))
        rows = select_by_keys(self._connect(), read.table, read.names, distinct)
        return {row[0]: row[1:] for row in rows}

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            uri = f"{self._path.resolve().as_uri()}?mode=ro"
            self._connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        return self._connection


def sqlite_direct_reader(store: FeatureStore, service: FeatureService) -> SqliteDirectReader | None:
    """A direct reader of ``service`` if ``store`` is the embedded profile's SQLite store
    and its keys are laid out as read here; None otherwise (Feast's read stays in use:
    quietly for another store, with a warning for a changed layout)."""
    config = store.config
    if not isinstance(config.online_store, WideSqliteOnlineStoreConfig):
        return None
    projections = service.feature_view_projections
    views = [store.get_feature_view(projection.name) for projection in projections]
    prefix = _key_prefix(views, config.entity_key_serialization_version)
    if prefix is None:
        log.warning(
            "online features read through Feast, not directly: the entity keys are not "
            "one INT64 join key laid out as read here"
        )
        return None
    reads = [
        _view_read(config, view, [feature.name for feature in projection.features])
        for projection, view in zip(projections, views, strict=True)
    ]
    return SqliteDirectReader(store_path(config), prefix, reads)


def _key_prefix(views: list[FeatureView], version: int) -> bytes | None:
    join_key = shared_int64_join_key(views)
    return None if join_key is None else int64_key_prefix(join_key, version)


def _view_read(config: RepoConfig, view: FeatureView, names: list[str]) -> ViewRead:
    types = {feature.name: feature.dtype for feature in view.features}
    return ViewRead(
        table=WideSqliteOnlineStore.table_name(config, view),
        names=names,
        typed=[_TYPED[types[name]] for name in names],
    )
