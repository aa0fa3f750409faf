import asyncio
import uuid

import pytest
import redis

from churnloop.features.build import build_feature_partition
from churnloop.features.feast_config import apply_definitions, feature_store
from churnloop.features.feast_extensions import redis_online_writer
from churnloop.features.materialize import materialize_day
from churnloop.features.online import FOUND, OnlineFeatureReader, online_features
from churnloop.features.training_set import training_set
from churnloop.schema import ENTITY, LABEL, TIMESTAMP
from churnloop.settings import get_settings
from tests.churnloop.features_support import (
    D1,
    D2,
    assert_online_holds,
    write_labels,
    write_snapshots,
)


@pytest.mark.services
def test_production_profile_on_redis_postgres_and_s3(production_settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_FEAST_PROJECT", f"churnloop_test_{uuid.uuid4().hex[:8]}")
    settings = get_settings()
    assert settings.feast_redis and settings.lake_uri.startswith("s3://")
    apply_definitions(settings)
    feast_store = feature_store(settings)
    written = []  # rows per column-wise Redis write (skip_dedup, the profile's setting)
    write_arrow = redis_online_writer.RedisArrowWriter.write_arrow

    def counted(self, config, view, data):
        written.append(data.num_rows)
        write_arrow(self, config, view, data)

    monkeypatch.setattr(redis_online_writer.RedisArrowWriter, "write_arrow", counted)
    try:
        write_snapshots(settings, D1, {1: {"plan": "basic"}, 2: {"region": "east"}})
        write_snapshots(settings, D2, {1: {"plan": "premium"}, 3: {}})
        for day in (D1, D2):
            assert build_feature_partition(settings, day).startswith("s3://")
        materialize_day(settings, D2, overlap_days=0)
        materialize_day(settings, D1, overlap_days=0)
        assert written == [2, 1]  # D1's customer 1 superseded by D2's
        assert_online_holds(settings, {1: D2, 2: D1, 3: D2})
        assert not online_features(settings, [999])[FOUND].any()
        reader = OnlineFeatureReader(settings)
        assert reader.direct is not None, "the server reads Redis directly on this profile"
        asked = [3, 999, 1, 2, 1]
        frame = reader.read(asked)  # Feast's read
        served = asyncio.run(reader.rows(asked))
        for row, (_, feasts) in zip(served, frame.iterrows(), strict=True):
            expected = feasts[reader.names].to_dict() if feasts[FOUND] else None
            assert row == expected, feasts[ENTITY]
        write_labels(settings, D1, {1: 1, 2: 0})
        write_labels(settings, D2, {1: 0, 3: 1})
        rows = training_set(settings, D1, D2).to_pandas()  # DuckDB reads S3
        by_key = rows.set_index([ENTITY, rows[TIMESTAMP].dt.date])
        assert by_key["plan"].to_dict() == {
            (1, D1): "basic",
            (2, D1): "basic",
            (1, D2): "premium",
            (3, D2): "basic",
        }
        assert by_key[LABEL].to_dict() == {(1, D1): 1, (2, D1): 0, (1, D2): 0, (3, D2): 1}
    finally:
        feast_store.teardown()
    host, port = settings.feast_redis.split(":")
    keys = redis.Redis(host, int(port)).scan_iter(match=f"*{settings.feast_project}")
    assert list(keys) == [], "teardown left this test's online rows in Redis"
