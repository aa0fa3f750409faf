import datetime as dt
import json

import pyarrow as pa
import pytest

from churnloop import schema, storage
from churnloop.errors import DataError
from churnloop.validation.ingest import ingest_day

DAY = dt.date(2026, 3, 4)
NAIVE = dt.datetime(2026, 3, 4)


def snapshot_rows(n: int = 3) -> dict:
    ts = dt.datetime(2026, 3, 4, tzinfo=dt.UTC)
    return {
        "customer_id": list(range(1, n + 1)),
        "event_timestamp": [ts] * n,
        "plan": ["basic"] * n,
        "region": ["north"] * n,
        "contract": ["monthly"] * n,
        "age": [30] * n,
        "tenure_months": [12] * n,
        "monthly_charges": [50.0] * n,
        "logins": [3] * n,
        "session_minutes": [20.5] * n,
        "support_tickets": [0] * n,
        "payment_failures": [0] * n,
        "spend": [1.5] * n,
        "days_since_last_login": [1] * n,
    }


def drop(settings, table: pa.Table, dataset=schema.SNAPSHOTS, day=DAY) -> None:
    storage.landing(settings).write_table(dataset, day, table)


def staged(settings, dataset=schema.SNAPSHOTS) -> pa.Table:
    return storage.lake(settings).read_table(schema.raw_dataset(dataset), DAY)


def test_stages_the_drop_coerced_to_the_contract(settings):
    drop(settings, pa.table(snapshot_rows()))  # plain int64/timestamp[us, UTC] from Python
    result = ingest_day(settings, schema.SNAPSHOTS, DAY)
    assert result.rows == 3 and result.off_contract == []
    assert json.loads(json.dumps(result.to_dict()))["staged_uri"] == result.staged_uri
    assert "age" in result.coerced, "int64 age must be narrowed to the contract's int32"
    assert staged(settings).schema == schema.SNAPSHOT_SCHEMA


def test_rerun_rewrites_the_same_partition(settings):
    drop(settings, pa.table(snapshot_rows(3)))
    ingest_day(settings, schema.SNAPSHOTS, DAY)
    drop(settings, pa.table(snapshot_rows(5)))
    ingest_day(settings, schema.SNAPSHOTS, DAY)
    lake = storage.lake(settings)
    assert staged(settings).num_rows == 5
    assert list(lake.list_files("raw")) == ["raw/customer_snapshots/dt=2026-03-04/data.parquet"]


def test_timestamps_in_another_zone_become_utc(settings):
    rows = snapshot_rows()
    tz = dt.timezone(dt.timedelta(hours=2))
    rows["event_timestamp"] = [dt.datetime(2026, 3, 4, 2, tzinfo=tz)] * 3
    drop(settings, pa.table(rows))
    ingest_day(settings, schema.SNAPSHOTS, DAY)
    column = staged(settings).column("event_timestamp")
    assert column.type == pa.timestamp("us", tz="UTC")
    assert column[0].as_py() == dt.datetime(2026, 3, 4, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "change, off_contract",
    [
        (lambda rows: rows.update(years=rows.pop("age")), ["years", "age"]),
        (lambda rows: rows.pop("spend"), ["spend"]),
        (lambda rows: rows.update(coupon=["x", "y", "z"]), ["coupon"]),
        (lambda rows: rows.update(age=["30", "31", "abc"]), ["age"]),
        (lambda rows: rows.update(event_timestamp=[NAIVE] * 3), ["event_timestamp"]),
    ],
    ids=["renamed", "missing", "extra", "wrong_type", "naive_timestamp"],
)
def test_off_contract_columns_are_staged_as_they_came(settings, change, off_contract):
    """Validation, not ingest, judges the contract: nothing is dropped or silently fixed."""
    rows = snapshot_rows()
    change(rows)
    drop(settings, pa.table(rows))
    result = ingest_day(settings, schema.SNAPSHOTS, DAY)
    assert sorted(result.off_contract) == sorted(off_contract)
    table = staged(settings)
    assert table.num_rows == 3
    assert table.column_names == list(rows)


def test_missing_drop_names_the_expected_path(settings):
    with pytest.raises(DataError, match=r"no landing drop .*customer_snapshots/dt=2026-03-04"):
        ingest_day(settings, schema.SNAPSHOTS, DAY)


def test_corrupt_drop_says_so(settings):
    storage.landing(settings).write_bytes("customer_snapshots/dt=2026-03-04/data.parquet", b"oops")
    with pytest.raises(DataError, match="is corrupt"):
        ingest_day(settings, schema.SNAPSHOTS, DAY)
    assert storage.lake(settings).partitions(schema.raw_dataset(schema.SNAPSHOTS)) == []


def test_empty_snapshot_drop_fails_but_empty_label_drop_is_normal(settings):
    drop(settings, schema.SNAPSHOT_SCHEMA.empty_table())
    with pytest.raises(DataError, match=r"is empty \(0 rows\)"):
        ingest_day(settings, schema.SNAPSHOTS, DAY)
    drop(settings, schema.LABEL_SCHEMA.empty_table(), dataset=schema.LABELS)
    assert ingest_day(settings, schema.LABELS, DAY).rows == 0


def test_timestamps_finer_than_the_contract_are_cut_to_microseconds(settings):
    """A snapshot's timestamp places it in its day; the contract holds microseconds, and
    cutting nanoseconds never moves a row to another day."""
    rows = snapshot_rows()
    midnight_ns = 1_772_582_400 * 10**9  # 2026-03-04T00:00:00Z
    rows["event_timestamp"] = pa.array(
        [midnight_ns + 1, midnight_ns + 86_399_999_999_999, midnight_ns + 1_500],
        pa.timestamp("ns", tz="UTC"),
    )
    drop(settings, pa.table(rows))
    result = ingest_day(settings, schema.SNAPSHOTS, DAY)
    assert "event_timestamp" in result.coerced and result.off_contract == []
    column = staged(settings).column("event_timestamp")
    assert column.type == pa.timestamp("us", tz="UTC")
    assert [value.isoformat() for value in column.to_pylist()] == [
        "2026-03-04T00:00:00+00:00",
        "2026-03-04T23:59:59.999999+00:00",
        "2026-03-04T00:00:00.000001+00:00",
    ]


def test_a_day_holding_other_files_is_refused_naming_them(settings):
    landing = storage.landing(settings)
    drop(settings, pa.table(snapshot_rows(3)))
    landing.write_bytes("customer_snapshots/dt=2026-03-04/part-00001.parquet", b"PAR1")
    landing.write_bytes("customer_snapshots/dt=2026-03-04/_SUCCESS", b"")
    with pytest.raises(DataError, match=r"holds files besides data.parquet: part-00001.parquet \("):
        ingest_day(settings, schema.SNAPSHOTS, DAY)
    assert storage.lake(settings).partitions(schema.raw_dataset(schema.SNAPSHOTS)) == []
