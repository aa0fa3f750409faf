"""Feast definitions of the churn model's features: entity, source, view, service.

``definitions(settings)`` builds them with the source where the settings' profile puts the
lake; the view's fields come from ``churnloop.features.definition.FEATURE_SCHEMA``. ``feast
apply`` reads the module-level objects; ``churnloop.features.feast_config`` calls ``definitions``.
"""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Float64, Int32, Int64, PrimitiveFeastType, String

from churnloop.features import definition
from churnloop.features.definition import DATASET, FEATURE_SERVICE, FEATURE_VIEW
from churnloop.schema import ENTITY, TIMESTAMP
from churnloop.settings import Settings, get_settings
from churnloop.storage import lake

_FEAST_TYPES: dict[pa.DataType, PrimitiveFeastType] = {
    pa.int32(): Int32,
    pa.int64(): Int64,
    pa.float64(): Float64,
    pa.string(): String,
}


def definitions(settings: Settings) -> tuple[Entity, FileSource, FeatureView, FeatureService]:
    """The Feast objects of the churn features, with the source where ``settings`` put it."""
    customer = Entity(
        name="customer",
        join_keys=[ENTITY],
        value_type=ValueType.INT64,
        description="A customer of the subscription service.",
    )
    source = FileSource(
        name="customer_features_source",
        path=lake(settings).partition_files(DATASET),
        file_format=ParquetFormat(),
        timestamp_field=TIMESTAMP,
        s3_endpoint_override=settings.s3_endpoint_url,
        description="Daily partitions written by churnloop.features.build.build_feature_partition.",
    )
    view = FeatureView(
        name=FEATURE_VIEW,
        entities=[customer],
        ttl=timedelta(days=settings.feature_ttl_days),
        schema=[Field(name=ENTITY, dtype=Int64)]
        + [
            Field(name=field.name, dtype=_FEAST_TYPES[field.type])
            for field in definition.FEATURE_SCHEMA
        ],
        source=source,
        online=True,
        description="Current attributes and 7/30/90-day activity of a customer, one row a day.",
    )
    service = FeatureService(
        name=FEATURE_SERVICE,
        features=[view],
        description="Inputs of the churn model, version 1.",
    )
    return customer, source, view, service


customer, customer_features_source, customer_features, churn_model_v1 = definitions(get_settings())
