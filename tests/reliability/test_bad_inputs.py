"""Bad inputs: every way a daily drop breaks is caught by the step the customer_data DAG
runs (ingest, then validation), with an error naming the problem and the place; the drop
is rejected (left in the landing zone) or quarantined whole; nothing reaches validated/
or the features; and no row is lost: rows in = rows validated + rows quarantined.

The steps are the package functions the DAG's tasks call, run in order as the DAG does
(``tests/dags/test_customer_data_dag.py`` runs the DAG itself on the simulator's
breakages). The simulator's breakages are reused; the others are built here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from churnloop import schema, storage
from churnloop.demo.simulation import Drop, break_drop, generate_labels, generate_snapshots
from churnloop.errors import DataError
from churnloop.features import definition
from churnloop.settings import Settings, get_settings
from churnloop.validation.ingest import ingest_day
from churnloop.validation.partition import RESULT_FILE, PartitionQuarantined, validate_partition

DAY = dt.date(2026, 3, 4)
CUSTOMERS = 120
REJECTED, QUARANTINED = "rejected", "quarantined"


def _restamped(table: pa.Table, rows: range, stamp: dt.datetime) -> pa.Table:
    """``table`` with the timestamps of ``rows`` replaced by ``stamp``."""
    mask = pa.array([index in rows for index in range(table.num_rows)])
    column = table.schema.get_field_index(schema.TIMESTAMP)
    stamped = pa.scalar(stamp, type=table.schema.field(column).type)
    return table.set_column(
        column, schema.TIMESTAMP, pc.if_else(mask, stamped, table[schema.TIMESTAMP])
    )


@dataclass(frozen=True)
class Case:
    """A broken drop, the step that must stop it, and what its message must name."""

    dataset: str
    drop: str | Callable[[pa.Table], Drop]
    """A breakage of the simulator, by name, or a function of the clean drop."""
    outcome: str
    names: tuple[str, ...]
    settings: dict[str, str] = field(default_factory=dict)

    def delivered(self, clean: pa.Table) -> Drop:
        if isinstance(self.drop, str):
            return break_drop(self.drop, clean, DAY)
        return self.drop(clean)


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
}


def clean_drop(dataset: str) -> pa.Table:
    if dataset == SNAPSHOTS:
        return generate_snapshots(DAY, CUSTOMERS)
    return generate_labels(LABELLED_DAY, CUSTOMERS)


def land(settings: Settings, dataset: str, drop: Drop) -> str:
    """Deliver ``drop`` as upstream would; returns the landing path of the day's file."""
    landing = storage.landing(settings)
    relpath = f"{landing.partition(dataset, DAY)}/{storage.DATA_FILE}"
    if isinstance(drop, bytes):
        landing.write_bytes(relpath, drop)
    elif drop is not None:
        landing.write_table(dataset, DAY, drop)
    return relpath


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
    delivered = landing.read_bytes(relpath) if landing.exists(relpath) else None

    expected_error = PartitionQuarantined if case.outcome == QUARANTINED else DataError
    with pytest.raises(expected_error) as caught:
        run_day(settings, case.dataset)

    message = str(caught.value)
    for fragment in case.names:
        assert fragment.format(landing=landing.uri_of(relpath)) in message, message
    assert f"{case.dataset} dt={DAY}" in message, "the message names the day's partition"
    published = [schema.validated_dataset(case.dataset), definition.DATASET]
    assert [lake.partitions(dataset) for dataset in published] == [[], []]
    raw, quarantine = (
        schema.raw_dataset(case.dataset),
        schema.quarantine_dataset(case.dataset),
    )
    if case.outcome == REJECTED:
        assert type(caught.value) is DataError, "ingest refuses: a data error, never retried"
        assert rows_of(lake, raw) == rows_of(lake, quarantine) == 0
        after = landing.read_bytes(relpath) if landing.exists(relpath) else None
        assert after == delivered, "a rejected drop stays in the landing zone as delivered"
    else:
        rows_in = landing.read_table(case.dataset, DAY).num_rows
        assert rows_of(lake, raw) == rows_in
        assert rows_in == rows_of(lake, schema.validated_dataset(case.dataset)) + rows_of(
            lake, quarantine
        ), "rows in = rows validated + rows quarantined"
        assert f"data moved to {lake.uri_of(lake.partition(quarantine, DAY))}/" in message
        result = json.loads(lake.read_bytes(f"{lake.partition(quarantine, DAY)}/{RESULT_FILE}"))
        assert result["success"] is False, "the quarantined day keeps its validation result"
    if case.dataset == SNAPSHOTS:
        from churnloop.features.build import build_feature_partition

        with pytest.raises(DataError, match=f"cannot build features for {DAY}: no partition"):
            build_feature_partition(settings, DAY)


def test_the_table_covers_the_issue_and_every_simulated_breakage():
    from churnloop.demo.simulation import BREAKAGES

    assert len(CASES) >= 12
    assert set(BREAKAGES) <= {case.drop for case in CASES.values()}
