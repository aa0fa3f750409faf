"""The direct Redis read must answer as Feast's ``get_online_features`` does, on a real Redis:
every feature type, missing values, a customer never written, one past the view's TTL, one
whose key expired, duplicates; a changed layout or a Redis cluster leaves Feast's read in use,
with a warning."""

import asyncio
import logging
import time

import pytest
import redis
from feast import FeatureService
from feast.infra.online_stores.redis import RedisOnlineStore

from churnloop.features.feast_extensions.redis_online_reader import direct_reader
from tests.churnloop.features.feast_extensions.online_answers import feasts, same
from tests.churnloop.features.feast_extensions.test_online_store import ASKED
from tests.churnloop.features.feast_extensions.test_online_store import (
    make_store as sqlite_store,
)
from tests.churnloop.features.feast_extensions.test_redis_online_writer import (
    make_store,
    rows,
)

pytestmark = pytest.mark.services


@pytest.fixture
def client(redis_address):
    host, port = redis_address.split(":")
    return redis.Redis(host, int(port))


@pytest.fixture
def written(tmp_path, redis_address):
    """A Redis store holding ``rows()`` (customer 1 full, 2 all missing, 3 past the view's
    1-day TTL) by Feast's own write, with a FeatureService of every field."""
    store = make_store(tmp_path, redis_address)
    service = FeatureService(
        name="every_field", features=[store.get_feature_view("customer_features")]
    )
    store.apply([service])
    store.write_to_online_store("customer_features", rows())
    yield store, store.get_feature_service("every_field")
    store.teardown()


def test_answers_equal_feasts_for_every_type_missing_unknown_and_stale_customers(written):
    store, service = written
    reader = direct_reader(store, service)
    assert reader is not None
    ours = asyncio.run(reader.read(ASKED))
    assert same(ours, feasts(store, service, ASKED))
    found = [answer[1] for answer in ours]
    assert found == [True, True, True, False, True], "4 was never written"
    assert ours[2][0]["plan"] == "basic", "past the view's TTL and still served, as by Feast"
    assert ours[0][0]["blob"] == b"\x00\x01" and ours[0][0]["count"] == 2**40


def test_one_customer_alone_is_read_by_one_hmget_with_the_same_answers(written):
    """A request of one customer (the usual) skips the pipeline: each alone as Feast reads it."""
    store, service = written
    reader = direct_reader(store, service)

    async def each_alone() -> list[tuple]:  # one loop: Feast's async client is bound to it
        return [answer for customer in ASKED for answer in await reader.read([customer])]

    assert same(asyncio.run(each_alone()), feasts(store, service, ASKED))


def test_a_customer_whose_key_expired_is_unknown_as_in_feast(written, client):
    store, service = written
    reader = direct_reader(store, service)
    (key,) = reader.keys([1])
    client.pexpire(key, 1)
    time.sleep(0.05)
    ours = asyncio.run(reader.read([1, 3]))
    assert [found for _, found in ours] == [False, True]
    assert same(ours, feasts(store, service, [1, 3]))


def test_a_changed_layout_falls_back_to_feasts_read_with_a_warning(written, monkeypatch, caplog):
    store, service = written
    original = RedisOnlineStore._generate_redis_keys_for_entities
    monkeypatch.setattr(
        RedisOnlineStore,
        "_generate_redis_keys_for_entities",
        lambda self, config, keys: [b"v2:" + key for key in original(self, config, keys)],
    )
    with caplog.at_level(logging.WARNING):
        assert direct_reader(store, service) is None
    assert "a changed Feast layout" in caplog.text


def test_another_online_store_keeps_feasts_read_quietly(tmp_path, caplog):
    store, view = sqlite_store(tmp_path, {"type": "sqlite"})
    with caplog.at_level(logging.WARNING):
        assert direct_reader(store, FeatureService(name="s", features=[view])) is None
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_a_redis_cluster_keeps_feasts_read_with_a_warning(tmp_path, redis_address, caplog):
    store = make_store(tmp_path, redis_address, redis_type="redis_cluster")
    service = FeatureService(name="s", features=[store.get_feature_view("customer_features")])
    with caplog.at_level(logging.WARNING):
        assert direct_reader(store, service) is None
    assert "a Redis cluster" in caplog.text
