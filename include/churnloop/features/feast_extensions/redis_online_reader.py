"""Reading Feast's Redis online store directly: one write of HMGETs per request.

Feast's own read builds protobuf entity keys, a response proto and its statuses in Python
for every request (about 0.7 ms of CPU for one customer). `RedisDirectReader` reads the same
hashes with the layout ``feast_encoding`` and ``redis_online_writer`` already own: the
entity key as a fixed prefix and the id's 8 bytes, then the project; fields named by Feast's
own helper. `direct_reader` checks that layout against Feast's before use and otherwise
returns None (with a warning), so that the caller keeps Feast's read.

TTL, as in Feast's Redis read: none is applied at read time. A value past the feature
view's TTL is served with its event time, and a customer whose Redis key expired
(``key_ttl_seconds``) or was never written is unknown (no values, ``found`` False).

Feast's private parts it touches, all checked by the tests against a real Redis:
``FeatureStore._get_provider`` (the store's ``RedisOnlineStore``, whose client's pool makes
the reader's connections, `redis_connections`), ``RedisOnlineStore._get_client_async``,
``_generate_hset_keys_for_features`` and ``_generate_redis_keys_for_entities`` (the layout
check). The speed it buys is in docs/benchmarks.md (serving).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

from feast import FeatureService, FeatureStore, FeatureView, RepoConfig
from feast.infra.online_stores.redis import (
    RedisClient,
    RedisOnlineStore,
    RedisOnlineStoreConfig,
    RedisType,
)
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from google.protobuf.timestamp_pb2 import Timestamp

from churnloop.features.feast_extensions.feast_encoding import (
    int64_key_prefix,
    int64_keys,
    python_value,
    shared_int64_join_key,
)
from churnloop.features.feast_extensions.redis_connections import HmgetCommand, OwnConnections
from churnloop.features.feast_extensions.redis_online_writer import hash_fields

log = logging.getLogger(__name__)

LAYOUT = "Feast's Redis keys differ from the layout read here (a changed Feast layout)"
DECODED_VALUES_KEPT = 2**16
"""Distinct stored values whose decoding is kept (a few MB)."""
_PROBE_IDS = (0, 1, -(2**62) - 3)
"""Entity ids whose keys must equal Feast's for the direct read to be used."""


class RedisDirectReader:
    """The features of one FeatureService for a list of customers, read straight from
    Redis; answers equal Feast's ``get_online_features`` (the tests compare them)."""

    def __init__(
        self,
        connections: OwnConnections,
        key_prefix: bytes,
        project: bytes,
        reads: list[tuple[list[str], HmgetCommand]],
    ) -> None:
        self._connections = connections
        self._key_prefix, self._project = key_prefix, project
        self._reads = reads  # per feature view: its feature names and their HMGET

    def keys(self, customer_ids: Sequence[int]) -> list[bytes]:
        return int64_keys(customer_ids, self._key_prefix, self._project)

    async def read(self, customer_ids: Sequence[int]) -> list[tuple[dict[str, Any], bool]]:
        """Per customer, in the order asked: its values by feature name (None where
        missing) and whether any feature view holds a row for it."""
        keys = self.keys(customer_ids)
        commands = b"".join(command.packed(key) for key in keys for _, command in self._reads)
        per_customer = len(self._reads)
        replies = await self._connections.exchange(commands, len(keys) * per_customer)
        return [
            self._decode(replies[index * per_customer : (index + 1) * per_customer])
            for index in range(len(keys))
        ]

    def _decode(self, replies: list[list[bytes | None]]) -> tuple[dict[str, Any], bool]:
        values: dict[str, Any] = {}
        found = False
        for (names, _), reply in zip(self._reads, replies, strict=True):
            *features, stamp = reply
            found = found or (stamp is not None and Timestamp.FromString(stamp).seconds > 0)
            for name, raw in zip(names, features, strict=True):
                values[name] = _value(raw)
        return values, found


@functools.lru_cache(maxsize=DECODED_VALUES_KEPT)
def _value(raw: bytes | None) -> Any:
    """A stored value, decoded once per distinct bytes: categories, flags and counts repeat
    across customers, and a cached one costs a lookup, not a protobuf parse (a request's
    34 values: ~10 µs rather than ~35; the values are immutable, so sharing them is safe)."""
    return python_value(ValueProto.FromString(raw)) if raw else None


def direct_reader(store: FeatureStore, service: FeatureService) -> RedisDirectReader | None:
    """A direct reader of ``service`` if ``store`` is Redis and its layout is the one we
    read; None otherwise (Feast's read stays in use: quietly for another store, with a
    warning for a Redis layout that has changed)."""
    config = store.config
    if not isinstance(config.online_store, RedisOnlineStoreConfig):
        return None
    online = store._get_provider().online_store
    projections = service.feature_view_projections
    views = [store.get_feature_view(projection.name) for projection in projections]
    why_not = _unusable(config, online, views)
    prefix = join_key = None
    if why_not is None:
        join_key = shared_int64_join_key(views)
        prefix = int64_key_prefix(join_key, config.entity_key_serialization_version)
    if prefix is None:
        log.warning("online features read through Feast, not directly: %s", why_not or LAYOUT)
        return None
    reads = []
    for projection, view in zip(projections, views, strict=True):
        names = [feature.name for feature in projection.features]
        fields = hash_fields(online, config, view, list(names))[1]  # Feast appends to its list
        reads.append((names, HmgetCommand(fields)))
    connections = OwnConnections(functools.partial(online._get_client_async, config.online_store))
    project = config.project.encode("utf-8")
    reader = RedisDirectReader(connections, prefix, project, reads)
    probes = [
        EntityKeyProto(join_keys=[join_key], entity_values=[ValueProto(int64_val=probe)])
        for probe in _PROBE_IDS
    ]
    if reader.keys(_PROBE_IDS) != online._generate_redis_keys_for_entities(config, probes):
        log.warning("online features read through Feast, not directly: %s", LAYOUT)
        return None
    return reader


def _unusable(config: RepoConfig, online: Any, views: list[FeatureView]) -> str | None:
    """Why the direct read cannot stand in for Feast's here, before its layout is probed."""
    if not isinstance(online, RedisOnlineStore):
        return f"the online store is {type(online).__name__}, not Feast's RedisOnlineStore"
    if config.online_store.client != RedisClient.redis:
        return f"Redis client {config.online_store.client!r} (the direct read uses redis-py)"
    if config.online_store.redis_type == RedisType.redis_cluster:
        return "a Redis cluster (the direct read sends a request's commands to one server)"
    if shared_int64_join_key(views) is None:
        keys = sorted({str(view.entity_columns) for view in views})
        return f"entity keys {keys} are not one INT64 join key shared by every view"
    return None
