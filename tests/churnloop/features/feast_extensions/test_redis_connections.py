"""The direct read's own Redis connections, on a real Redis: its packed HMGET is redis-py's,
and no failure (a killed connection, an error reply, a cancelled exchange, a new event
loop) lets a reply reach the wrong exchange."""

import asyncio
import uuid

import pytest
import redis
import redis.asyncio
from redis.asyncio.connection import Connection

from churnloop.features.feast_extensions.redis_connections import HmgetCommand, OwnConnections

pytestmark = pytest.mark.services

FIELDS = ["view:count", b"view:\x00bytes", "view:caf\u00e9", "_ts:view"]


@pytest.fixture
def keys(redis_address):
    """Two hashes with different values in ``FIELDS``, and a string key (not a hash)."""
    host, port = redis_address.split(":")
    client = redis.Redis(host, int(port))
    prefix = f"test-connections-{uuid.uuid4().hex}:".encode()
    names = [prefix + b"a", prefix + b"b", prefix + b"string"]
    client.hset(names[0], mapping={field: f"a{index}" for index, field in enumerate(FIELDS)})
    client.hset(names[1], mapping={FIELDS[0]: "b0"})
    client.set(names[2], "not a hash")
    yield names
    client.delete(*names)


@pytest.fixture
def connections(redis_address):
    host, port = redis_address.split(":")
    clients = []

    async def client() -> redis.asyncio.Redis:  # one per event loop, as Feast's is per store
        clients.append(redis.asyncio.Redis(host=host, port=int(port)))
        return clients[-1]

    return OwnConnections(client)


def hmget(key: bytes) -> bytes:
    return HmgetCommand(FIELDS).packed(key)


def test_the_packed_hmget_is_redis_pys_own_packing():
    key = b"\x02\x00\x00\x00customer\x04\x00\x00\x00\x08\x00\x00\x00*\x00\x00\x00\x00\x00\x00\x00p"
    assert hmget(key) == b"".join(Connection().pack_command("HMGET", key, *FIELDS))


def test_one_write_of_commands_answers_each_in_order(keys, connections):
    a, b, _ = keys
    replies = asyncio.run(connections.exchange(hmget(a) + hmget(b) + hmget(a), 3))
    assert replies[0] == replies[2] == [b"a0", b"a1", b"a2", b"a3"]
    assert replies[1] == [b"b0", None, None, None]


def test_a_connection_killed_by_the_server_is_reopened_for_the_next_exchange(
    keys, connections, redis_address
):
    host, port = redis_address.split(":")
    admin = redis.Redis(host, int(port))

    async def read_kill_read() -> tuple[list, list]:
        first = await connections.exchange(hmget(keys[1]), 1)
        ours = [c["id"] for c in admin.client_list() if c["cmd"] == "hmget"]
        for client_id in ours:
            admin.client_kill_filter(_id=client_id)
        return first, await connections.exchange(hmget(keys[1]), 1)

    first, after = asyncio.run(read_kill_read())
    assert first == after == [[b"b0", None, None, None]]


def test_an_error_reply_is_raised_and_leaves_no_reply_for_the_next_exchange(keys, connections):
    a, b, string = keys

    async def error_then_read() -> list:
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await connections.exchange(hmget(string) + hmget(b), 2)
        return await connections.exchange(hmget(a), 1)

    assert asyncio.run(error_then_read()) == [[b"a0", b"a1", b"a2", b"a3"]]


def test_a_cancelled_exchange_leaves_no_reply_for_the_next(keys, connections):
    empty_list = keys[0] + b":no-such-list"
    blocking_pop = b"*3\r\n$5\r\nBLPOP\r\n$%d\r\n%b\r\n$3\r\n0.3\r\n" % (
        len(empty_list),
        empty_list,
    )

    async def cancel_then_read() -> list:
        waiting = asyncio.create_task(connections.exchange(blocking_pop, 1))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(0.4)  # the pop's nil answer would have arrived by now
        return await connections.exchange(hmget(keys[1]), 1)

    assert asyncio.run(cancel_then_read()) == [[b"b0", None, None, None]]


def test_each_event_loop_gets_connections_of_its_own(keys, connections):
    for _ in range(2):
        assert asyncio.run(connections.exchange(hmget(keys[1]), 1)) == [[b"b0", None, None, None]]
