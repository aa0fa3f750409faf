import datetime as dt
import json
import os
import shutil
import uuid

import pandas as pd
import pyarrow as pa
import pytest
import redis
import yaml

from churnloop.errors import DataError
from churnloop.features import definition, store
from churnloop.features.feast_extensions import offline_store, online_store, redis_online_writer
from churnloop.schema import (
    ENTITY,
    LABEL,
    LABEL_DELAY_DAYS,
    LABEL_SCHEMA,
    LABELS,
    SNAPSHOT_SCHEMA,
    SNAPSHOTS,
    TIMESTAMP,
    validated_dataset,
)
from churnloop.settings import get_settings
from churnloop.storage import lake
from tests.churnloop.features.test_definition import snapshot_rows

D1, D2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)


def write_snapshots(settings, day: dt.date, customers: dict[int, dict]) -> None:
    table = pa.Table.from_pandas(snapshot_rows(day, customers), SNAPSHOT_SCHEMA, False)
    lake(settings).write_table(validated_dataset(SNAPSHOTS), day, table)


def write_labels(settings, snapshot_day: dt.date, churned: dict[int, int]) -> None:
    midnight = dt.datetime.combine(snapshot_day, dt.time(), tzinfo=dt.UTC)
    rows = [{ENTITY: c, TIMESTAMP: midnight, LABEL: label} for c, label in churned.items()]
    arrival = snapshot_day + dt.timedelta(days=LABEL_DELAY_DAYS)
    table = pa.Table.from_pylist(rows, schema=LABEL_SCHEMA)
    lake(settings).write_table(validated_dataset(LABELS), arrival, table)


def partition(settings, day: dt.date) -> pd.DataFrame:
    return lake(settings).read_table(definition.DATASET, day).to_pandas().set_index(ENTITY)


@pytest.fixture
def two_days(settings):
    """Customer 1 on both days (changing), 2 only on D1, 3 only on D2; features built."""
    store.apply_definitions(settings)
    write_snapshots(settings, D1, {1: {"plan": "basic", "logins": 1}, 2: {"region": "east"}})
    write_snapshots(settings, D2, {1: {"plan": "premium", "logins": 50}, 3: {"logins": 2}})
    for day in (D1, D2):
        store.build_feature_partition(settings, day)
    return settings


def assert_online_holds(settings, expected: dict[int, dt.date]) -> None:
    """The online row of each customer equals its feature row of the given day."""
    online = store.online_features(settings, list(expected)).set_index(ENTITY)
    assert online[store.FOUND].all()
    names = store.feature_names(settings)
    for customer, day in expected.items():
        offline = partition(settings, day).loc[customer, names]
        assert online.loc[customer, names].tolist() == offline.tolist(), (customer, day)


def test_feast_config_follows_the_profile(settings, monkeypatch, tmp_path):
    embedded = store.feast_config(settings)
    assert embedded["online_store"] == {
        "type": online_store.STORE_TYPE,
        "path": settings.feast_sqlite_path,
    }
    loaded = store.feature_store(settings).config.online_store  # as Feast resolves it
    assert isinstance(loaded, online_store.WideSqliteOnlineStoreConfig)
    assert embedded["registry"]["registry_type"] == "file"
    assert embedded["registry"]["cache_ttl_seconds"] == settings.feast_registry_cache_ttl_seconds
    assert embedded["offline_store"] == {"type": offline_store.STORE_TYPE}

    registry_url = "postgresql+psycopg2://feast:s3cret@db:5432/feast"
    monkeypatch.setenv("CHURNLOOP_FEAST_REGISTRY", registry_url)
    monkeypatch.setenv("CHURNLOOP_FEAST_REDIS", "redis:6379")
    monkeypatch.setenv("CHURNLOOP_LAKE_URI", "s3://bucket/lake")
    monkeypatch.setenv("CHURNLOOP_S3_ENDPOINT_URL", "http://minio:9000")
    monkeypatch.setenv("CHURNLOOP_PROJECT_ROOT", str(tmp_path))  # the YAML lands there
    shutil.copytree(settings.feature_repo_dir, tmp_path / "feature_repo")
    production = get_settings()
    config = store.feast_config(production)
    assert config["registry"]["registry_type"] == "sql"
    assert config["registry"]["path"] == registry_url
    assert config["online_store"]["type"] == "redis"
    assert config["online_store"]["connection_string"] == "redis:6379"
    source = store._definitions(production)[1]
    assert source.path == "s3://bucket/lake/features/customer_features/dt=*/data.parquet"
    assert source.s3_endpoint_override == "http://minio:9000"

    text = store.write_feature_store_yaml(production).read_text()
    assert "s3cret" not in text
    assert yaml.safe_load(os.path.expandvars(text)) == config


def test_definitions_declare_typed_fields_and_apply_is_idempotent(settings):
    from feast import FeatureView, Field
    from feast.types import Int32, String

    customer, source, view, service = store._definitions(settings)
    assert source.path == lake(settings).partition_files(definition.DATASET)
    types = {field.name: field.dtype for field in view.schema}
    assert {types[name] for name in ("plan", "region", "contract")} == {String}
    assert types["tenure_bucket"] == Int32
    assert view.ttl == dt.timedelta(days=settings.feature_ttl_days)
    assert service.name == store.FEATURE_SERVICE == "churn_model_v1"
    assert store.feature_names(settings) == definition.FEATURE_SCHEMA.names

    retired = FeatureView(
        name="retired_view",
        entities=[customer],
        schema=[Field(name="age", dtype=Int32)],
        source=source,
    )
    store.feature_store(settings).apply([customer, source, retired])
    store.apply_definitions(settings)
    store.apply_definitions(settings)
    feast_store = store.feature_store(settings)
    assert [fv.name for fv in feast_store.list_feature_views()] == [definition.FEATURE_VIEW]
    registered = feast_store.get_feature_service(store.FEATURE_SERVICE)
    names = [f.name for p in registered.feature_view_projections for f in p.features]
    assert names == store.feature_names(settings)


def test_building_a_day_replaces_its_partition(settings):
    for back in range(3):
        day = D2 - dt.timedelta(days=back)
        write_snapshots(settings, day, {1: {"logins": back + 1}, 2: {"spend": 3.0}})
    first = store.build_feature_partition(settings, D2)
    write_snapshots(settings, D2, {1: {"logins": 7}})
    again = store.build_feature_partition(settings, D2)
    assert first == again
    assert list(lake(settings).list_files(definition.DATASET)) == [
        f"{definition.DATASET}/dt={D2}/data.parquet"
    ]
    rebuilt = partition(settings, D2)
    assert rebuilt.index.tolist() == [1]
    assert (rebuilt.loc[1, "logins_7d"], rebuilt.loc[1, "days_observed_7d"]) == (7 + 2 + 3, 3)
    with pytest.raises(DataError, match="cannot build features for 2026-03-05"):
        store.build_feature_partition(settings, D2 + dt.timedelta(days=3))


def test_training_set_is_point_in_time_and_labels_never_reach_features(two_days):
    settings = two_days
    write_labels(settings, D1, {1: 1, 2: 0})
    write_labels(settings, D2, {1: 0, 3: 1})
    rows = store.training_set(settings, D1, D2).to_pandas()
    assert list(rows.columns) == [ENTITY, TIMESTAMP, *store.feature_names(settings), LABEL]
    assert len(rows) == 4
    pd.testing.assert_frame_equal(rows, rows.sort_values([TIMESTAMP, ENTITY], ignore_index=True))
    by_key = rows.set_index([ENTITY, rows[TIMESTAMP].dt.date])
    # Customer 1 changed on D2: its D1 row keeps the D1 values.
    assert (by_key.loc[(1, D1), "plan"], by_key.loc[(1, D1), "logins_7d"]) == ("basic", 1)
    assert (by_key.loc[(1, D2), "plan"], by_key.loc[(1, D2), "logins_7d"]) == ("premium", 51)
    assert by_key[LABEL].to_dict() == {(1, D1): 1, (2, D1): 0, (1, D2): 0, (3, D2): 1}

    write_labels(settings, D1, {1: 0, 2: 1})
    write_labels(settings, D2, {1: 1, 3: 0})
    flipped = store.training_set(settings, D1, D2).to_pandas()
    pd.testing.assert_frame_equal(flipped.drop(columns=LABEL), rows.drop(columns=LABEL))
    assert (flipped[LABEL] != rows[LABEL]).all()


def test_labels_without_features_are_reported_not_dropped(two_days):
    settings = two_days
    before = D1 - dt.timedelta(days=1)
    write_labels(settings, D1, {1: 0, 2: 0, 4: 1})  # 4 never had features
    write_labels(settings, before, {1: 1})  # 1's features start after this snapshot
    with pytest.raises(DataError) as failure:
        store.training_set(settings, before, D1)
    message = str(failure.value)
    assert "2 of 4 labelled snapshots have no feature row" in message
    assert f"{before}: 1, {D1}: 1; e.g. customers [1, 4]" in message


def test_materializing_twice_or_out_of_order_keeps_each_customers_latest_row(two_days):
    settings = two_days
    newer = store.materialize_day(settings, D2, overlap_days=0)
    older = store.materialize_day(settings, D1, overlap_days=0)
    assert (newer.rows_written, older.rows_written, older.rows_superseded) == (2, 1, 1)
    expected = {1: D2, 2: D1, 3: D2}
    assert_online_holds(settings, expected)
    again = store.materialize_day(settings, D2, overlap_days=1)
    assert (again.days, again.rows_read, again.rows_written) == ([D1, D2], 4, 3)
    assert json.loads(json.dumps(again.as_dict()))["days"] == [str(D1), str(D2)]
    assert_online_holds(settings, expected)

    write_snapshots(settings, D2, {1: {"plan": "standard", "logins": 9}, 3: {"logins": 2}})
    store.build_feature_partition(settings, D2)
    store.materialize_day(settings, D2)
    assert_online_holds(settings, expected)  # the rebuilt day replaced its own values
    assert store.online_features(settings, [1]).plan.item() == "standard"


def test_rows_go_online_in_the_order_of_feasts_serialized_keys(settings):
    """Only the write speed depends on it (docs/benchmarks.md), so the test pins the order."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    ids = [1, 2, 255, 256, 257, 65_535, 65_536, 999_999, 1_000_000, 2**40 + 3, 7]
    frame = pd.DataFrame({ENTITY: ids, "row": range(len(ids))})

    def serialized(customer: int) -> bytes:
        key = EntityKey(join_keys=[ENTITY], entity_values=[Value(int64_val=customer)])
        return serialize_entity_key(key, entity_key_serialization_version=version)

    version = store.feast_config(settings)["entity_key_serialization_version"]

    ordered = store._in_online_key_order(frame)
    assert ordered[ENTITY].tolist() == sorted(ids, key=serialized)
    assert ordered[ENTITY].tolist() != sorted(ids)
    assert sorted(ordered["row"]) == list(range(len(ids)))  # every row, once


def test_online_features_equal_offline_and_unknown_customers_are_flagged(two_days):
    settings = two_days
    store.materialize_day(settings, D1)
    store.materialize_day(settings, D2)
    names = store.feature_names(settings)
    at_d2 = pd.DataFrame(
        {ENTITY: [1, 2, 3], TIMESTAMP: pd.Timestamp(D2, tz="UTC") + pd.Timedelta(hours=1)}
    )
    feast_store = store.feature_store(settings)
    service = feast_store.get_feature_service(store.FEATURE_SERVICE)
    offline = feast_store.get_historical_features(entity_df=at_d2, features=service).to_df()
    offline = offline.set_index(ENTITY).sort_index()[names]

    reader = store.OnlineFeatureReader(settings)
    online = reader.read([3, 999, 1, 2, 1])
    assert online[ENTITY].tolist() == [3, 999, 1, 2, 1]
    assert online[store.FOUND].tolist() == [True, False, True, True, True]
    unknown = online.set_index(ENTITY).loc[999, names]
    assert unknown.isna().all()
    known = online[online[store.FOUND]].drop_duplicates(ENTITY).set_index(ENTITY)
    pd.testing.assert_frame_equal(
        known.sort_index()[names], offline, check_dtype=False, check_exact=False
    )
    assert list(reader.read([]).columns) == [ENTITY, store.FOUND, *names]


def test_cli_steps_report_a_day_without_data(settings, capsys):
    from churnloop import cli

    assert cli.main(["build-features", "2026-03-09"]) == 2
    assert "cannot build features for 2026-03-09" in capsys.readouterr().err
    assert cli.main(["materialize", "2026-03-09"]) == 2
    assert "no feature partition for 2026-03-09" in capsys.readouterr().err


@pytest.mark.services
def test_production_profile_on_redis_postgres_and_s3(production_settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_FEAST_PROJECT", f"churnloop_test_{uuid.uuid4().hex[:8]}")
    settings = get_settings()
    assert settings.feast_redis and settings.lake_uri.startswith("s3://")
    store.apply_definitions(settings)
    feast_store = store.feature_store(settings)
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
            assert store.build_feature_partition(settings, day).startswith("s3://")
        store.materialize_day(settings, D2, overlap_days=0)
        store.materialize_day(settings, D1, overlap_days=0)
        assert written == [2, 1]  # D1's customer 1 superseded by D2's
        assert_online_holds(settings, {1: D2, 2: D1, 3: D2})
        assert not store.online_features(settings, [999])[store.FOUND].any()
        write_labels(settings, D1, {1: 1, 2: 0})
        write_labels(settings, D2, {1: 0, 3: 1})
        rows = store.training_set(settings, D1, D2).to_pandas()  # DuckDB reads S3
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
