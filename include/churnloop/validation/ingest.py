"""Ingest: take a day's drop from the landing zone and stage it in the lake.

Only safe coercions (integer and float widths, timestamp units, time zones to UTC); any other
difference from the contract is staged as it came, for validation to judge. Ingest refuses a
drop that is missing, unreadable, or empty where the contract wants rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from churnloop import schema, storage
from churnloop.errors import DataError
from churnloop.settings import Settings

CONTRACTS = {schema.SNAPSHOTS: schema.SNAPSHOT_SCHEMA, schema.LABELS: schema.LABEL_SCHEMA}
MAY_BE_EMPTY = {schema.LABELS}
"""Labels mature 30 days late, so early days legitimately bring an empty label drop."""


@dataclass(frozen=True)
class IngestResult:
    dataset: str
    day: str
    rows: int
    staged_uri: str
    coerced: list[str]
    """Columns whose physical type was normalised (e.g. int64 -> int32)."""
    off_contract: list[str]
    """Columns not as the contract says (missing, extra, or of another kind): left to validation."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, for an Airflow task's return value."""
        return asdict(self)


def ingest_day(settings: Settings, dataset: str, day: dt.date) -> IngestResult:
    """Stage ``dataset`` for ``day`` from the landing zone into ``raw/``; idempotent."""
    contract = _contract(dataset)
    landing = storage.landing(settings)
    relpath = landing.data_file(dataset, day)
    if not landing.exists(relpath):
        raise DataError(
            f"no landing drop for {dataset} dt={day}: expected {landing.uri_of(relpath)}. "
            "If upstream is late, clear this task once the file has landed."
        )
    try:
        table = landing.read_parquet(relpath)
    except storage.CorruptFile as error:
        raise DataError(f"landing drop for {dataset} dt={day} is corrupt: {error}") from error
    if table.num_rows == 0 and dataset not in MAY_BE_EMPTY:
        raise DataError(
            f"landing drop for {dataset} dt={day} is empty (0 rows): {landing.uri_of(relpath)}. "
            "Ask upstream to re-deliver the day, then clear this task."
        )
    staged, coerced, off_contract = coerce(table, contract)
    uri = storage.lake(settings).write_table(schema.raw_dataset(dataset), day, staged)
    return IngestResult(dataset, day.isoformat(), staged.num_rows, uri, coerced, off_contract)


def coerce(table: pa.Table, contract: pa.Schema) -> tuple[pa.Table, list[str], list[str]]:
    """Normalise safe physical differences; keep every column and row the drop had."""
    columns, coerced, off_contract = [], [], []
    for name in table.column_names:
        column = table.column(name)
        if name not in contract.names:
            off_contract.append(name)
        else:
            target = contract.field(name).type
            if column.type != target:
                converted = _safe_cast(column, target)
                if converted is None:
                    off_contract.append(name)
                else:
                    column = converted
                    coerced.append(name)
        columns.append(column)
    off_contract += [name for name in contract.names if name not in table.column_names]
    return pa.table(columns, names=table.column_names), coerced, off_contract


def _safe_cast(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray | None:
    """Cast within one kind of type (int to int, timestamp to timestamp); else None."""
    source = column.type
    same_kind = (
        (pa.types.is_integer(source) and pa.types.is_integer(target))
        or (pa.types.is_floating(source) and pa.types.is_floating(target))
        or (pa.types.is_integer(source) and pa.types.is_floating(target))
        or (pa.types.is_timestamp(source) and pa.types.is_timestamp(target) and source.tz)
        or (pa.types.is_large_string(source) and pa.types.is_string(target))
    )
    if not same_kind:
        return None
    try:
        return pc.cast(column, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _contract(dataset: str) -> pa.Schema:
    try:
        return CONTRACTS[dataset]
    except KeyError:
        known = ", ".join(sorted(CONTRACTS))
        raise ValueError(f"unknown dataset {dataset!r}; known: {known}") from None
