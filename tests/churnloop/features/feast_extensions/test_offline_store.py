"""The windowed store must join exactly what Feast's DuckDB store joins, from fewer rows."""

import datetime as dt

import ibis
import pandas as pd
import pytest
from feast import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    RepoConfig,
    ValueType,
)
from feast.infra.offline_stores import duckdb as feast_duckdb
from feast.types import Float64, Int64

from churnloop.features.feast_extensions.offline_store import (
    STORE_TYPE,
    WindowedDuckDBOfflineStoreConfig,
    windowed_reader,
)

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAYS = 30
TTL = dt.timedelta(days=3)
CUSTOMER = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)


def day(index: int, hours: float = 0) -> dt.datetime:
    return START + dt.timedelta(days=index, hours=hours)


def write_partitions(repo, rewritten: bool) -> None:
    """A partition a day; customer 2 stops after day 10, customer 3 has only odd days.

    ``amount`` is ``spend`` under another name (for a field mapping) and ``created`` is a
    row's write time. When ``rewritten``, customer 1 has a second row of each day's
    timestamp, written an hour later with another spend: which of the two a join picks
    depends on ``created`` alone.
    """
    for index in range(DAYS):
        customers = [1] + ([2] if index <= 10 else []) + ([3] if index % 2 else [])
        spend = [100.0 * c + index for c in customers]
        created = [day(index, hours=7)] * len(customers)
        if rewritten:
            customers, spend, created = (
                [*customers, 1],
                [*spend, -spend[0]],
                [*created, day(index, hours=8)],
            )
        frame = pd.DataFrame(
            {
                "customer_id": pd.Series(customers, dtype="int64"),
                "event_timestamp": [day(index, hours=6)] * len(customers),
                "created": created,
                "spend": spend,
                "amount": spend,
            }
        )
        if index % 3:  # the later write comes first in the file on some days
            frame = frame.iloc[::-1]
        folder = repo / f"dt={day(index).date()}"
        folder.mkdir()
        frame.to_parquet(folder / "data.parquet")


def labels() -> pd.DataFrame:
    """Entity rows of days 20-24, on a feature row's own timestamp, at a TTL's edge, and
    for customers with expired or no features."""
    rows = [(c, day(d)) for c in (1, 2, 3, 4) for d in range(20, 25)]
    rows += [(1, day(22, hours=6)), (3, day(21, hours=6) + TTL), (3, day(21, hours=7) + TTL)]
    return pd.DataFrame(rows, columns=["customer_id", "event_timestamp"])


def make_store(
    tmp_path, offline_type: str, ttl: dt.timedelta, created: str | None = None
) -> FeatureStore:
    """A store of two views over the partitions: ``spending`` (``ttl``; ``created`` names
    its source's created-timestamp column, if any, and rewrites rows) and
    ``recent_spending`` (a day's TTL, its ``spend`` mapped from ``amount``)."""
    repo = tmp_path / offline_type.rsplit(".", 1)[-1]
    (repo / "lake").mkdir(parents=True)
    write_partitions(repo / "lake", rewritten=created is not None)
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
    path = str(repo / "lake" / "dt=*" / "data.parquet")
    schema = [Field(name="customer_id", dtype=Int64), Field(name="spend", dtype=Float64)]
    source = FileSource(
        name="spend_source",
        path=path,
        timestamp_field="event_timestamp",
        created_timestamp_column=created or "",
    )
    view = FeatureView(name="spending", entities=[CUSTOMER], ttl=ttl, schema=schema, source=source)
    mapped = FileSource(
        name="amount_source",
        path=path,
        timestamp_field="event_timestamp",
        field_mapping={"amount": "spend"},
    )
    recent = FeatureView(
        name="recent_spending",
        entities=[CUSTOMER],
        ttl=dt.timedelta(days=1),
        schema=schema,
        source=mapped,
    )
    both = FeatureService(name="both", features=[view, recent])
    store.apply([CUSTOMER, view, recent, both])
    return store


def retrieval(store: FeatureStore, entity_df: pd.DataFrame, **options):
    return store.get_historical_features(
        entity_df=entity_df, features=["spending:spend"], **options
    )


def training_set(store: FeatureStore, entity_df: pd.DataFrame, **options) -> pd.DataFrame:
    joined = retrieval(store, entity_df, **options).to_df()
    return joined.sort_values(["customer_id", "event_timestamp"], ignore_index=True)


def joined_as_of(store: FeatureStore, entity_df: pd.DataFrame, **options) -> bool:
    """Whether the retrieval runs DuckDB's ASOF JOIN (rather than Feast's join)."""
    return "ASOF" in str(ibis.to_sql(retrieval(store, entity_df, **options).table))


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
    as_text = labels().assign(event_timestamp=lambda f: f.event_timestamp.astype(str))
    pd.testing.assert_frame_equal(training_set(windowed, as_text), training_set(feasts, as_text))
    assert joined_as_of(windowed, labels())
    assert not joined_as_of(feasts, labels())


def test_joins_several_views_with_full_names_as_feast_does(tmp_path):
    feasts = make_store(tmp_path, "duckdb", TTL)
    windowed = make_store(tmp_path, STORE_TYPE, TTL)
    entity_df = labels().assign(region=lambda f: f.customer_id % 2)  # rides along

    def joined(store: FeatureStore) -> pd.DataFrame:
        job = store.get_historical_features(
            entity_df=entity_df,
            features=store.get_feature_service("both"),
            full_feature_names=True,
        )
        return job.to_df().sort_values(["customer_id", "event_timestamp"], ignore_index=True)

    expected = joined(feasts)
    assert list(expected.columns[-2:]) == ["spending__spend", "recent_spending__spend"]
    recent = expected["recent_spending__spend"]  # the day's TTL empties more of it
    assert recent.isna().sum() > expected["spending__spend"].isna().sum() and recent.notna().any()
    pd.testing.assert_frame_equal(joined(windowed), expected)


def test_ties_broken_by_created_timestamps_go_to_feasts_join(tmp_path):
    feasts = make_store(tmp_path, "duckdb", TTL, created="created")
    windowed = make_store(tmp_path, STORE_TYPE, TTL, created="created")
    expected = training_set(feasts, labels())
    first = expected[expected.customer_id == 1]["spend"]
    assert (first < 0).all()  # the later write of each day wins
    pd.testing.assert_frame_equal(training_set(windowed, labels()), expected)
    assert not joined_as_of(windowed, labels())


def test_duckdb_plans_the_join_as_of_whatever_it_expects_of_the_entity_rows(tmp_path):
    """DuckDB estimates an in-memory frame at one row and would run a nested loop."""
    store = make_store(tmp_path, STORE_TYPE, TTL)
    training_set(store, labels())
    connection = ibis.get_backend().con
    setting = "current_setting('asof_loop_join_threshold')"
    assert connection.execute(f"SELECT {setting}").fetchone()[0] == 0


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
