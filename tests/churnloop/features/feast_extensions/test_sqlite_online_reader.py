"""The direct read of the embedded profile's SQLite store must answer as Feast's
``get_online_features`` does: every feature type, missing values, a customer never written,
one past the view's TTL, duplicates, a table not written yet; another store or a changed
key layout leaves Feast's read in use."""

import asyncio
import logging

import pyarrow as pa
import pytest
from feast import FeatureService, FeatureStore

from churnloop.features.feast_extensions import feast_encoding
from churnloop.features.feast_extensions.online_store import STORE_TYPE, WideSqliteOnlineStore
from churnloop.features.feast_extensions.sqlite_online_reader import sqlite_direct_reader
from tests.churnloop.features.feast_extensions.online_answers import feasts, same
from tests.churnloop.features.feast_extensions.test_online_store import ASKED, make_store, rows


def every_field(store: FeatureStore) -> FeatureService:
    store.apply(
        [FeatureService(name="every_field", features=[store.get_feature_view("customer_features")])]
    )
    return store.get_feature_service("every_field")


@pytest.fixture
def written(tmp_path):
    """The wide SQLite store holding ``rows()`` (customer 1 full, 2 all missing, 3 past the
    view's 1-day TTL), with a FeatureService of every field."""
    store, view = make_store(tmp_path, {"type": STORE_TYPE})
    WideSqliteOnlineStore().write_arrow(store.config, view, pa.Table.from_pandas(rows()))
    return store, every_field(store)


def test_answers_equal_feasts_for_every_type_missing_unknown_and_stale_customers(written):
    store, service = written
    reader = sqlite_direct_reader(store, service)
    assert reader is not None

    ours = asyncio.run(reader.read(ASKED))

    assert same(ours, feasts(store, service, ASKED))
    assert [found for _, found in ours] == [True, True, True, False, True], "4 never written"
    assert ours[2][0]["plan"] == "basic", "past the view's TTL and still served, as by Feast"
    assert ours[0][0]["ratio"] == 0.25 and ours[0][0]["active"] is True
    assert ours[0][0]["blob"] == b"\x00\x01" and ours[0][0]["count"] == 2**40


def test_one_customer_alone_answers_as_feast(written):
    store, service = written
    reader = sqlite_direct_reader(store, service)

    async def each_alone() -> list[tuple]:
        return [answer for customer in ASKED for answer in await reader.read([customer])]

    assert same(asyncio.run(each_alone()), feasts(store, service, ASKED))


def test_a_store_not_written_yet_knows_no_customer(tmp_path):
    store, _ = make_store(tmp_path, {"type": STORE_TYPE})
    service = every_field(store)
    reader = sqlite_direct_reader(store, service)

    ours = asyncio.run(reader.read([1, 2]))

    assert [found for _, found in ours] == [False, False]
    assert same(ours, feasts(store, service, [1, 2]))


def test_a_changed_key_layout_falls_back_to_feasts_read_with_a_warning(
    written, monkeypatch, caplog
):
    store, service = written
    monkeypatch.setattr(
        feast_encoding, "serialize_entity_key", lambda key, **_: b"v9" + key.SerializeToString()
    )
    with caplog.at_level(logging.WARNING):
        assert sqlite_direct_reader(store, service) is None
    assert "not directly" in caplog.text


def test_another_online_store_keeps_feasts_read_quietly(tmp_path, caplog):
    store, _ = make_store(tmp_path, {"type": "sqlite"})
    with caplog.at_level(logging.WARNING):
        assert sqlite_direct_reader(store, every_field(store)) is None
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
