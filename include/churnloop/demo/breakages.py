"""How upstream breaks one day's snapshot drop, by name: the simulator's breakages.

Each breakage takes the day's table and a seeded generator and returns what lands: a
table (written as Parquet), raw bytes, or nothing; `BREAKAGES` names them all.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from churnloop import schema

Drop = pa.Table | bytes | None
"""What lands for a day: a table (written as Parquet), raw bytes, or nothing at all."""

Breakage = Callable[[pa.Table, np.random.Generator], Drop]


def _some_rows(table: pa.Table, rng: np.random.Generator, at_least: int = 1) -> np.ndarray:
    """Sorted indices of about 1% of the rows (never fewer than ``at_least``, if held)."""
    count = min(table.num_rows, max(at_least, table.num_rows // 100))
    return np.sort(rng.choice(table.num_rows, size=count, replace=False))


def _replace_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def _renamed_column(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    return table.rename_columns({"tenure_months": "tenure"})


def _missing_column(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    return table.drop_columns(["payment_failures"])


def _extra_column(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    points = rng.integers(0, 10_000, size=table.num_rows)
    return table.append_column("loyalty_points", pa.array(points))


def _wrong_type(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    return _replace_column(table, "age", table["age"].cast(pa.string()))


def _null_keys(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[_some_rows(table, rng)] = True
    keys = pc.if_else(pa.array(mask), pa.scalar(None, pa.int64()), table[schema.ENTITY])
    return _replace_column(table, schema.ENTITY, keys)


def _out_of_range(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    """About 1% of ages become impossible: half of them -3, the others 212."""
    rows = _some_rows(table, rng, at_least=2)
    ages = table["age"].to_numpy().copy()
    ages[rows] = np.where(np.arange(rows.size) % 2 == 0, -3, 212)
    return _replace_column(table, "age", pa.array(ages))


def _duplicate_rows(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    return pa.concat_tables([table, table.take(_some_rows(table, rng))])


def _empty_file(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    return table.slice(0, 0)


def _corrupt_file(table: pa.Table, rng: np.random.Generator) -> bytes:
    """The first half of the Parquet file, as an interrupted upload leaves it."""
    sink = io.BytesIO()
    pq.write_table(table, sink)
    data = sink.getvalue()
    return data[: len(data) // 2]


def _missing_day(table: pa.Table, rng: np.random.Generator) -> None:
    return None


BREAKAGES: dict[str, Breakage] = {
    "renamed_column": _renamed_column,
    "missing_column": _missing_column,
    "extra_column": _extra_column,
    "wrong_type": _wrong_type,
    "null_keys": _null_keys,
    "out_of_range": _out_of_range,
    "duplicate_rows": _duplicate_rows,
    "empty_file": _empty_file,
    "corrupt_file": _corrupt_file,
    "missing_day": _missing_day,
}
"""Every way upstream breaks one day's snapshot drop, by name."""
