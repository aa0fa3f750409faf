"""Materializing into Feast's Redis online store from Arrow, in the layout Feast reads.

``RedisArrowWriter.write_arrow`` stores what Feast's ``skip_dedup`` write would (every row
replaces its entity's hash), column-wise through ``feast_encoding``, with Feast's client
and field names; without ``skip_dedup``, ``churnloop.features.materialize`` leaves it to Feast.
"""

from __future__ import annotations

import pyarrow as pa
from feast import FeatureView, RepoConfig
from feast.infra.online_stores.helpers import compute_versioned_name
from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig

from churnloop.features.feast_extensions import feast_encoding


def hash_fields(
    online: RedisOnlineStore,
    config: RepoConfig,
    view: FeatureView,
    features: list[str] | None = None,
) -> tuple[list[str], list]:
    """The view's features (all, or ``features``) then its timestamp's field name, and the
    hash fields Feast stores them under (its helper, with the view's versioned name)."""
    versioned = config.registry.enable_online_feature_view_versioning
    return online._generate_hset_keys_for_features(
        view, features, fv_name_override=compute_versioned_name(view, versioned)
    )


def writes_arrow(online_store: object) -> bool:
    """Whether ``write_arrow`` can write for this ``online_store`` configuration."""
    return isinstance(online_store, RedisOnlineStoreConfig) and online_store.skip_dedup


class RedisArrowWriter(RedisOnlineStore):
    """Feast's Redis store with a column-wise write; reads stay Feast's (this class is
    not configured as the store, only used to write)."""

    def write_arrow(self, config: RepoConfig, view: FeatureView, data: pa.Table) -> None:
        """Write ``data`` (the view's join keys, its source's timestamp field and every
        feature) in one pipeline, each row replacing its entity's hash."""
        online = config.online_store
        if not writes_arrow(online):
            raise ValueError("RedisArrowWriter writes a Redis online store with skip_dedup only")
        project = config.project.encode("utf-8")
        keys = feast_encoding.serialized_keys(view, data, config.entity_key_serialization_version)
        names, fields = hash_fields(self, config, view)
        columns = {feature.name: feature.dtype for feature in view.features}
        values = [
            feast_encoding.serialized_values(data.column(name), columns[name])
            if name in columns
            else feast_encoding.serialized_event_times(view, data)
            for name in names  # the features, then the timestamp's field
        ]
        with self._get_client(online).pipeline(transaction=False) as pipe:
            for key, row in zip(keys, zip(*values, strict=True), strict=True):
                entity = key + project
                pipe.hset(entity, mapping=dict(zip(fields, row, strict=True)))
                if online.key_ttl_seconds:
                    pipe.expire(entity, online.key_ttl_seconds)
            pipe.execute()
