"""S3 unavailable: the lake's reads and writes fail as infrastructure errors naming what
they could not reach (retried by the task; never mistaken for a missing drop, which
would fail at once), and the same step succeeds once S3 is back."""

from __future__ import annotations

import datetime as dt

import pytest

from churnloop import schema, storage
from churnloop.demo.simulation import generate_snapshots
from churnloop.settings import get_settings
from churnloop.validation.ingest import ingest_day
from tests.service_support import s3_client, seaweed_s3

pytestmark = pytest.mark.services

DAY = dt.date(2026, 3, 4)
BUCKET = "churnloop-outage"


def test_ingest_fails_while_s3_is_down_and_succeeds_once_it_is_back(
    settings, s3_credentials, tmp_path, monkeypatch
):
    workdir = tmp_path / "seaweedfs"
    workdir.mkdir()
    with seaweed_s3(workdir) as endpoint:
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        monkeypatch.setenv("CHURNLOOP_S3_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("CHURNLOOP_LANDING_URI", f"s3://{BUCKET}/landing")
        monkeypatch.setenv("CHURNLOOP_LAKE_URI", f"s3://{BUCKET}/lake")
        settings = get_settings()
        drop = generate_snapshots(DAY, 100)
        storage.landing(settings).write_table(schema.SNAPSHOTS, DAY, drop)

    with pytest.raises(OSError) as down:
        ingest_day(settings, schema.SNAPSHOTS, DAY)
    lake = storage.lake(settings)
    with pytest.raises(OSError) as read_down:
        lake.partitions(schema.raw_dataset(schema.SNAPSHOTS))

    port = endpoint.rsplit(":", 1)[1]
    # OSError, not DataError: the task's retries apply.
    for error, key in [(down.value, "landing/"), (read_down.value, "lake/raw/")]:
        message = str(error)
        assert f"key '{key}customer_snapshots/" in message and f"bucket '{BUCKET}'" in message
        assert f"127.0.0.1 port {port}" in message, message

    with seaweed_s3(workdir):
        result = ingest_day(settings, schema.SNAPSHOTS, DAY)  # the task's retry
        staged = lake.read_table(schema.raw_dataset(schema.SNAPSHOTS), DAY)

    assert result.rows == drop.num_rows
    assert staged.equals(drop)
