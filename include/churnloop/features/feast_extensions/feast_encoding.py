"""Feast's byte encodings of entity keys, feature values and event times, a column at a time.

The online writers (``online_store``, ``redis_online_writer``) use these instead of Feast's
protobuf per value; the bytes equal Feast's byte for byte (the tests compare them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from feast import FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.type_map import python_values_to_proto_values
from feast.types import FeastType, Float32, Float64, Int64
from feast.utils import make_tzaware
from feast.value_type import ValueType
from google.protobuf.timestamp_pb2 import Timestamp

_INT64 = np.dtype("<i8")
_FIXED_WIDTH_VALUES: dict[FeastType, tuple[np.dtype, tuple[Any, ...]]] = {
    Float64: (np.dtype("<f8"), (0.0, -1.5e300)),
    Float32: (np.dtype("<f4"), (0.0, -1.5)),
}
"""Value types encoded as a prefix and the value's bytes: their NumPy type and probes."""


def fixed_width_prefix(
    feasts: Callable[[Any], bytes], pack: Callable[[Any], bytes], probes: Sequence[Any]
) -> bytes | None:
    """What Feast's encoding (``feasts``) puts before a value's packed bytes, or ``None``
    if, on any probe, Feast's bytes are not that prefix followed by ``pack(probe)``."""
    width = len(pack(probes[0]))
    prefix = feasts(probes[0])[:-width]
    if all(feasts(probe) == prefix + pack(probe) for probe in probes):
        return prefix
    return None


def _little_endian(numpy_type: np.dtype) -> Callable[[Any], bytes]:
    return lambda value: np.array([value], numpy_type).tobytes()


def _prefixed(values: np.ndarray, prefix: bytes) -> list[bytes]:
    """Each of ``values`` (a little-endian NumPy array) as ``prefix`` and its bytes."""
    width = len(prefix) + values.itemsize
    rows = np.empty((len(values), width), np.uint8)
    rows[:, : len(prefix)] = np.frombuffer(prefix, np.uint8)
    rows[:, len(prefix) :] = values.view(np.uint8).reshape(len(values), values.itemsize)
    buffer = rows.tobytes()
    return [buffer[start : start + width] for start in range(0, len(buffer), width)]


def int64_key_prefix(join_key: str, version: int) -> bytes | None:
    """What Feast's serialized key of a single INT64 join key puts before the id's 8 bytes
    (little-endian), or None if Feast's keys are not laid out so."""

    def feasts(value: int) -> bytes:
        key = EntityKeyProto(join_keys=[join_key], entity_values=[ValueProto(int64_val=value)])
        return serialize_entity_key(key, entity_key_serialization_version=version)

    return fixed_width_prefix(feasts, _little_endian(_INT64), (0, -(2**62) - 3))


def shared_int64_join_key(views: Sequence[FeatureView]) -> str | None:
    """The join key of ``views`` if they share one and it is a single INT64 (the layout the
    direct online reads know), else None."""
    keys = {tuple((column.name, column.dtype) for column in view.entity_columns) for view in views}
    if len(keys) != 1:
        return None
    (columns,) = keys
    return columns[0][0] if len(columns) == 1 and columns[0][1] == Int64 else None


def int64_keys(ids: Sequence[int], prefix: bytes, suffix: bytes = b"") -> list[bytes]:
    """Each id's key as stored: ``prefix`` (`int64_key_prefix`), the id's 8 bytes, ``suffix``
    (Redis appends the project)."""
    packed = np.asarray(ids, dtype=_INT64).tobytes()
    return [prefix + packed[start : start + 8] + suffix for start in range(0, len(packed), 8)]


def serialized_keys(view: FeatureView, data: pa.Table, version: int) -> list[bytes]:
    """Feast's serialized entity keys of ``data``'s rows, in order.

    A single INT64 join key, the churn model's, is a fixed prefix and the id's 8 bytes,
    packed without a protobuf per key; any other key goes through Feast's serializer
    key by key.
    """
    columns = view.entity_columns
    if len(columns) == 1 and columns[0].dtype == Int64:
        name = columns[0].name
        prefix = int64_key_prefix(name, version)
        if prefix is not None:
            missing = data.column(name).null_count
            if missing:
                raise ValueError(f"feature view {view.name!r}: {missing} rows have no {name!r}")
            ids = data.column(name).to_numpy().astype(_INT64, copy=False)
            return _prefixed(np.ascontiguousarray(ids), prefix)
    join_keys = [column.name for column in columns]
    key_values = [
        python_values_to_proto_values(
            data.column(column.name).to_pylist(), column.dtype.to_value_type()
        )
        for column in columns
    ]
    return [
        serialize_entity_key(
            EntityKeyProto(join_keys=join_keys, entity_values=list(values)),
            entity_key_serialization_version=version,
        )
        for values in zip(*key_values, strict=True)
    ]


def python_value(value: ValueProto) -> Any:
    """A Feast ``Value`` as the Python value it holds; None for no value or a null."""
    kind = value.WhichOneof("val")
    return None if kind in (None, "null_val") else getattr(value, kind)


def _feasts_values(values: np.ndarray, value_type: ValueType) -> list[bytes]:
    return [v.SerializeToString() for v in python_values_to_proto_values(values, value_type)]


def _value_prefix(dtype: FeastType) -> bytes | None:
    numpy_type, probes = _FIXED_WIDTH_VALUES[dtype]
    return fixed_width_prefix(
        lambda probe: _feasts_values(np.array([probe], numpy_type), dtype.to_value_type())[0],
        _little_endian(numpy_type),
        probes,
    )


def _per_distinct(
    column: pa.ChunkedArray, encode: Callable[[pa.Array], list[bytes]]
) -> list[bytes]:
    """``encode`` applied to ``column``'s distinct values (a null and NaN count as one
    each), spread back over its rows."""
    distinct = pc.unique(column)
    encoded = np.array(encode(distinct), dtype=object)
    positions = pc.index_in(column, value_set=distinct, skip_nulls=False)
    return encoded[positions.to_numpy(zero_copy_only=False)].tolist()


def _packed(column: pa.ChunkedArray, dtype: FeastType, prefix: bytes) -> list[bytes]:
    """Each row as ``prefix`` and its value's bytes; null and NaN as Feast encodes them."""
    numpy_type = _FIXED_WIDTH_VALUES[dtype][0]
    with np.errstate(over="ignore"):  # a double beyond float32 becomes inf, as in Feast
        values = column.to_numpy(zero_copy_only=False).astype(numpy_type, copy=False)
    encoded = _prefixed(np.ascontiguousarray(values), prefix)
    missing = np.flatnonzero(np.isnan(values))  # nulls arrive as NaN
    if len(missing):
        no_value = _feasts_values(np.array([np.nan], numpy_type), dtype.to_value_type())[0]
        for index in missing:
            encoded[index] = no_value
    return encoded


def serialized_values(column: pa.ChunkedArray, dtype: FeastType) -> list[bytes]:
    """The serialized Feast ``Value`` of each row of ``column``, a feature of type ``dtype``.

    Floats are packed unless their layout fails the check or the Arrow type is not one
    Feast accepts for ``dtype`` (a DOUBLE from float32 data, which Feast refuses): those
    go through Feast's serializer, so that its errors stay Feast's too.
    """
    value_type = dtype.to_value_type()
    if dtype in _FIXED_WIDTH_VALUES and (prefix := _value_prefix(dtype)) is not None:
        accepted = column.type == pa.float64() or (dtype == Float32 and column.type == pa.float32())
        if accepted:
            return _packed(column, dtype, prefix)
    return _per_distinct(
        column, lambda distinct: _feasts_values(distinct.to_numpy(zero_copy_only=False), value_type)
    )


def _feasts_timestamps(distinct: pa.Array) -> list[bytes]:
    """As Feast's conversion for the online store: pandas, then a tz-aware datetime
    (naive taken as UTC), then a ``Timestamp``."""
    encoded = []
    for value in pd.to_datetime(distinct.to_numpy(zero_copy_only=False)):
        timestamp = Timestamp()
        timestamp.FromDatetime(make_tzaware(value.to_pydatetime()))
        encoded.append(timestamp.SerializeToString())
    return encoded


def serialized_event_times(view: FeatureView, data: pa.Table) -> list[bytes]:
    """Each row's event time (the view's source's timestamp field) as a serialized
    ``Timestamp``; an empty timestamp is refused, naming the view."""
    name = view.batch_source.timestamp_field
    column = data.column(name)
    if column.null_count:
        raise ValueError(f"feature view {view.name!r}: {column.null_count} rows have no {name!r}")
    return _per_distinct(column, _feasts_timestamps)
