"""Redis commands as the bytes Redis reads (RESP arrays of bulk strings), packed as
redis-py packs them (``str`` in UTF-8, its default encoding), for sending packed.

`bulk` packs one argument; `RowCommands` packs the same commands for every row of Arrow
columns with pyarrow kernels, so that no value passes through Python: ~0.3 s of CPU for
100k rows of 35 fields (84 MB), where redis-py's pipeline spent seconds (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

COLUMN_TYPE = pa.large_binary()
"""The Arrow type of `RowCommands`' columns (64-bit offsets: no 2 GB limit per column)."""


def bulk(argument: bytes | str) -> bytes:
    """One argument as a RESP bulk string."""
    value = argument.encode() if isinstance(argument, str) else argument
    return b"$%d\r\n%b\r\n" % (len(value), value)


def array(count: int) -> bytes:
    """What precedes a command's ``count`` arguments (a RESP array's header)."""
    return b"*%d\r\n" % count


class RowCommands:
    """Commands sent for every row: each is its name (a ``str``) then its arguments, each
    argument fixed (``bytes`` or ``str``) or a column (`COLUMN_TYPE`) giving each row its own."""

    def __init__(self, commands: Sequence[Sequence[bytes | str | pa.Array]]) -> None:
        self.names = [str(name) for name, *_ in commands]
        self.rows = 0
        self._columns: list[tuple[bytes, pa.Array]] = []  # fixed bytes, then a column's
        fixed = b""
        for arguments in commands:
            fixed += array(len(arguments))
            for argument in arguments:
                if isinstance(argument, pa.Array):
                    self.rows = len(argument)
                    self._columns.append((fixed, argument))
                    fixed = b"\r\n"  # ends the column's bulk string
                else:
                    fixed += bulk(argument)
        self._tail = pa.scalar(fixed, COLUMN_TYPE)

    def packed(self, first: int, count: int) -> pa.Buffer:
        """The commands of rows ``first`` to ``first + count`` (fewer at the end), row by
        row, in one buffer."""
        pieces = []
        for fixed, column in self._columns:
            rows = column.slice(first, count)
            pieces += [_bulk_headers(rows, fixed), rows]
        joined = pc.binary_join_element_wise(*pieces, self._tail, pa.scalar(b"", COLUMN_TYPE))
        _, offsets, data = joined.buffers()
        bounds = [joined.offset, joined.offset + len(joined)]
        start, end = np.frombuffer(offsets, np.int64)[bounds]
        return data[start:end]


def _bulk_headers(values: pa.Array, before: bytes) -> pa.Array:
    """Per value, ``before`` and its bulk string's header (``$<length>\\r\\n``): packed
    once per distinct length and taken for each row."""
    lengths = pc.dictionary_encode(pc.binary_length(values))
    headers = [before + b"$%d\r\n" % length for length in lengths.dictionary.to_pylist()]
    return pa.array(headers, COLUMN_TYPE).take(lengths.indices)
