"""Column-wise encodings must equal what Feast's own write path produces, byte for byte."""

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.types import Bool, Bytes, Float32, Float64, Int32, Int64, String
from feast.utils import _convert_arrow_to_proto
from google.protobuf.timestamp_pb2 import Timestamp

from churnloop.features.feast_extensions import feast_encoding
from tests.churnloop.features.feast_extensions.test_online_store import view

SOURCE = FileSource(path="unused.parquet", timestamp_field="event_timestamp")
NOW = dt.datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=dt.UTC)
IDS = [0, 1, -1, 2**63 - 1, -(2**63), 123_456_789]


def feasts_write(feature_view: FeatureView, table: pa.Table) -> tuple[list, dict, list]:
    """Keys, values by feature and event times as Feast's write path serializes them."""
    rows = _convert_arrow_to_proto(table, feature_view, {"customer_id": ValueType.INT64})
    keys = [serialize_entity_key(key, entity_key_serialization_version=3) for key, *_ in rows]
    values = {
        field.name: [row[1][field.name].SerializeToString() for row in rows]
        for field in feature_view.features
    }
    times = []
    for _, _, stamp, _ in rows:
        timestamp = Timestamp()
        timestamp.FromDatetime(stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC))
        times.append(timestamp.SerializeToString())
    return keys, values, times


FEATURES = {
    "amount": (Float64, pa.array([1234.5678, math.nan, None, 0.0, -0.0, math.inf, 1e-310])),
    "ratio": (Float32, pa.array([0.25, None, math.nan, 1.5, -3.0, 0.1, 0.0], pa.float32())),
    "ratio_from_doubles": (Float32, pa.array([0.1, None, 1 / 3, 2.0, 0.0, -7.5, 1e39])),
    "small": (Int32, pa.array([7, None, -1, 0, 2**31 - 1, 7, 7], pa.int32())),
    "count": (Int64, pa.array([2**40, 0, -5, None, 2**40, 3, 3], pa.int64())),
    "count_full": (Int64, pa.array([2**62, 0, -5, 1, 2**62, 3, 3], pa.int64())),
    "plan": (String, pa.array(["premium", None, "basic", "", "wést", "basic", "premium"])),
    "active": (Bool, pa.array([True, None, False, True, True, False, None])),
    "blob": (Bytes, pa.array([b"\x00\x01", None, b"", b"x", b"x", b"\x00", b""])),
}


def features_table(stamps: list) -> tuple[FeatureView, pa.Table]:
    feature_view = view(
        SOURCE, [Field(name=name, dtype=dtype) for name, (dtype, _) in FEATURES.items()]
    )
    table = pa.table(
        {
            "customer_id": pa.array([1, 2, 3, 4, 5, 6, 7], pa.int64()),
            "event_timestamp": stamps,
            **{name: values for name, (_, values) in FEATURES.items()},
        }
    )
    return feature_view, table


def test_values_and_event_times_are_feasts_byte_for_byte():
    stamps = [NOW, NOW, NOW - dt.timedelta(hours=1), NOW, NOW - dt.timedelta(days=3), NOW, NOW]
    feature_view, table = features_table(stamps)
    keys, values, times = feasts_write(feature_view, table)
    assert feast_encoding.serialized_keys(feature_view, table, 3) == keys
    for field in feature_view.features:
        encoded = feast_encoding.serialized_values(table.column(field.name), field.dtype)
        assert encoded == values[field.name], field.name
    assert feast_encoding.serialized_event_times(feature_view, table) == times

    naive = pa.array([stamp.replace(tzinfo=None) for stamp in stamps], pa.timestamp("ns"))
    _, table = features_table(naive)  # taken as UTC, as Feast does
    assert feast_encoding.serialized_event_times(feature_view, table) == times


def test_a_column_feast_refuses_is_refused_as_feast_does():
    doubles_as_float32 = pa.chunked_array([pa.array([0.5, 1.5], pa.float32())])
    with pytest.raises(AssertionError, match="float32"):
        feast_encoding.serialized_values(doubles_as_float32, Float64)


def test_an_empty_event_time_is_refused_naming_the_view():
    feature_view, table = features_table([NOW, None, NOW, NOW, NOW, NOW, None])
    with pytest.raises(ValueError, match="'customer_features': 2 rows have no 'event_timestamp'"):
        feast_encoding.serialized_event_times(feature_view, table)


def test_a_value_layout_unlike_the_expected_one_goes_through_feasts_serializer(monkeypatch):
    feasts = feast_encoding._feasts_values
    monkeypatch.setattr(
        feast_encoding,
        "_feasts_values",
        lambda values, kind: [v + b"v9" for v in feasts(values, kind)],
    )
    column = pa.chunked_array([pa.array([1.5, None, 1.5, -2.0])])
    expected = feasts(column.to_numpy(zero_copy_only=False), ValueType.DOUBLE)
    assert feast_encoding.serialized_values(column, Float64) == [v + b"v9" for v in expected]


def feasts_keys(join_key: str, values: list[ValueProto]) -> list[bytes]:
    return [
        serialize_entity_key(EntityKeyProto(join_keys=[join_key], entity_values=[value]), 3)
        for value in values
    ]


def test_entity_keys_are_feasts_byte_for_byte():
    ids = pa.table({"customer_id": pa.array(IDS, pa.int64())})
    expected = feasts_keys("customer_id", [ValueProto(int64_val=i) for i in IDS])
    assert feast_encoding.serialized_keys(view(SOURCE, []), ids, 3) == expected

    region = Entity(name="region", join_keys=["region"], value_type=ValueType.STRING)
    by_region = FeatureView(
        name="regional",
        entities=[region],
        schema=[Field(name="region", dtype=String)],
        source=SOURCE,
        ttl=dt.timedelta(days=1),
    )
    names = pa.table({"region": ["east", "wést", ""]})
    expected = feasts_keys("region", [ValueProto(string_val=n) for n in ["east", "wést", ""]])
    assert feast_encoding.serialized_keys(by_region, names, 3) == expected

    with pytest.raises(ValueError, match="'customer_features': 1 rows have no 'customer_id'"):
        feast_encoding.serialized_keys(view(SOURCE, []), pa.table({"customer_id": [1, None]}), 3)


def test_a_key_layout_unlike_the_expected_one_goes_through_feasts_serializer(monkeypatch):
    def changed_layout(key, entity_key_serialization_version):
        return serialize_entity_key(key, entity_key_serialization_version) + b"v9"

    monkeypatch.setattr(feast_encoding, "serialize_entity_key", changed_layout)
    ids = pa.table({"customer_id": pa.array(IDS, pa.int64())})
    keys = feast_encoding.serialized_keys(view(SOURCE, []), ids, 3)
    expected = feasts_keys("customer_id", [ValueProto(int64_val=i) for i in IDS])
    assert keys == [key + b"v9" for key in expected]


def test_a_fixed_width_prefix_is_taken_only_when_every_probe_fits_it():
    def pack(value: float) -> bytes:
        return np.float64(value).tobytes()

    assert feast_encoding.fixed_width_prefix(lambda v: b"P" + pack(v), pack, [0.0, 2.5]) == b"P"
    odd = {0.0: b"P" + pack(0.0), 2.5: b"Q" + pack(2.5)}
    assert feast_encoding.fixed_width_prefix(odd.__getitem__, pack, [0.0, 2.5]) is None
