"""The direct Redis read's commands: packed once, sent on connections the reader keeps.

redis-py's ``Redis.hmget`` cost about 145 µs of CPU a call with 8 in flight: its pool's
lock and health check at every checkout, its observability hooks, its retry wrapper, and
the packing of 37 arguments one by one. The reader's commands differ only by key, so each
is packed once (`HmgetCommand`, with `redis_commands`), and they go out on connections the
client's own pool makes (same address, credentials, TLS and timeouts) but `OwnConnections`
keeps: about 31 µs a call (docs/benchmarks.md, serving).

redis-py's public connection API only: ``Redis.connection_pool``,
``ConnectionPool.make_connection``, ``Connection.send_packed_command``, ``read_response``,
``disconnect`` and its ``retry``. A command failing for its connection is retried as the
client's own commands are (redis-py's retry policy, on a reconnected connection); any other
failure or a cancellation leaves the connection disconnected, so that no unread reply
reaches the next command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from churnloop.features.feast_extensions.redis_commands import array, bulk


class HmgetCommand:
    """``HMGET <key> <fields...>`` for fixed fields, as the bytes Redis reads (RESP)."""

    def __init__(self, fields: Sequence[bytes | str]) -> None:
        self._head = array(len(fields) + 2) + bulk("HMGET")
        self._fields = b"".join(bulk(field) for field in fields)

    def packed(self, key: bytes) -> bytes:
        return self._head + bulk(key) + self._fields


class OwnConnections:
    """Connections made by the pool of the client ``client`` returns, kept here, one per
    exchange in flight: taken without a lock or a health check."""

    def __init__(self, client: Callable[[], Awaitable[Redis]]) -> None:
        self._client = client
        self._idle: list[AbstractConnection] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def exchange(self, commands: bytes, replies: int) -> list[Any]:
        """Send ``commands`` (packed, one or more) and read their ``replies`` in order."""
        connection = await self._take()
        try:
            return await connection.retry.call_with_retry(
                lambda: _send_and_read(connection, commands, replies),
                lambda _error: connection.disconnect(),
            )
        except BaseException:
            await connection.disconnect(nowait=True)  # a reply of this exchange may be unread
            raise
        finally:
            self._idle.append(connection)

    async def _take(self) -> AbstractConnection:
        if self._idle and self._loop is asyncio.get_running_loop():
            return self._idle.pop()
        if self._loop is not asyncio.get_running_loop():  # connections belong to their loop
            self._loop, self._idle = asyncio.get_running_loop(), []
        return (await self._client()).connection_pool.make_connection()


async def _send_and_read(connection: AbstractConnection, commands: bytes, count: int) -> list:
    await connection.send_packed_command(commands, check_health=False)
    return [await connection.read_response() for _ in range(count)]
