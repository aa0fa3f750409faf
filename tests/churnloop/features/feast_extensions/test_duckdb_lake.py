import datetime as dt
import multiprocessing

import ibis
import pyarrow as pa
import pytest

from churnloop import storage
from churnloop.features.feast_extensions import duckdb_lake
from churnloop.settings import get_settings

DAY = dt.date(2026, 3, 4)


@pytest.mark.services
def test_the_s3_lake_is_read_with_the_packaged_httpfs_and_boto3s_credentials(
    production_settings, monkeypatch
):
    lake = storage.lake(production_settings)
    for offset, ids in enumerate(([1, 2, 3], [4, 5])):
        lake.write_table("ds", DAY + dt.timedelta(days=offset), pa.table({"customer_id": ids}))

    duckdb_lake.prepare_for_lake(production_settings)
    files = lake.partition_files("ds")
    assert sorted(ibis.read_parquet(files).to_pyarrow()["customer_id"].to_pylist()) == [
        1,
        2,
        3,
        4,
        5,
    ]
    connection = ibis.get_backend().con
    loaded = connection.execute(
        "SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
    ).fetchone()
    assert loaded == (True,)

    # The secret is replaced on every call: rotated credentials replace the old ones.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "rotated-but-wrong")
    duckdb_lake.prepare_for_lake(production_settings)
    with pytest.raises(Exception, match="403|Forbidden|denied|SignatureDoesNotMatch"):
        ibis.read_parquet(files).count().execute()


@pytest.fixture
def no_aws_credentials(monkeypatch, tmp_path):
    """Nowhere for boto3 to find credentials: no variables, files or instance role."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_missing_credentials_name_the_bucket_and_where_they_are_looked_for(
    settings, no_aws_credentials, monkeypatch
):
    monkeypatch.setenv("CHURNLOOP_LAKE_URI", "s3://churn-lake/prod")
    with pytest.raises(RuntimeError, match=r"no AWS credentials for the lake s3://churn-lake"):
        duckdb_lake.prepare_for_lake(get_settings())


def test_a_local_lake_needs_no_extension_and_no_credentials(settings, no_aws_credentials):
    duckdb_lake.prepare_for_lake(settings)  # would raise if it set up S3
    lake = storage.lake(settings)
    lake.write_table("ds", DAY, pa.table({"customer_id": [7]}))
    assert ibis.read_parquet(lake.partition_files("ds")).count().execute() == 1


def _child_has_no_connection_until_it_queries(files: str) -> tuple[bool, int]:
    inherited = ibis.options.default_backend is not None
    return inherited, ibis.read_parquet(files).count().execute()


def test_a_forked_child_opens_its_own_connection(settings):
    lake = storage.lake(settings)
    lake.write_table("ds", DAY, pa.table({"customer_id": [1, 2]}))
    files = lake.partition_files("ds")
    assert ibis.read_parquet(files).count().execute() == 2  # the parent's connection exists

    with multiprocessing.get_context("fork").Pool(1) as pool:
        inherited, rows = pool.apply(_child_has_no_connection_until_it_queries, (files,))
    assert (inherited, rows) == (False, 2)
    assert ibis.options.default_backend is not None  # the parent keeps its own
