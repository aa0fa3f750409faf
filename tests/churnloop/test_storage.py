import datetime as dt
import hashlib
import io
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churnloop.errors import DataError
from churnloop.storage import CorruptFile, PartitionNotFound, Store

DAY = dt.date(2026, 3, 4)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return Store(str(tmp_path / "lake"))
    endpoint = request.getfixturevalue("s3_server")
    root = request.getfixturevalue("s3_root")
    return Store(f"s3://{root}/lake", endpoint)


def test_partition_round_trip_and_listing(store):
    table = pa.table({"customer_id": [1, 2, 3]})
    uri = store.write_table("validated/customer_snapshots", DAY, table)
    assert uri.endswith("validated/customer_snapshots/dt=2026-03-04/data.parquet")
    assert store.read_table("validated/customer_snapshots", DAY).equals(table)
    assert store.partitions("validated/customer_snapshots") == [DAY]


def test_rewriting_a_day_replaces_it(store):
    store.write_table("ds", DAY, pa.table({"a": [1, 2, 3]}))
    store.write_table("ds", DAY, pa.table({"a": [4]}))
    assert store.read_table("ds", DAY).column("a").to_pylist() == [4]
    assert list(store.list_files("ds")) == ["ds/dt=2026-03-04/data.parquet"]


def test_a_data_file_is_published_as_read(store):
    table = pa.table({"customer_id": [1, 2, 3]})
    store.write_table("raw/ds", DAY, table)
    data, read = store.read_data_file("raw/ds", DAY)
    assert read.equals(table)
    uri = store.write_data_file("validated/ds", DAY, data)
    assert uri == store.uri_of("validated/ds/dt=2026-03-04/data.parquet")
    assert store.read_bytes(store.data_file("validated/ds", DAY)) == data
    assert store.partitions("validated/ds") == [DAY]


@pytest.mark.parametrize("read", ["read_table", "read_data_file"])
def test_missing_partition_names_its_path(store, read):
    with pytest.raises(PartitionNotFound, match="ds/dt=2026-03-04/data.parquet"):
        getattr(store, read)("ds", DAY)


@pytest.mark.parametrize("read", ["read_table", "read_data_file"])
def test_corrupt_file_is_reported_as_such(store, read):
    store.write_bytes("ds/dt=2026-03-04/data.parquet", b"not parquet at all")
    with pytest.raises(CorruptFile, match="ds/dt=2026-03-04/data.parquet is not a readable"):
        getattr(store, read)("ds", DAY)


def garbled_pages(table: pa.Table, compression: str = "zstd", every: int = 5) -> bytes:
    """A Parquet file whose footer is intact and whose column chunks are not: every
    ``every``-th byte of each chunk inverted, as a bad disk or a broken copy leaves it."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=compression)
    data = bytearray(sink.getvalue())
    metadata = pq.read_metadata(pa.BufferReader(bytes(data)))
    for group in range(metadata.num_row_groups):
        for column in range(metadata.num_columns):
            chunk = metadata.row_group(group).column(column)
            start = chunk.dictionary_page_offset or chunk.data_page_offset
            for position in range(start, start + chunk.total_compressed_size, every):
                data[position] ^= 0xFF
    return bytes(data)


def test_a_file_whose_pages_do_not_decode_is_corrupt_data(store):
    """The footer reads, the pages do not (thrift or codec errors, OSError in pyarrow):
    decoded in memory, so no network error is mistaken for it, and a data error."""
    table = pa.table({"customer_id": range(2_000), "plan": ["basic", "premium"] * 1_000})
    store.write_bytes("ds/dt=2026-03-04/data.parquet", garbled_pages(table))
    footer = pq.read_metadata(pa.BufferReader(store.read_bytes("ds/dt=2026-03-04/data.parquet")))
    assert footer.num_rows == 2_000
    with pytest.raises(
        CorruptFile, match="ds/dt=2026-03-04/data.parquet is not a readable"
    ) as caught:
        store.read_data_file("ds", DAY)
    assert isinstance(caught.value, DataError), "a corrupt file is not retried"


def test_the_digest_of_a_file_changes_when_it_is_replaced(store):
    relpath = "raw/ds/dt=2026-03-04/data.parquet"
    assert store.digest(relpath) is None
    store.write_table("raw/ds", DAY, pa.table({"a": [1, 2]}))
    data, _ = store.read_data_file("raw/ds", DAY)
    assert store.digest(relpath) == hashlib.sha256(data).hexdigest()
    store.write_table("raw/ds", DAY, pa.table({"a": [1, 3]}))
    assert store.digest(relpath) != hashlib.sha256(data).hexdigest()


def test_writer_killed_mid_write_leaves_old_partition_or_nothing(tmp_path):
    """SIGKILL a process in the middle of rewriting a large partition, many times over."""
    store = Store(str(tmp_path / "lake"))
    store.write_table("ds", DAY, pa.table({"a": [7]}))
    writer = (
        "import datetime as dt, pyarrow as pa\n"
        "from churnloop.storage import Store\n"
        f"store = Store({str(tmp_path / 'lake')!r})\n"
        "big = pa.table({'a': pa.array(range(3_000_000))})\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        f"    store.write_table('ds', dt.date({DAY.year}, {DAY.month}, {DAY.day}), big)\n"
    )
    for delay in (0.05, 0.2, 0.4):
        process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE)
        assert process.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        rows = store.read_table("ds", DAY).num_rows
        assert rows in (1, 3_000_000), f"partial partition with {rows} rows"
        assert list(store.list_files("ds")) == ["ds/dt=2026-03-04/data.parquet"]


def test_bucket_is_the_first_part_of_an_s3_root(tmp_path):
    assert Store("s3://churn-lake/prod/lake").bucket == "churn-lake"
    with pytest.raises(ValueError, match="is not on S3"):
        _ = Store(str(tmp_path)).bucket
