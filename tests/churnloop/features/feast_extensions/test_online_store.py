"""The row-per-entity store must answer Feast exactly as Feast's own SQLite store does."""

import datetime as dt
import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
from feast.protos.feast.serving.ServingService_pb2 import FieldStatus
from feast.types import Array, Bool, Bytes, Float32, Float64, Int32, Int64, String

from churnloop.features.feast_extensions.online_store import STORE_TYPE, WideSqliteOnlineStore

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)  # Feast's SQLite store keeps seconds
FIELDS = [
    Field(name="small", dtype=Int32),
    Field(name="count", dtype=Int64),
    Field(name="ratio", dtype=Float32),
    Field(name="amount", dtype=Float64),
    Field(name="plan", dtype=String),
    Field(name="active", dtype=Bool),
    Field(name="blob", dtype=Bytes),
]
ASKED = [1, 2, 3, 4, 1]
"""Customers asked for: 4 was never written, 1 twice."""


def rows() -> pd.DataFrame:
    """Customer 1 full, 2 with every feature missing (NaN where a float), 3 past the TTL."""
    return pd.DataFrame(
        {
            "customer_id": pd.Series([1, 2, 3], dtype="int64"),
            "event_timestamp": [NOW, NOW - dt.timedelta(hours=1), NOW - dt.timedelta(days=3)],
            "small": pd.Series([7, None, 9], dtype="Int32"),
            "count": pd.Series([2**40, None, -5], dtype="Int64"),
            "ratio": pd.Series([0.25, math.nan, 1.5], dtype="float32"),
            "amount": [1234.5678, math.nan, -0.1],
            "plan": ["premium", None, "basic"],
            "active": pd.Series([True, None, False], dtype="boolean"),
            "blob": [b"\x00\x01", None, b""],
        }
    )


CUSTOMER = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)


def view(source: FileSource, fields: list[Field] = FIELDS) -> FeatureView:
    return FeatureView(
        name="customer_features",
        entities=[CUSTOMER],
        ttl=dt.timedelta(days=1),
        schema=[Field(name="customer_id", dtype=Int64), *fields],
        source=source,
        online=True,
    )


def feast_repo(repo: Path, project: str, online: dict) -> tuple[FeatureStore, FeatureView]:
    """A Feast repo created in ``repo`` over ``rows()``, with ``online`` as its online store."""
    repo.mkdir(parents=True)
    rows().to_parquet(repo / "source.parquet")
    config = RepoConfig(
        project=project,
        provider="local",
        registry=str(repo / "registry.db"),
        online_store=online,
        offline_store={"type": "duckdb"},
        entity_key_serialization_version=3,
        repo_path=repo,
    )
    store = FeatureStore(repo_path=str(repo), config=config)
    source = FileSource(path=str(repo / "source.parquet"), timestamp_field="event_timestamp")
    store.apply([CUSTOMER, view(source)])
    return store, store.get_feature_view("customer_features")


def make_store(tmp_path, online: dict) -> tuple[FeatureStore, FeatureView]:
    repo = tmp_path / online["type"].rsplit(".", 1)[-1]
    return feast_repo(repo, "test", {"path": str(repo / "online.db"), **online})


def answer(store: FeatureStore, customers: list[int] = ASKED) -> tuple[dict, dict, dict]:
    """Values, statuses and event timestamps of Feast's online response."""
    features = [f"customer_features:{field.name}" for field in FIELDS]
    response = store.get_online_features(
        features=features, entity_rows=[{"customer_id": c} for c in customers]
    )
    vectors = dict(
        zip(response.proto.metadata.feature_names.val, response.proto.results, strict=True)
    )
    return (
        response.to_dict(),
        {name: list(vector.statuses) for name, vector in vectors.items()},
        {
            name: [t.ToDatetime() for t in vector.event_timestamps]
            for name, vector in vectors.items()
        },
    )


def same(left: dict, right: dict) -> bool:
    """Dict equality with NaN equal to NaN."""

    def normal(values):
        return [("nan" if isinstance(v, float) and math.isnan(v) else v) for v in values]

    return left.keys() == right.keys() and all(normal(left[k]) == normal(right[k]) for k in left)


@pytest.fixture
def feast_sqlite(tmp_path):
    store, _ = make_store(tmp_path, {"type": "sqlite"})
    store.write_to_online_store("customer_features", rows())
    return store


@pytest.fixture
def wide(tmp_path):
    return make_store(tmp_path, {"type": STORE_TYPE})


def test_write_arrow_answers_as_feasts_sqlite_store(feast_sqlite, wide):
    store, feature_view = wide
    WideSqliteOnlineStore().write_arrow(store.config, feature_view, pa.Table.from_pandas(rows()))
    expected_values, expected_statuses, expected_stamps = answer(feast_sqlite)
    values, statuses, stamps = answer(store)
    assert same(values, expected_values)
    assert statuses == expected_statuses  # present, missing, past the TTL, unknown
    assert stamps == expected_stamps
    assert values["amount"][0] == 1234.5678 and values["count"][0] == 2**40


def test_feasts_write_path_stores_what_write_arrow_stores(feast_sqlite, wide):
    store, _ = wide
    store.write_to_online_store("customer_features", rows())  # online_write_batch
    expected_values, expected_statuses, expected_stamps = answer(feast_sqlite)
    values, statuses, stamps = answer(store)
    assert same(values, expected_values)
    assert (statuses, stamps) == (expected_statuses, expected_stamps)


def test_a_file_feasts_own_store_wrote_is_left_alone(feast_sqlite, tmp_path):
    path = feast_sqlite.config.online_store.path  # Feast's layout: a row per value
    store, feature_view = make_store(tmp_path, {"type": STORE_TYPE, "path": path})
    assert same(
        answer(store)[0], {**answer(feast_sqlite)[0], **{f.name: [None] * 5 for f in FIELDS}}
    )
    WideSqliteOnlineStore().write_arrow(store.config, feature_view, pa.Table.from_pandas(rows()))
    assert same(answer(store)[0], answer(feast_sqlite)[0])  # and Feast's rows still read


def test_a_written_row_replaces_the_customers_row(wide):
    store, feature_view = wide
    writer = WideSqliteOnlineStore()
    writer.write_arrow(store.config, feature_view, pa.Table.from_pandas(rows()))
    newer = rows().iloc[[0]].assign(plan="basic", count=pd.Series([3], dtype="Int64"))
    writer.write_arrow(store.config, feature_view, pa.Table.from_pandas(newer))
    values, _, _ = answer(store, [1, 2])
    assert values["plan"] == ["basic", None] and values["count"] == [3, None]


def test_a_timestamp_finer_than_a_microsecond_is_kept_to_the_microsecond(wide):
    store, feature_view = wide
    stamp = pd.Timestamp(NOW) + pd.Timedelta(microseconds=7, nanoseconds=999)
    frame = rows().iloc[[0]].assign(event_timestamp=stamp)
    WideSqliteOnlineStore().write_arrow(store.config, feature_view, pa.Table.from_pandas(frame))
    _, _, stamps = answer(store, [1])
    assert stamps["plan"] == [(NOW + dt.timedelta(microseconds=7)).replace(tzinfo=None)]


def test_applying_a_view_with_a_new_feature_keeps_the_rows(wide):
    store, feature_view = wide
    WideSqliteOnlineStore().write_arrow(store.config, feature_view, pa.Table.from_pandas(rows()))
    grown = view(feature_view.batch_source, [*FIELDS, Field(name="score", dtype=Float64)])
    store.apply([CUSTOMER, grown])
    response = store.get_online_features(
        features=["customer_features:plan", "customer_features:score"],
        entity_rows=[{"customer_id": 1}],
    ).to_dict()
    assert response["plan"] == ["premium"] and response["score"] == [None]


def test_a_view_with_a_non_scalar_feature_is_refused(wide):
    store, feature_view = wide
    listed = view(feature_view.batch_source, [Field(name="history", dtype=Array(Int64))])
    with pytest.raises(ValueError, match=r"customer_features.*history"):
        store.apply([CUSTOMER, listed])


def test_after_teardown_every_customer_is_unknown(wide):
    store, feature_view = wide
    writer = WideSqliteOnlineStore()
    writer.write_arrow(store.config, feature_view, pa.Table.from_pandas(rows()))
    writer.teardown(store.config, [feature_view], [])  # as `feast teardown` calls it
    values, statuses, _ = answer(store, [1])
    assert values["plan"] == [None]
    assert {statuses[field.name][0] for field in FIELDS} == {FieldStatus.NOT_FOUND}
