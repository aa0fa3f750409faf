"""The windowed store must join exactly what Feast's DuckDB store joins, from fewer rows."""

import datetime as dt

import pandas as pd
import pytest
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
from feast.infra.offline_stores import duckdb as feast_duckdb
from feast.types import Float64, Int64

from churnloop.offline_store import STORE_TYPE, WindowedDuckDBOfflineStoreConfig, windowed_reader

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAYS = 30
TTL = dt.timedelta(days=3)
CUSTOMER = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)


def day(index: int, hours: float = 0) -> dt.datetime:
    return START + dt.timedelta(days=index, hours=hours)


def write_partitions(repo) -> None:
    """A partition a day; customer 2 stops after day 10, customer 3 has only odd days."""
    for index in range(DAYS):
        customers = [1] + ([2] if index <= 10 else []) + ([3] if index % 2 else [])
        frame = pd.DataFrame(
            {
                "customer_id": pd.Series(customers, dtype="int64"),
                "event_timestamp": [day(index, hours=6)] * len(customers),
                "spend": [100.0 * c + index for c in customers],
            }
        )
        folder = repo / f"dt={day(index).date()}"
        folder.mkdir()
        frame.to_parquet(folder / "data.parquet")


def labels() -> pd.DataFrame:
    """Entity rows of days 20-24, on a feature row's own timestamp, at a TTL's edge, and
    for customers with expired or no features."""
    rows = [(c, day(d)) for c in (1, 2, 3, 4) for d in range(20, 25)]
    rows += [(1, day(22, hours=6)), (3, day(21, hours=6) + TTL), (3, day(21, hours=7) + TTL)]
    return pd.DataFrame(rows, columns=["customer_id", "event_timestamp"])


def make_store(tmp_path, offline_type: str, ttl: dt.timedelta) -> FeatureStore:
    repo = tmp_path / offline_type.rsplit(".", 1)[-1]
    (repo / "lake").mkdir(parents=True)
    write_partitions(repo / "lake")
    config = RepoConfig(
        project="test",
        provider="local",
        registry=str(repo / "registry.db"),
        online_store={"type": "sqlite", "path": str(repo / "online.db")},
        offline_store={"type": offline_type},
        entity_key_serialization_version=3,
        repo_path=repo,
    )
    store = FeatureStore(repo_path=str(repo), config=config)
    source = FileSource(
        name="spend_source",
        path=str(repo / "lake" / "dt=*" / "data.parquet"),
        timestamp_field="event_timestamp",
    )
    view = FeatureView(
        name="spending",
        entities=[CUSTOMER],
        ttl=ttl,
        schema=[Field(name="customer_id", dtype=Int64), Field(name="spend", dtype=Float64)],
        source=source,
    )
    store.apply([CUSTOMER, view])
    return store


def training_set(store: FeatureStore, entity_df: pd.DataFrame) -> pd.DataFrame:
    joined = store.get_historical_features(entity_df=entity_df, features=["spending:spend"])
    return joined.to_df().sort_values(["customer_id", "event_timestamp"], ignore_index=True)


@pytest.mark.parametrize("ttl", [TTL, dt.timedelta(0)], ids=["ttl", "no-ttl"])
def test_joins_what_feasts_duckdb_store_joins(tmp_path, ttl):
    feasts = make_store(tmp_path, "duckdb", ttl)
    windowed = make_store(tmp_path, STORE_TYPE, ttl)
    assert isinstance(windowed.config.offline_store, WindowedDuckDBOfflineStoreConfig)
    expected = training_set(feasts, labels())
    assert len(expected) == len(labels())
    assert expected["spend"].isna().any() and expected["spend"].notna().any()
    pd.testing.assert_frame_equal(training_set(windowed, labels()), expected)

    naive = labels().assign(event_timestamp=lambda f: f.event_timestamp.dt.tz_localize(None))
    pd.testing.assert_frame_equal(training_set(windowed, naive), expected)


def test_a_source_reaches_the_join_cut_to_the_window_and_the_ttl(tmp_path):
    store = make_store(tmp_path, STORE_TYPE, TTL)
    view = store.get_feature_view("spending")
    source = view.batch_source
    first, last = pd.Timestamp(day(20)), pd.Timestamp(day(24))
    whole = feast_duckdb._read_data_source(source, str(tmp_path)).to_pandas()

    cut = windowed_reader(feast_duckdb._read_data_source, [view], first, last)
    rows = cut(source, str(tmp_path)).to_pandas()
    needed = whole[whole.event_timestamp.between(first - TTL, last)]
    assert 0 < len(rows) == len(needed) < len(whole)
    assert rows.event_timestamp.min() >= first - TTL and rows.event_timestamp.max() <= last

    forever = view.__copy__()
    forever.ttl = dt.timedelta(0)
    uncut = windowed_reader(feast_duckdb._read_data_source, [forever], first, last)
    assert len(uncut(source, str(tmp_path)).to_pandas()) == (whole.event_timestamp <= last).sum()
