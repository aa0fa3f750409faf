"""Ingest: take a day's drop from the landing zone and stage it in the lake.

A drop is one ``<dataset>/dt=DAY/data.parquet``; markers named ``_*`` or ``.*`` may sit
beside it, any other file is refused by name. Only safe coercions (widths, zones to UTC,
units cut to microseconds); a missing, undecodable or empty drop is a ``DataError``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from churnloop import schema, storage
from churnloop.errors import DataError, enumerated, excerpt
from churnloop.settings import Settings

CONTRACTS = {schema.SNAPSHOTS: schema.SNAPSHOT_SCHEMA, schema.LABELS: schema.LABEL_SCHEMA}
MAY_BE_EMPTY = {schema.LABELS}
"""Labels mature 30 days late, so early days legitimately bring an empty label drop."""
MARKER_PREFIX = "_"
"""Files beside a drop named so are markers, not data (``_SUCCESS``), as Parquet readers
skip them; hidden files (``.crc``, a write's temporary) are never listed."""
FILES_NAMED = 10
LONGEST_NAME = 120


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
    _check_one_file(landing, dataset, day)
    try:
        _, table = landing.read_data_file(dataset, day)
    except storage.CorruptFile as error:
        raise DataError(f"landing drop for {dataset} dt={day} is corrupt: {error}") from error
    if table.num_rows == 0 and dataset not in MAY_BE_EMPTY:
        raise DataError(
            f"landing drop for {dataset} dt={day} is empty (0 rows): "
            f"{landing.uri_of(landing.data_file(dataset, day))}. "
            "Ask upstream to re-deliver the day, then clear this task."
        )
    staged, coerced, off_contract = coerce(table, contract)
    uri = storage.lake(settings).write_table(schema.raw_dataset(dataset), day, staged)
    return IngestResult(dataset, day.isoformat(), staged.num_rows, uri, coerced, off_contract)


def drop_location(settings: Settings, dataset: str, day: dt.date) -> str | None:
    """Where the day's drop of ``dataset`` is expected, or None once it has landed: what
    the landing sensor waits for."""
    landing = storage.landing(settings)
    relpath = landing.data_file(dataset, day)
    return None if landing.exists(relpath) else landing.uri_of(relpath)


def _check_one_file(landing: storage.Store, dataset: str, day: dt.date) -> None:
    """Refuse a day whose folder lacks its data file or holds other files, naming them."""
    folder = landing.partition(dataset, day)
    relpath = landing.data_file(dataset, day)
    others = [
        excerpt(path.removeprefix(f"{folder}/"), LONGEST_NAME)
        for path in sorted(landing.list_files(folder))
        if path != relpath and not path.rpartition("/")[2].startswith(MARKER_PREFIX)
    ]
    found = enumerated(others, FILES_NAMED)
    if not landing.exists(relpath):
        raise DataError(
            f"no landing drop for {dataset} dt={day}: expected {landing.uri_of(relpath)}"
            + (f"; found {found}" if others else "")
            + ". If upstream is late, clear this task once the file has landed."
        )
    if others:
        raise DataError(
            f"landing drop for {dataset} dt={day} holds files besides {storage.DATA_FILE}: "
            f"{found} (in {landing.uri_of(folder)}). The contract is one "
            f"{storage.DATA_FILE} per dataset and day: ask upstream to deliver the day as "
            "one file (or remove what is not data), then clear this task."
        )


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
    """Cast within one kind of type (int to int, timestamp to timestamp); else None.

    Casts are checked (no overflow, no float truncation), except that timestamps finer
    than the target's unit are cut to it.
    """
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
    options = pc.CastOptions(target, allow_time_truncate=pa.types.is_timestamp(target))
    try:
        return pc.cast(column, options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _contract(dataset: str) -> pa.Schema:
    try:
        return CONTRACTS[dataset]
    except KeyError:
        known = ", ".join(sorted(CONTRACTS))
        raise ValueError(f"unknown dataset {dataset!r}; known: {known}") from None
