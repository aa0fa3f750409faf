"""The column-wise Redis write must leave exactly what Feast's own write leaves, whatever
its chunks, and an error reply must stop it, named, without a reply left unread."""

import math
import time
import uuid

import pandas as pd
import pyarrow as pa
import pytest
import redis
from feast import FeatureStore
from feast.infra.online_stores.redis import RedisOnlineStoreConfig

from churnloop.features.feast_extensions import feast_encoding
from churnloop.features.feast_extensions.redis_online_writer import RedisArrowWriter, writes_arrow
from tests.churnloop.features.feast_extensions.test_online_store import FIELDS, feast_repo, rows

pytestmark = pytest.mark.services


@pytest.fixture
def client(redis_address):
    host, port = redis_address.split(":")
    return redis.Redis(host, int(port))


def make_store(tmp_path, redis_address: str, **online) -> FeatureStore:
    """A store of its own project (Redis keys end with it) on the test Redis."""
    project = f"w{uuid.uuid4().hex[:10]}"
    redis_store = {"type": "redis", "connection_string": redis_address, **online}
    return feast_repo(tmp_path / project, project, redis_store)[0]


def held(client: redis.Redis, store: FeatureStore) -> dict[bytes, dict[bytes, bytes]]:
    """Every hash of ``store``'s project, by entity key without the project."""
    project = store.config.project.encode()
    return {
        key[: -len(project)]: client.hgetall(key) for key in client.scan_iter(match=b"*" + project)
    }


def write_arrow(
    store: FeatureStore, frame: pd.DataFrame, writer: RedisArrowWriter | None = None
) -> None:
    view = store.get_feature_view("customer_features")
    (writer or RedisArrowWriter()).write_arrow(store.config, view, pa.Table.from_pandas(frame))


def chunked(rows: int) -> RedisArrowWriter:
    writer = RedisArrowWriter()
    writer.chunk_rows = rows
    return writer


@pytest.mark.parametrize("chunk_rows", [1, 2, RedisArrowWriter.chunk_rows])
def test_redis_holds_what_feasts_own_write_leaves(tmp_path, redis_address, client, chunk_rows):
    feasts = make_store(tmp_path, redis_address, skip_dedup=True)
    ours = make_store(tmp_path, redis_address, skip_dedup=True)
    try:
        feasts.write_to_online_store("customer_features", rows())
        write_arrow(ours, rows(), chunked(chunk_rows))
        expected = held(client, feasts)
        assert len(expected) == 3
        assert held(client, ours) == expected

        features = [f"customer_features:{field.name}" for field in FIELDS]
        asked = [{"customer_id": c} for c in (1, 2, 3, 4)]
        answer = ours.get_online_features(features=features, entity_rows=asked).to_dict()
        assert answer["plan"] == ["premium", None, "basic", None]
        assert answer["count"] == [2**40, None, -5, None]
    finally:
        feasts.teardown()
        ours.teardown()


@pytest.mark.parametrize("chunk_rows", [1, RedisArrowWriter.chunk_rows])
def test_a_row_replaces_its_customers_hash_and_keys_expire_as_configured(
    tmp_path, redis_address, client, chunk_rows
):
    store = make_store(tmp_path, redis_address, skip_dedup=True, key_ttl_seconds=3600)
    try:
        write_arrow(store, rows(), chunked(chunk_rows))
        write_arrow(store, rows().iloc[[0]].assign(plan="basic", amount=math.nan))
        answer = store.get_online_features(
            features=["customer_features:plan", "customer_features:amount"],
            entity_rows=[{"customer_id": 1}, {"customer_id": 2}],
        ).to_dict()
        assert answer["plan"] == ["basic", None] and answer["amount"] == [None, None]
        ttls = [client.ttl(key) for key in client.scan_iter(match=f"*{store.config.project}")]
        assert len(ttls) == 3 and all(0 < ttl <= 3600 for ttl in ttls)
    finally:
        store.teardown()


def test_feasts_timestamp_checked_write_is_left_to_feast(tmp_path, redis_address):
    store = make_store(tmp_path, redis_address)  # skip_dedup off: Feast compares timestamps
    try:
        assert not writes_arrow(store.config.online_store)
        with pytest.raises(ValueError, match="skip_dedup only"):
            write_arrow(store, rows())
    finally:
        store.teardown()


def test_an_error_reply_stops_the_write_named_and_its_connection_is_not_reused(
    tmp_path, redis_address, client
):
    store = make_store(tmp_path, redis_address, skip_dedup=True)
    view = store.get_feature_view("customer_features")
    table = pa.Table.from_pandas(rows())
    keys = feast_encoding.serialized_keys(
        view, table, store.config.entity_key_serialization_version
    )
    in_the_way = keys[1] + store.config.project.encode()  # customer 2's hash key
    writer = chunked(1)  # row 1's reply is read after row 2's command is sent
    connection_id = writer._get_client(store.config.online_store).client_id()  # the pool's one
    try:
        client.set(in_the_way, "not a hash")
        with pytest.raises(
            redis.ResponseError, match=r"'customer_features'.* HSET of row 1 .*WRONG"
        ):
            writer.write_arrow(store.config, view, table)
        assert _closed(client, connection_id)

        client.delete(in_the_way)
        writer.write_arrow(store.config, view, table)
        assert client.type(in_the_way) == b"hash"
        answer = store.get_online_features(
            features=["customer_features:plan"], entity_rows=[{"customer_id": c} for c in (1, 2, 3)]
        ).to_dict()
        assert answer["plan"] == ["premium", None, "basic"]
    finally:
        store.teardown()


def _closed(client: redis.Redis, connection_id: int) -> bool:
    """Whether Redis no longer lists the connection (it sees a close on its next loop)."""
    for _ in range(50):
        if connection_id not in {int(entry["id"]) for entry in client.client_list()}:
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize(
    ("online", "written"),
    [
        ({"skip_dedup": True}, True),
        ({"skip_dedup": True, "redis_type": "redis_sentinel"}, True),
        ({"skip_dedup": False}, False),
        ({"skip_dedup": True, "redis_type": "redis_cluster"}, False),
    ],
)
def test_a_cluster_and_feasts_timestamp_checks_are_left_to_feast(online, written):
    assert writes_arrow(RedisOnlineStoreConfig(**online)) is written
