"""Materializing into Feast's Redis online store from Arrow, in the layout Feast reads.

Feast's ``write_to_online_store`` turns each value of a day into a protobuf in Python
and hashes each field name once per value: 18 of the 22 s a day of 100k customers took
to reach Redis (``docs/benchmarks.md``). What it stores is simple: per entity, a hash
under Feast's serialized key followed by the project, holding ``_ts:<view>`` (the event
time as a serialized ``Timestamp``) and, per feature, the serialized ``Value`` under the
murmur3 hash of ``<view>:<feature>``. ``RedisArrowWriter.write_arrow`` writes those
bytes column-wise (``feast_extensions.feast_encoding``), with the field names of Feast's own
read path and the client of Feast's store (its connection string, cluster and sentinel
modes), so Feast's reads see exactly what its own write would have left.

It writes as Feast's ``skip_dedup`` mode does, the production profile's: every row
replaces its entity's hash. Without ``skip_dedup`` Feast first compares each row with the
stored timestamp; ``churnloop.features.store`` then leaves the write to Feast.
"""

from __future__ import annotations

import pyarrow as pa
from feast import FeatureView, RepoConfig
from feast.infra.online_stores.helpers import compute_versioned_name
from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig

from churnloop.features.feast_extensions import feast_encoding


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
        versioned = config.registry.enable_online_feature_view_versioning
        view_name = compute_versioned_name(view, versioned)
        names, fields = self._generate_hset_keys_for_features(view, fv_name_override=view_name)
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
