"""Materializing into Feast's Redis online store from Arrow, in the layout Feast reads.

``RedisArrowWriter.write_arrow`` stores what Feast's ``skip_dedup`` write would (every row
replaces its entity's hash), column-wise through ``feast_encoding``, with Feast's client
and field names; without ``skip_dedup``, ``churnloop.features.materialize`` leaves it to Feast.

Each row is one ``HSET`` of all its fields (and an ``EXPIRE`` with ``key_ttl_seconds``).
redis-py's pipeline packed every argument in Python and parsed every reply: ~3.7 s of the
write's 4.0 s of CPU at 100k customers of 35 fields. Here `redis_commands.RowCommands` packs a
chunk of rows at a time with pyarrow kernels, sent on one connection of the client's pool,
and a chunk's replies are read once the next chunk is sent, so that Redis executes one
chunk while the next is packed: the whole write, encoding included, 4.0 -> 1.1 s of CPU and
5.7 -> 2.5 s wall, most of it now Redis executing the HSETs (docs/benchmarks.md). Every
reply is read; an error reply raises, naming the view, the command and the row.

redis-py's public API only: ``Redis.connection_pool``, ``ConnectionPool.get_connection``
and ``release``, ``Connection.send_packed_command``, ``read_response``, ``disconnect`` and
its ``retry``. A connection failure is retried as the pipeline retried it (the whole write
again, which replaces the same hashes); after any other failure the connection is
disconnected before its release, so that no unread reply reaches its next user. A Redis
cluster is left to Feast's write (its keys live on several servers).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from feast import FeatureView, RepoConfig
from feast.infra.online_stores.helpers import compute_versioned_name
from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig, RedisType
from redis import Redis, ResponseError
from redis.connection import AbstractConnection

from churnloop.features.feast_extensions import feast_encoding
from churnloop.features.feast_extensions.redis_commands import COLUMN_TYPE, RowCommands


def hash_fields(
    online: RedisOnlineStore,
    config: RepoConfig,
    view: FeatureView,
    features: list[str] | None = None,
) -> tuple[list[str], list]:
    """The view's features (all, or ``features``) then its timestamp's field name, and the
    hash fields Feast stores them under (its helper, with the view's versioned name)."""
    versioned = config.registry.enable_online_feature_view_versioning
    return online._generate_hset_keys_for_features(
        view, features, fv_name_override=compute_versioned_name(view, versioned)
    )


def writes_arrow(online_store: object) -> bool:
    """Whether ``write_arrow`` can write for this ``online_store`` configuration: Redis in
    ``skip_dedup`` mode, one server (a cluster's keys live on several)."""
    return (
        isinstance(online_store, RedisOnlineStoreConfig)
        and online_store.skip_dedup
        and online_store.redis_type != RedisType.redis_cluster
    )


class RedisArrowWriter(RedisOnlineStore):
    """Feast's Redis store with a column-wise write; reads stay Feast's (this class is
    not configured as the store, only used to write)."""

    chunk_rows = 5_000
    """Rows whose commands go out in one send (about 4 MB with 35 features)."""

    def write_arrow(self, config: RepoConfig, view: FeatureView, data: pa.Table) -> None:
        """Write ``data`` (the view's join keys, its source's timestamp field and every
        feature), each row replacing its entity's hash."""
        online = config.online_store
        if not writes_arrow(online):
            raise ValueError(
                "RedisArrowWriter writes a Redis online store (not a cluster) with skip_dedup only"
            )
        commands = RowCommands(self._commands(config, view, data))
        what = f"writing feature view {view.name!r} to Redis"
        _send(self._get_client(online), commands, self.chunk_rows, what)

    def _commands(self, config: RepoConfig, view: FeatureView, data: pa.Table) -> list[list]:
        """Each row's ``HSET`` of its entity's hash, and ``EXPIRE`` if keys expire."""
        keys = feast_encoding.serialized_keys(view, data, config.entity_key_serialization_version)
        entities = pc.binary_join_element_wise(
            pa.array(keys, COLUMN_TYPE),
            pa.scalar(config.project.encode("utf-8"), COLUMN_TYPE),
            pa.scalar(b"", COLUMN_TYPE),
        )
        names, fields = hash_fields(self, config, view)
        columns = {feature.name: feature.dtype for feature in view.features}
        hset: list = ["HSET", entities]
        for name, field in zip(names, fields, strict=True):  # the features, then the timestamp
            values = (
                feast_encoding.serialized_values(data.column(name), columns[name])
                if name in columns
                else feast_encoding.serialized_event_times(view, data)
            )
            hset += [field, pa.array(values, COLUMN_TYPE)]
        ttl = config.online_store.key_ttl_seconds
        return [hset, ["EXPIRE", entities, str(ttl)]] if ttl else [hset]


def _send(client: Redis, commands: RowCommands, chunk_rows: int, what: str) -> None:
    """Send every row's ``commands`` on one connection of ``client``'s pool."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.retry.call_with_retry(
            lambda: _exchange(connection, commands, chunk_rows, what),
            lambda _error: connection.disconnect(),
        )
    except BaseException:
        connection.disconnect()  # replies to commands sent may be unread
        raise
    finally:
        pool.release(connection)


def _exchange(
    connection: AbstractConnection, commands: RowCommands, chunk_rows: int, what: str
) -> None:
    """Send each chunk of rows, then read the replies of the chunk before it."""
    unread = 0  # the first row whose replies are unread
    for first in range(0, commands.rows, chunk_rows):
        connection.send_packed_command([commands.packed(first, chunk_rows)], check_health=False)
        _read_replies(connection, commands, range(unread, first), what)
        unread = first
    _read_replies(connection, commands, range(unread, commands.rows), what)


def _read_replies(
    connection: AbstractConnection, commands: RowCommands, rows: range, what: str
) -> None:
    """Read the replies to the commands of ``rows``; an error reply raises, named."""
    per_row = len(commands.names)
    for reply in range(len(rows) * per_row):
        try:
            connection.read_response()
        except ResponseError as error:
            command, row = commands.names[reply % per_row], rows[reply // per_row]
            raise ResponseError(f"{what}: {command} of row {row} failed: {error}") from error
