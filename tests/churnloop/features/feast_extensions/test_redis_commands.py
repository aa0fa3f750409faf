"""Commands packed here are the bytes redis-py's own packer sends, row by row and chunk by
chunk."""

import pyarrow as pa
import pytest
from redis.connection import Connection

from churnloop.features.feast_extensions.redis_commands import COLUMN_TYPE, RowCommands, bulk

KEYS = [b"k\x00\x01", b"key-2" * 30, b"k3", b"", b"k5"]
VALUES = [b"", b"\r\n$3\r\n*", b"v" * 9, b"v" * 10, b"v" * 1000]


def redis_pys(*commands: tuple) -> bytes:
    return b"".join(b"".join(Connection().pack_command(*command)) for command in commands)


@pytest.mark.parametrize("argument", [b"", b"\x00\xff\r\n", "caf\u00e9", "_ts:view"])
def test_an_argument_is_packed_as_redis_py_packs_it(argument):
    assert redis_pys(("GET", argument)) == b"*2\r\n$3\r\nGET\r\n" + bulk(argument)


@pytest.mark.parametrize(("first", "count"), [(0, 5), (0, 2), (2, 2), (4, 5000)])
def test_each_rows_commands_follow_each_other_in_row_order(first, count):
    keys, values = pa.array(KEYS, COLUMN_TYPE), pa.array(VALUES, COLUMN_TYPE)
    commands = RowCommands(
        [["HSET", keys, b"f\x00%", values, "caf\u00e9", keys], ["EXPIRE", keys, "3600"]]
    )
    expected = redis_pys(
        *[
            command
            for row in range(first, min(first + count, len(KEYS)))
            for command in (
                ("HSET", KEYS[row], b"f\x00%", VALUES[row], "caf\u00e9", KEYS[row]),
                ("EXPIRE", KEYS[row], "3600"),
            )
        ]
    )
    assert (commands.names, commands.rows) == (["HSET", "EXPIRE"], 5)
    assert commands.packed(first, count).to_pybytes() == expected
