"""Redis, the production online store, goes down in the middle of a materialization: the
step fails with an infrastructure error naming Redis (the task retries it; data errors
alone fail at once), and once Redis is back the retry leaves online equal to offline."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pandas as pd
import pytest
import redis

from churnloop import schema, storage
from churnloop.demo.simulation import generate_snapshots
from churnloop.errors import DataError
from churnloop.features import definition
from churnloop.schema import ENTITY
from churnloop.settings import Settings, get_settings
from tests.service_support import redis_server

pytestmark = pytest.mark.services

DAY = dt.date(2026, 3, 4)
CUSTOMERS = 4_000
BATCH_ROWS = 200
"""Small batches: the materialization takes seconds, so Redis can die half-way."""


def wait_for_rows(address: str, timeout: float = 60) -> None:
    host, port = address.split(":")
    client = redis.Redis(host, int(port))
    deadline = time.monotonic() + timeout
    while client.dbsize() == 0:
        assert time.monotonic() < deadline, "materialization wrote nothing to Redis"
        time.sleep(0.01)


def test_redis_dying_mid_materialization_fails_the_step_and_a_retry_completes_it(
    settings, monkeypatch
):
    from churnloop.features.build import build_feature_partition
    from churnloop.features.feast_config import apply_definitions
    from churnloop.features.materialize import materialize_day
    from churnloop.features.online import FOUND, OnlineFeatureReader

    lake = storage.lake(settings)
    lake.write_table(
        schema.validated_dataset(schema.SNAPSHOTS), DAY, generate_snapshots(DAY, CUSTOMERS)
    )
    build_feature_partition(settings, DAY)
    failures: list[BaseException] = []

    def materialize(settings: Settings) -> None:
        try:
            materialize_day(settings, DAY)
        except BaseException as error:  # handed to the test thread
            failures.append(error)

    with redis_server() as address:
        monkeypatch.setenv("CHURNLOOP_FEAST_REDIS", address)
        monkeypatch.setenv("CHURNLOOP_FEAST_ONLINE_WRITE_BATCH_ROWS", str(BATCH_ROWS))
        settings = get_settings()
        apply_definitions(settings)
        worker = threading.Thread(target=materialize, args=(settings,))
        worker.start()
        wait_for_rows(address)
    worker.join(timeout=120)  # Redis stopped when the block ended
    assert not worker.is_alive(), "the step hung after Redis died"

    (error,) = failures
    assert isinstance(error, redis.ConnectionError) and not isinstance(error, DataError)
    assert address in str(error), str(error)

    with redis_server(int(address.rsplit(":", 1)[1])):
        stats = materialize_day(settings, DAY)  # the task's retry
        reader = OnlineFeatureReader(settings)
        offline = lake.read_table(definition.DATASET, DAY).to_pandas()
        online = reader.read(offline[ENTITY].tolist())

    assert stats.rows_written == CUSTOMERS
    assert online[FOUND].all()
    pd.testing.assert_frame_equal(
        online[reader.names], offline[reader.names], check_dtype=False, check_exact=False
    )
