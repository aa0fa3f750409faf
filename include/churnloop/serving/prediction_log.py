"""The prediction log, the drift report's current data: a row per scored instance (its
features, the answered ``prediction``, label, version and variant, shadow score) under
``predictions/dt=YYYY-MM-DD/``. `PredictionLog.append` never waits for storage; a background
thread writes new objects only, keeps unwritten rows, and drops (counted) only past a bound.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churnloop import storage
from churnloop.redaction import describe_error
from churnloop.schema import ENTITY, PREDICTION, TIMESTAMP
from churnloop.settings import Settings

log = logging.getLogger(__name__)

DATASET = "predictions"

RECORD_SCHEMA = pa.schema(
    [
        pa.field(TIMESTAMP, pa.timestamp("us", tz="UTC")),
        pa.field("request_id", pa.string()),
        pa.field(ENTITY, pa.int64()),
        pa.field("model_name", pa.string()),
        pa.field("model_version", pa.int64()),
        pa.field("variant", pa.string()),
        pa.field(PREDICTION, pa.float64()),
        pa.field("predicted_label", pa.int8()),
        pa.field("shadow_version", pa.int64()),
        pa.field("shadow_prediction", pa.float64()),
    ]
)
"""Every row's own columns; the request's features follow them (numbers as doubles,
categories as strings), named as the model names them. ``customer_id`` tells where the
features came from: set, the online store's row of that customer; null, the request's own
``features`` (explicit-feature instances carry no id). ``variant`` names who answered,
``champion`` or, during a canary, ``candidate`` (null in files written before it existed)."""

FEATURES_KEY = "features"
"""Key of a record's feature dict; every other key is a `RECORD_SCHEMA` column."""
SLICE_ROWS = 500
"""Rows converted by one call while the writer holds the GIL (`records_table`)."""


def records_table(records: list[dict[str, Any]]) -> pa.Table:
    """A Parquet-ready table of records.

    A feature column is text if any of its values is (rows of model versions that
    disagree on a feature's type), else doubles (booleans and integers included).

    The writer thread holds the GIL while it converts, and every request in flight waits
    for it: the rows are turned into columns by ``zip`` and Arrow, not value by value in
    Python (5,000 rows: ~10 ms rather than ~45 ms; docs/benchmarks.md, serving), and
    `SLICE_ROWS` at a time with the GIL offered between slices: another thread waited up
    to ~8 ms for it while 5,000 rows were written, ~4 ms since.
    """
    own = pa.concat_tables(
        pa.Table.from_pylist(part, schema=RECORD_SCHEMA) for part in _slices(records)
    )
    values = _feature_values([record[FEATURES_KEY] for record in records])
    features = {name: _feature_column(column) for name, column in values.items()}
    return pa.table([*own.columns, *features.values()], names=[*own.column_names, *features])


def _feature_values(rows: list[dict[str, Any]]) -> dict[str, Sequence[Any]]:
    """Each feature's values, a value per row (None where a row lacks the feature)."""
    layouts = {tuple(row) for row in rows}
    if len(layouts) == 1:  # the usual batch: every row names the same features in one order
        (names,) = layouts
        columns: list[list[Any]] = [[] for _ in names]
        for part in _slices(rows):
            part_columns = zip(*(row.values() for row in part), strict=True)
            for column, values in zip(columns, part_columns, strict=True):
                column.extend(values)
        return dict(zip(names, columns, strict=True))
    names = dict.fromkeys(name for layout in layouts for name in layout)
    return {name: [row.get(name) for row in rows] for name in names}


def _slices(rows: list[Any]) -> Iterator[list[Any]]:
    """``rows``, `SLICE_ROWS` at a time, the GIL offered to other threads between slices."""
    for start in range(0, len(rows), SLICE_ROWS):
        yield rows[start : start + SLICE_ROWS]
        time.sleep(0)


def _feature_column(values: Sequence[Any]) -> pa.Array:
    """Doubles, converted by Arrow in one call, unless a value is not a number: then text."""
    try:
        return pa.array(values, type=pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if value is None else str(value) for value in values], pa.string())


class PredictionLog:
    """Queues prediction records and writes them to the lake from a background thread."""

    def __init__(
        self,
        settings: Settings,
        *,
        flush_rows: int,
        flush_seconds: float,
        max_pending_rows: int,
        on_written: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        self.store = storage.lake(settings)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_pending_rows = max_pending_rows
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._pending: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self.written_rows = 0
        self.dropped_rows = 0
        self.last_error: str | None = None

    @property
    def pending_rows(self) -> int:
        return len(self._pending)

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Queue records for writing; never blocks on storage."""
        with self._lock:
            self._pending.extend(records)
            size = len(self._pending)
        if size >= self.flush_rows:
            self._wake.set()
        if size > self.max_pending_rows:
            self._drop_oldest()

    def flush(self) -> list[str]:
        """Write what is pending now, a file per day; returns the URIs written.

        A day whose write fails keeps its rows queued for the next flush; days written
        are not written again.
        """
        with self._flushing:
            with self._lock:
                batch = list(self._pending)
                self._pending.clear()
            by_day: dict[dt.date, list[dict[str, Any]]] = {}
            for record in batch:
                by_day.setdefault(record[TIMESTAMP].date(), []).append(record)
            uris: list[str] = []
            unwritten: list[dict[str, Any]] = []
            for day, records in sorted(by_day.items()):
                try:
                    uris.append(self._write(day, records))
                except Exception as error:  # the lake is unreachable: keep the rows
                    self.last_error = describe_error(error)
                    unwritten += records
            written = len(batch) - len(unwritten)
            self.written_rows += written
            if written and self._on_written is not None:
                self._on_written(written)
            if unwritten:
                log.warning(
                    "prediction log: %d rows not written, will retry: %s",
                    len(unwritten),
                    self.last_error,
                )
                with self._lock:
                    self._pending.extendleft(reversed(unwritten))
                self._drop_oldest()
            elif batch:
                self.last_error = None
            return uris

    def _write(self, day: dt.date, records: list[dict[str, Any]]) -> str:
        sink = io.BytesIO()
        pq.write_table(records_table(records), sink, compression="zstd")
        name = f"part-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}.parquet"
        return self.store.write_bytes(
            f"{storage.Store.partition(DATASET, day)}/{name}", sink.getvalue()
        )

    def _drop_oldest(self) -> None:
        with self._lock:
            excess = len(self._pending) - self.max_pending_rows
            for _ in range(max(excess, 0)):
                self._pending.popleft()
        if excess > 0:
            self.dropped_rows += excess
            log.error(
                "prediction log: dropped the %d oldest unwritten rows (more than %d pending; "
                "is the lake reachable?)",
                excess,
                self.max_pending_rows,
            )
            if self._on_dropped is not None:
                self._on_dropped(excess)

    # -- background writer --------------------------------------------------------------

    def start(self) -> None:
        self._closed.clear()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the writer and write what is left."""
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.flush()

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()


def read_predictions(settings: Settings, day: dt.date) -> pd.DataFrame:
    """Every row the servers logged for ``day`` (UTC), oldest first.

    Raises `storage.PartitionNotFound` when nothing was logged that day.
    """
    lake = storage.lake(settings)
    prefix = storage.Store.partition(DATASET, day)
    parts = sorted(path for path in lake.list_files(prefix) if path.endswith(".parquet"))
    if not parts:
        raise storage.PartitionNotFound(f"no predictions logged for {day} in {lake.uri_of(prefix)}")
    tables = [lake.read_parquet(path) for path in parts]
    table = pa.concat_tables(tables, promote_options="permissive")
    return table.to_pandas().sort_values(TIMESTAMP, kind="stable", ignore_index=True)
