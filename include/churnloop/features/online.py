"""Online features of the FeatureService, decoded from Feast's response in one place.

``OnlineFeatureReader.read`` gives a typed DataFrame (with ``found``), ``rows`` the model
server's per-customer dicts without holding its event loop; an unknown customer (no
current value for any feature) is ``found == False``, or ``None`` in ``rows``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
from feast.protos.feast.serving.ServingService_pb2 import FieldStatus

from churnloop.features import definition
from churnloop.features.feast_config import (
    feature_store,
    registered_service,
    service_feature_names,
)
from churnloop.features.feast_extensions.feast_encoding import python_value
from churnloop.features.feast_extensions.redis_online_reader import direct_reader
from churnloop.features.feast_extensions.sqlite_online_reader import sqlite_direct_reader
from churnloop.schema import ENTITY
from churnloop.settings import Settings

__all__ = ["FOUND", "OnlineFeatureReader", "online_features"]

FOUND = "found"
"""Column of ``online_features`` telling whether the online store knows the customer."""


def _holds_current_value(vector: Any, index: int) -> bool:
    """Whether row ``index`` of a Feast online response's feature vector is a current value.

    The stores say "no value" differently: SQLite answers a customer it never stored with
    status NOT_FOUND, Redis with status PRESENT, no value and event timestamp 0; a value
    past the feature view's TTL is OUTSIDE_MAX_AGE. Present and stamped covers them all.
    """
    return (
        vector.statuses[index] == FieldStatus.PRESENT and vector.event_timestamps[index].seconds > 0
    )


class OnlineFeatureReader:
    """Online features of the FeatureService for the model server's hot path.

    Holds one FeatureStore, so the registry is read once and cached for
    ``settings.feast_registry_cache_ttl_seconds``, and connections are reused. Unknown
    customers (never materialized, or every value past the TTL) are not an error; the
    caller decides what to serve for them. Rows follow the order asked, duplicates
    included.
    """

    def __init__(self, settings: Settings) -> None:
        self.store = feature_store(settings)
        self.service = registered_service(self.store, settings)
        self.names = service_feature_names(self.service)
        self._schema = pa.schema(
            [
                pa.field(ENTITY, pa.int64()),
                pa.field(FOUND, pa.bool_()),
                *(definition.TABLE_SCHEMA.field(name) for name in self.names),
            ]
        )
        self._async_reads = True
        self.direct = direct_reader(self.store, self.service) or sqlite_direct_reader(
            self.store, self.service
        )

    def read(self, customer_ids: Sequence[int]) -> pd.DataFrame:
        """Columns: ``customer_id``, ``found``, then ``feature_names`` in order; an unknown
        customer's features are missing (None, or NaN in numeric columns)."""
        ids = [int(customer) for customer in customer_ids]
        if ids:
            response = self.store.get_online_features(
                features=self.service, entity_rows={ENTITY: ids}
            )
            rows = [
                {ENTITY: customer, FOUND: found, **values}
                for customer, (values, found) in zip(
                    ids, self._decode(response.proto, len(ids)), strict=True
                )
            ]
        else:
            rows = []
        return pa.Table.from_pylist(rows, schema=self._schema).to_pandas()

    async def rows(self, customer_ids: list[int]) -> list[dict[str, Any] | None]:
        """Each customer's features by name, or None for an unknown customer.

        Reads our stores directly, Redis in one round trip (`direct_reader`), the embedded
        SQLite store by one SELECT on the event loop (`sqlite_direct_reader`); any other
        store through Feast's async read where it has one, else its blocking read in a
        worker thread.
        """
        if self.direct is not None:
            decoded = await self.direct.read(customer_ids)
            return [values if found else None for values, found in decoded]
        entity_rows = {ENTITY: customer_ids}
        response = None
        if self._async_reads:
            try:
                response = await self.store.get_online_features_async(
                    features=self.service, entity_rows=entity_rows
                )
            except NotImplementedError:
                self._async_reads = False
        if response is None:
            response = await asyncio.to_thread(
                self.store.get_online_features, features=self.service, entity_rows=entity_rows
            )
        decoded = self._decode(response.proto, len(customer_ids))
        return [values if found else None for values, found in decoded]

    def _decode(self, response: Any, count: int) -> list[tuple[dict[str, Any], bool]]:
        """Feast's response proto as, per customer, its feature values by name and whether
        any of them is current; values are read from the proto directly (no type map)."""
        vectors = dict(zip(response.metadata.feature_names.val, response.results, strict=True))
        columns = [(name, vectors[name]) for name in self.names]
        decoded: list[tuple[dict[str, Any], bool]] = []
        for index in range(count):
            values: dict[str, Any] = {}
            found = False
            for name, vector in columns:
                values[name] = python_value(vector.values[index])
                found = found or _holds_current_value(vector, index)
            decoded.append((values, found))
        return decoded


def online_features(settings: Settings, customer_ids: Sequence[int]) -> pd.DataFrame:
    """One-off online lookup (see ``OnlineFeatureReader``, which a server should hold)."""
    return OnlineFeatureReader(settings).read(customer_ids)
