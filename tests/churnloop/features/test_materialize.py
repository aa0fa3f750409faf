import json
import logging

import pandas as pd

from churnloop.features import materialize
from churnloop.features.build import build_feature_partition
from churnloop.features.feast_config import feast_config
from churnloop.features.online import online_features
from churnloop.schema import ENTITY
from tests.churnloop.features_support import D1, D2, assert_online_holds, write_snapshots


def test_materializing_twice_or_out_of_order_keeps_each_customers_latest_row(two_days):
    settings = two_days
    newer = materialize.materialize_day(settings, D2, overlap_days=0)
    older = materialize.materialize_day(settings, D1, overlap_days=0)
    assert (newer.rows_written, older.rows_written, older.rows_superseded) == (2, 1, 1)
    expected = {1: D2, 2: D1, 3: D2}
    assert_online_holds(settings, expected)
    again = materialize.materialize_day(settings, D2, overlap_days=1)
    assert (again.days, again.rows_read, again.rows_written) == ([D1, D2], 4, 3)
    assert json.loads(json.dumps(again.to_dict()))["days"] == [str(D1), str(D2)]
    assert_online_holds(settings, expected)

    write_snapshots(settings, D2, {1: {"plan": "standard", "logins": 9}, 3: {"logins": 2}})
    build_feature_partition(settings, D2)
    materialize.materialize_day(settings, D2)
    assert_online_holds(settings, expected)  # the rebuilt day replaced its own values
    assert online_features(settings, [1]).plan.item() == "standard"


def test_materialize_features_applies_writes_and_reports_the_day(two_days, caplog):
    settings = two_days  # materialize_overlap_days: 1 by default
    caplog.set_level(logging.INFO, logger="churnloop")
    stats = materialize.materialize_features(settings, D2)
    assert json.loads(json.dumps(stats))["days"] == [str(D1), str(D2)]
    assert (stats["rows_read"], stats["rows_written"], stats["rows_superseded"]) == (4, 3, 1)
    assert f"materialized 3 rows of {[D1, D2]} (" in caplog.text
    assert_online_holds(settings, {1: D2, 2: D1, 3: D2})


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

    version = feast_config(settings)["entity_key_serialization_version"]

    ordered = materialize._in_online_key_order(frame)
    assert ordered[ENTITY].tolist() == sorted(ids, key=serialized)
    assert ordered[ENTITY].tolist() != sorted(ids)
    assert sorted(ordered["row"]) == list(range(len(ids)))  # every row, once
