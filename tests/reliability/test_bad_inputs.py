"""Bad inputs: every way a daily drop breaks is caught by the step the customer_data DAG
runs (ingest, then validation), with an error naming the problem and the place; the drop
is rejected (left in the landing zone) or quarantined whole; nothing reaches validated/
or the features; and no row is lost: rows in = rows validated + rows quarantined.
Whatever the drop holds, the error and the stored result stay small, and the Data Docs
page shows the drop's values only escaped. What the contract allows but a careless writer
varies (finer timestamps, a success marker) is taken, and its features build.

The steps are the package functions the DAG's tasks call, run in order as the DAG does
(``tests/dags/test_customer_data_dag.py`` runs the DAG itself on the simulator's
breakages). The simulator's breakages are reused; the others are built here.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from churnloop import schema, storage
from churnloop.demo.breakages import Drop
from churnloop.demo.simulation import break_drop, generate_labels, generate_snapshots
from churnloop.errors import DataError
from churnloop.features import definition
from churnloop.settings import Settings, get_settings
from churnloop.validation.ingest import ingest_day
from churnloop.validation.partition import RESULT_FILE, PartitionQuarantined, validate_partition
from tests.churnloop.test_storage import garbled_pages
from tests.churnloop.validation.test_partition import replaced

DAY = dt.date(2026, 3, 4)
CUSTOMERS = 120
REJECTED, QUARANTINED = "rejected", "quarantined"
LONGEST_MESSAGE = 8_000
"""Characters an error may have whatever the drop holds (a few examples, each cut short)."""
LARGEST_RESULT = 300_000
"""Bytes of a quarantined day's validation_result.json whatever the drop holds."""
SCRIPT = "<script>alert('xss')</script>"
IMAGE = "<img src=x onerror=alert(1)>"
SVG = '"><svg onload=alert(1)>'
RAW_MARKUP = ("<script>alert", "<img src=x", "<svg onload")
MEGABYTE = "x" * 1_000_000


def _restamped(table: pa.Table, rows: range, stamp: dt.datetime) -> pa.Table:
    """``table`` with the timestamps of ``rows`` replaced by ``stamp``."""
    mask = pa.array([index in rows for index in range(table.num_rows)])
    column = table.schema.get_field_index(schema.TIMESTAMP)
    stamped = pa.scalar(stamp, type=table.schema.field(column).type)
    return table.set_column(
        column, schema.TIMESTAMP, pc.if_else(mask, stamped, table[schema.TIMESTAMP])
    )


def _with(table: pa.Table, name: str, rows: range, value: object) -> pa.Table:
    """``table`` with ``value`` in column ``name`` at ``rows`` (the column's type kept)."""
    return replaced(table, name, dict.fromkeys(rows, value))


def _whole_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _in_nanoseconds(table: pa.Table) -> pa.Table:
    """The timestamps in ns, each a few ns past a whole microsecond (a pandas writer's)."""
    nanoseconds = pc.cast(table[schema.TIMESTAMP], pa.int64()).to_numpy() * 1_000
    stamped = pa.array(
        nanoseconds + 1 + (pc.cast(table[schema.ENTITY], pa.int64()).to_numpy() % 999)
    )
    timestamps = pc.cast(stamped, pa.timestamp("ns", tz="UTC"))
    return _whole_column(table, schema.TIMESTAMP, timestamps)


Delivery = Drop | dict[str, Drop]
"""A day's drop, or several files of the day's landing folder by name."""


@dataclass(frozen=True)
class Case:
    """A broken drop, the step that must stop it, and what its message must name."""

    dataset: str
    drop: str | Callable[[pa.Table], Delivery]
    """A breakage of the simulator, by name, or a function of the clean drop."""
    outcome: str
    names: tuple[str, ...]
    settings: dict[str, str] = field(default_factory=dict)
    page_shows: tuple[str, ...] = ()
    """What the Data Docs page must show of the drop, escaped."""

    def delivered(self, clean: pa.Table) -> dict[str, Drop]:
        """The files of the day's landing folder, by name."""
        if isinstance(self.drop, str):
            delivery = break_drop(self.drop, clean, DAY)
        else:
            delivery = self.drop(clean)
        return delivery if isinstance(delivery, dict) else {storage.DATA_FILE: delivery}


SNAPSHOTS, LABELS = schema.SNAPSHOTS, schema.LABELS
MIDNIGHT = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
LABELLED_DAY = DAY - dt.timedelta(days=schema.LABEL_DELAY_DAYS)

CASES = {
    "missing_partition": Case(
        SNAPSHOTS,
        "missing_day",
        REJECTED,
        ("no landing drop for customer_snapshots dt=2026-03-04: expected {landing}",),
    ),
    "empty_partition": Case(
        SNAPSHOTS,
        "empty_file",
        REJECTED,
        ("landing drop for customer_snapshots dt=2026-03-04 is empty (0 rows): {landing}",),
    ),
    "corrupt_partition": Case(
        SNAPSHOTS,
        "corrupt_file",
        REJECTED,
        (
            "landing drop for customer_snapshots dt=2026-03-04 is corrupt: "
            "{landing} is not a readable Parquet file",
        ),
    ),
    "renamed_column": Case(
        SNAPSHOTS,
        "renamed_column",
        QUARANTINED,
        (
            "expect_table_columns_to_match_ordered_list(column_list=[14 values]): "
            "missing ['tenure_months'], unexpected ['tenure']",
        ),
    ),
    "missing_column": Case(
        SNAPSHOTS,
        "missing_column",
        QUARANTINED,
        (
            "missing ['payment_failures']",
            "expect_column_values_to_be_of_type(column='payment_failures', type_='int32'): "
            "could not be evaluated",
        ),
    ),
    "extra_column": Case(
        SNAPSHOTS,
        "extra_column",
        QUARANTINED,
        (
            "expect_table_columns_to_match_ordered_list(column_list=[14 values]): "
            "unexpected ['loyalty_points']",
        ),
    ),
    "wrong_type": Case(
        SNAPSHOTS,
        "wrong_type",
        QUARANTINED,
        (f"expect_column_values_to_be_of_type(column='age', type_='int32'): {CUSTOMERS} rows",),
    ),
    "null_keys": Case(
        SNAPSHOTS,
        "null_keys",
        QUARANTINED,
        ("expect_column_values_to_not_be_null(column='customer_id'): 1 row",),
    ),
    "duplicate_keys": Case(
        SNAPSHOTS,
        "duplicate_rows",
        QUARANTINED,
        ("expect_column_values_to_be_unique(column='customer_id'): 2 rows",),
    ),
    "out_of_range_values": Case(
        SNAPSHOTS,
        "out_of_range",
        QUARANTINED,
        (
            "expect_column_values_to_be_between(column='age', min_value=18, max_value=100): "
            "2 rows, e.g. -3, 212",
        ),
    ),
    "timestamps_outside_the_day": Case(
        SNAPSHOTS,
        lambda t: _restamped(t, range(3), MIDNIGHT + dt.timedelta(days=1, hours=6)),
        QUARANTINED,
        (
            "expect_column_values_to_be_between(column='event_timestamp', "
            "min_value=2026-03-04T00:00:00+00:00, max_value=2026-03-05T00:00:00+00:00, "
            "strict_max=True): 3 rows, e.g. 2026-03-05T06:00:00+00:00",
        ),
    ),
    "late_rows_of_an_earlier_day": Case(
        SNAPSHOTS,
        lambda t: _restamped(t, range(5, 9), MIDNIGHT - dt.timedelta(days=3)),
        QUARANTINED,
        (
            "column='event_timestamp', min_value=2026-03-04T00:00:00+00:00",
            "4 rows, e.g. 2026-03-01T00:00:00+00:00",
        ),
    ),
    "late_labels_of_another_snapshot_day": Case(
        LABELS,
        lambda t: generate_labels(LABELLED_DAY - dt.timedelta(days=2), CUSTOMERS),
        QUARANTINED,
        (
            "validation failed for churn_labels dt=2026-03-04",
            "column='event_timestamp', min_value=2026-02-02T00:00:00+00:00, "
            f"max_value=2026-02-03T00:00:00+00:00, strict_max=True): {CUSTOMERS} rows, "
            "e.g. 2026-01-31T00:00:00+00:00",
        ),
    ),
    "very_large_file": Case(
        SNAPSHOTS,
        lambda t: t,
        QUARANTINED,
        (
            f"expect_table_row_count_to_be_between(min_value=50, max_value={CUSTOMERS - 1}): "
            f"observed {CUSTOMERS}",
        ),
        settings={"CHURNLOOP_SNAPSHOT_MAX_ROWS": str(CUSTOMERS - 1)},
    ),
    # -- several files in one day's folder: the contract is one data.parquet a day ------
    "two_parts_of_one_day": Case(
        SNAPSHOTS,
        lambda t: {storage.DATA_FILE: t, "part-00001.parquet": t.slice(0, 80)},
        REJECTED,
        (
            "landing drop for customer_snapshots dt=2026-03-04 holds files besides "
            "data.parquet: part-00001.parquet",
        ),
    ),
    "parts_without_the_data_file": Case(
        SNAPSHOTS,
        lambda t: {"part-00000.parquet": t.slice(0, 60), "part-00001.parquet": t.slice(60)},
        REJECTED,
        (
            "no landing drop for customer_snapshots dt=2026-03-04: expected {landing}",
            "found part-00000.parquet, part-00001.parquet",
        ),
    ),
    "a_stray_file_beside_the_drop": Case(
        SNAPSHOTS,
        lambda t: {storage.DATA_FILE: t, "notes.txt": b"resent by ops"},
        REJECTED,
        ("holds files besides data.parquet: notes.txt",),
    ),
    "a_second_drop_in_a_subfolder": Case(
        SNAPSHOTS,
        lambda t: {storage.DATA_FILE: t, "resend/data.parquet": t.slice(0, 80)},
        REJECTED,
        ("holds files besides data.parquet: resend/data.parquet",),
    ),
    # -- Parquet that reads its footer but not its pages ---------------------------------
    "garbled_zstd_pages": Case(
        SNAPSHOTS,
        lambda t: garbled_pages(t, "zstd", every=7),
        REJECTED,
        ("landing drop for customer_snapshots dt=2026-03-04 is corrupt: {landing}",),
    ),
    "garbled_snappy_pages": Case(
        SNAPSHOTS,
        lambda t: garbled_pages(t, "snappy", every=5),
        REJECTED,
        ("landing drop for customer_snapshots dt=2026-03-04 is corrupt: {landing}",),
    ),
    "garbled_page_headers": Case(
        SNAPSHOTS,
        lambda t: garbled_pages(t, "none", every=3),
        REJECTED,
        ("landing drop for customer_snapshots dt=2026-03-04 is corrupt: {landing}",),
    ),
    # -- values the feature build cannot take: nulls, NaN, infinities --------------------
    "nulls_in_an_integer_column": Case(
        SNAPSHOTS,
        lambda t: _with(t, "age", range(50), None),
        QUARANTINED,
        ("expect_column_values_to_not_be_null(column='age'): 50 rows",),
    ),
    "nan_in_a_float_column": Case(
        SNAPSHOTS,
        lambda t: _with(t, "spend", range(3), float("nan")),
        QUARANTINED,
        ("expect_column_values_to_not_be_null(column='spend'): 3 rows",),
    ),
    "infinite_minutes": Case(
        SNAPSHOTS,
        lambda t: _with(t, "session_minutes", range(4), float("inf")),
        QUARANTINED,
        (
            "expect_column_values_to_be_between(column='session_minutes', min_value=0",
            "4 rows, e.g. inf",
        ),
    ),
    "infinite_spend": Case(
        SNAPSHOTS,
        lambda t: _with(t, "spend", range(2), float("inf")),
        QUARANTINED,
        ("expect_column_values_to_be_between(column='spend', min_value=0", "2 rows, e.g. inf"),
    ),
    "negative_infinity": Case(
        SNAPSHOTS,
        lambda t: _with(t, "monthly_charges", range(1), float("-inf")),
        QUARANTINED,
        ("column='monthly_charges', min_value=0, max_value=1000): 1 row, e.g. -inf",),
    ),
    "an_all_null_category": Case(
        SNAPSHOTS,
        lambda t: _whole_column(t, "plan", pa.nulls(t.num_rows, pa.string())),
        QUARANTINED,
        (f"expect_column_values_to_not_be_null(column='plan'): {CUSTOMERS} rows",),
    ),
    "a_column_of_arrow_type_null": Case(
        SNAPSHOTS,
        lambda t: _whole_column(t, "region", pa.nulls(t.num_rows)),
        QUARANTINED,
        (f"expect_column_values_to_not_be_null(column='region'): {CUSTOMERS} rows",),
    ),
    "null_labels": Case(
        LABELS,
        lambda t: _with(t, schema.LABEL, range(5), None),
        QUARANTINED,
        ("expect_column_values_to_not_be_null(column='churned'): 5 rows",),
    ),
    # -- markup in values and names: escaped on the Data Docs page -----------------------
    "script_in_a_category": Case(
        SNAPSHOTS,
        lambda t: _with(_with(t, "plan", range(2), SCRIPT), "region", range(3, 4), IMAGE),
        QUARANTINED,
        ("column='plan'", "2 rows, e.g. \"<script>alert('xss')</script>\""),
        page_shows=("&lt;script&gt;alert(", "&lt;img src=x onerror=alert(1)&gt;"),
    ),
    "markup_in_column_names": Case(
        SNAPSHOTS,
        lambda t: t.append_column(IMAGE, pa.array([SVG] * t.num_rows)).append_column(
            SCRIPT, pa.array(range(t.num_rows))
        ),
        QUARANTINED,
        ("unexpected ['<img src=x onerror=alert(1)>', \"<script>alert('xss')</script>\"]",),
        page_shows=("&lt;img src=x onerror=alert(1)&gt;", "&lt;script&gt;alert("),
    ),
    "markup_in_a_number_column": Case(
        SNAPSHOTS,
        lambda t: _whole_column(t, "age", pa.array([SVG] * t.num_rows)),
        QUARANTINED,
        ("expect_column_values_to_be_of_type(column='age', type_='int32')",),
        page_shows=("&lt;svg onload=alert(1)&gt;",),
    ),
    # -- values too large to echo ---------------------------------------------------------
    "megabyte_values": Case(
        SNAPSHOTS,
        lambda t: _with(t, "contract", range(25), MEGABYTE + "!"),
        QUARANTINED,
        ("column='contract'", "25 rows, e.g. 'xxxxxxxx", "(truncated, 1,000,003 characters)"),
    ),
    "megabyte_column_name": Case(
        SNAPSHOTS,
        lambda t: t.append_column(MEGABYTE, pa.array(range(t.num_rows))),
        QUARANTINED,
        ("unexpected ['xxxxxxxx", "(truncated, 1,000,002 characters)"),
    ),
    "thousands_of_extra_columns": Case(
        SNAPSHOTS,
        lambda t: pa.table(
            {
                **{name: t[name] for name in t.column_names},
                **{f"c{i}": pa.nulls(t.num_rows, pa.int8()) for i in range(3_000)},
            }
        ),
        QUARANTINED,
        ("unexpected ['c0', 'c1'", "and 2,990 more"),
    ),
}


def clean_drop(dataset: str) -> pa.Table:
    if dataset == SNAPSHOTS:
        return generate_snapshots(DAY, CUSTOMERS)
    return generate_labels(LABELLED_DAY, CUSTOMERS)


def land(settings: Settings, dataset: str, files: dict[str, Drop]) -> str:
    """Deliver ``files`` into the day's landing folder as upstream would; returns the
    landing path of the day's data file."""
    landing = storage.landing(settings)
    folder = landing.partition(dataset, DAY)
    for name, drop in files.items():
        if drop is not None:
            data = drop if isinstance(drop, bytes) else _parquet(drop)
            landing.write_bytes(f"{folder}/{name}", data)
    return f"{folder}/{storage.DATA_FILE}"


def landed(landing: storage.Store, dataset: str) -> dict[str, bytes]:
    """Every file of the day's landing folder, as it is now."""
    folder = landing.partition(dataset, DAY)
    return {relpath: landing.read_bytes(relpath) for relpath in landing.list_files(folder)}


def run_day(settings: Settings, dataset: str) -> None:
    """The day's tasks in DAG order up to validation; building features is checked after."""
    ingest_day(settings, dataset, DAY)
    validate_partition(settings, dataset, DAY)


def rows_of(store: storage.Store, dataset: str) -> int:
    return store.read_table(dataset, DAY).num_rows if DAY in store.partitions(dataset) else 0


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_bad_drop_is_named_stopped_and_loses_no_row(settings, monkeypatch, case):
    for name, value in case.settings.items():
        monkeypatch.setenv(name, value)
    settings = get_settings()
    landing, lake = storage.landing(settings), storage.lake(settings)
    relpath = land(settings, case.dataset, case.delivered(clean_drop(case.dataset)))
    delivered = landed(landing, case.dataset)

    expected_error = PartitionQuarantined if case.outcome == QUARANTINED else DataError
    with pytest.raises(expected_error) as caught:
        run_day(settings, case.dataset)

    message = str(caught.value)
    for fragment in case.names:
        assert fragment.format(landing=landing.uri_of(relpath)) in message, message[:3000]
    assert f"{case.dataset} dt={DAY}" in message, "the message names the day's partition"
    assert len(message) <= LONGEST_MESSAGE, "an error echoes a bounded part of the drop"
    published = [schema.validated_dataset(case.dataset), definition.DATASET]
    assert [lake.partitions(dataset) for dataset in published] == [[], []]
    raw, quarantine = (
        schema.raw_dataset(case.dataset),
        schema.quarantine_dataset(case.dataset),
    )
    if case.outcome == REJECTED:
        assert type(caught.value) is DataError, "ingest refuses: a data error, never retried"
        assert rows_of(lake, raw) == rows_of(lake, quarantine) == 0
        assert landed(landing, case.dataset) == delivered, "a rejected drop stays as delivered"
    else:
        rows_in = landing.read_table(case.dataset, DAY).num_rows
        assert rows_of(lake, raw) == rows_in
        assert rows_in == rows_of(lake, schema.validated_dataset(case.dataset)) + rows_of(
            lake, quarantine
        ), "rows in = rows validated + rows quarantined"
        assert f"data moved to {lake.uri_of(lake.partition(quarantine, DAY))}/" in message
        stored = lake.read_bytes(f"{lake.partition(quarantine, DAY)}/{RESULT_FILE}")
        assert json.loads(stored)["success"] is False, "the quarantined day keeps its result"
        assert len(stored) <= LARGEST_RESULT, "the stored result keeps a bounded part"
        page = lake.read_bytes(caught.value.outcome.data_docs_relpath).decode()
        assert not [markup for markup in RAW_MARKUP if markup in page], "markup escaped"
        for fragment in case.page_shows:
            assert fragment in page, f"the page shows the drop's {fragment!r}"
    if case.dataset == SNAPSHOTS:
        from churnloop.features.build import build_feature_partition

        with pytest.raises(DataError, match=f"cannot build features for {DAY}: no partition"):
            build_feature_partition(settings, DAY)


def test_the_table_covers_the_issue_and_every_simulated_breakage():
    from churnloop.demo.breakages import BREAKAGES

    assert len(CASES) >= 30
    assert set(BREAKAGES) <= {case.drop for case in CASES.values()}


ACCEPTED = {
    "sub_microsecond_timestamps": _in_nanoseconds,
    "millisecond_timestamps": lambda t: _whole_column(
        t, schema.TIMESTAMP, pc.cast(t[schema.TIMESTAMP], pa.timestamp("ms", tz="UTC"))
    ),
    "timestamps_in_another_zone": lambda t: _whole_column(
        t, schema.TIMESTAMP, pc.cast(t[schema.TIMESTAMP], pa.timestamp("us", tz="Asia/Tokyo"))
    ),
    "a_success_marker_beside_the_file": lambda t: {storage.DATA_FILE: t, "_SUCCESS": b""},
    "a_hidden_file_beside_the_file": lambda t: {storage.DATA_FILE: t, ".upload.crc": b"42"},
}
"""Drops the contract allows though they differ from the simulator's: ingest stages them
in the contract's types (timestamps in UTC microseconds; a sub-microsecond part, finer
than the contract holds, is cut), and markers named ``_*`` or ``.*`` are not data."""


@pytest.mark.parametrize("deliver", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_a_drop_the_contract_allows_is_published_and_builds(settings, deliver):
    from churnloop.features.build import build_feature_partition

    clean = clean_drop(SNAPSHOTS)
    delivery = deliver(clean)
    land(
        settings,
        SNAPSHOTS,
        delivery if isinstance(delivery, dict) else {storage.DATA_FILE: delivery},
    )

    run_day(settings, SNAPSHOTS)
    build_feature_partition(settings, DAY)

    lake = storage.lake(settings)
    validated = lake.read_table(schema.validated_dataset(SNAPSHOTS), DAY)
    assert validated.schema == schema.SNAPSHOT_SCHEMA
    assert validated[schema.ENTITY].equals(clean[schema.ENTITY])
    assert pc.floor_temporal(validated[schema.TIMESTAMP], unit="day").equals(
        pc.floor_temporal(clean[schema.TIMESTAMP], unit="day")
    ), "every row keeps its day"
    assert rows_of(lake, definition.DATASET) == CUSTOMERS
