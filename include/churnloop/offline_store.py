"""Feast's DuckDB offline store, reading only the feature rows a training set can join.

Feast's DuckDB store hands its point-in-time join each source whole: every label row
meets every feature row of its customer, in every partition the lake holds, before the
join filters them by timestamp and TTL. A training set's cost then grows with the
lake's history, not with its window (at 100k customers, about 35 ms a day of history:
a year of partitions adds some 12 s, ``docs/benchmarks.md``). Feast's warehouse stores
bound the same join by the entity rows' timestamps (``min_event_timestamp`` in their
query context); this store does that for DuckDB.

Each source reaches the join filtered to ``[earliest entity timestamp - its view's TTL,
latest entity timestamp]``. A feature row before that range has expired for every
entity row, one after it is later than every entity row, so the join's result is the
same; DuckDB skips the Parquet row groups outside the range from their statistics
without reading them. A view without a TTL reads its source back to the start.
Everything else is Feast's DuckDB store, which this class extends through Feast's
documented extension point (``offline_store.type`` names the class); reading and
writing a source stay Feast's own functions (private to its DuckDB module: the tests
run the store against Feast's, so a Feast upgrade that moves them fails there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import ibis
import ibis.expr.datatypes as ibis_types
import pandas as pd
from feast import FeatureView
from feast.data_source import DataSource
from feast.infra.offline_stores import duckdb as feast_duckdb
from feast.infra.offline_stores.ibis import get_historical_features_ibis
from feast.infra.offline_stores.offline_store import RetrievalJob
from feast.infra.offline_stores.offline_utils import infer_event_timestamp_from_entity_df
from feast.infra.registry.base_registry import BaseRegistry
from feast.repo_config import RepoConfig
from ibis.expr.types import Table

__all__ = ["STORE_TYPE", "WindowedDuckDBOfflineStore", "WindowedDuckDBOfflineStoreConfig"]

STORE_TYPE = "churnloop.offline_store.WindowedDuckDBOfflineStore"

SourceReader = Callable[[DataSource, str], Table]


class WindowedDuckDBOfflineStoreConfig(feast_duckdb.DuckDBOfflineStoreConfig):
    """``offline_store`` of ``feature_store.yaml``: ``type`` (this class), then the
    DuckDB store's own settings."""

    type: Literal["churnloop.offline_store.WindowedDuckDBOfflineStore"] = STORE_TYPE


def _earliest_needed(
    source_name: str, feature_views: Sequence[FeatureView], first: pd.Timestamp
) -> pd.Timestamp | None:
    """The oldest feature timestamp any view over the source can join, ``None`` for all."""
    ttls = [view.ttl for view in feature_views if view.batch_source.name == source_name]
    if not ttls or not all(ttls):  # a TTL of 0 or None never expires a row
        return None
    return first - max(ttls)


def windowed_reader(
    read: SourceReader,
    feature_views: Sequence[FeatureView],
    first: pd.Timestamp,
    last: pd.Timestamp,
) -> SourceReader:
    """``read``, with each source's rows cut to those an entity row of ``first``..``last``
    (UTC) can join."""

    def read_window(source: DataSource, repo_path: str) -> Table:
        table = read(source, repo_path)
        timestamps = table[source.timestamp_field].cast(ibis_types.Timestamp(timezone="UTC"))
        in_window = timestamps <= ibis.literal(last)
        earliest = _earliest_needed(source.name, feature_views, first)
        if earliest is not None:
            in_window &= timestamps >= ibis.literal(earliest)
        return table.filter(in_window)

    return read_window


class WindowedDuckDBOfflineStore(feast_duckdb.DuckDBOfflineStore):
    """Feast's DuckDB offline store whose historical retrieval reads only its window."""

    @staticmethod
    def get_historical_features(
        config: RepoConfig,
        feature_views: list[FeatureView],
        feature_refs: list[str],
        entity_df: pd.DataFrame | str,
        registry: BaseRegistry,
        project: str,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
    ) -> RetrievalJob:
        if not isinstance(entity_df, pd.DataFrame):  # a SQL query: bounds unknown until it runs
            return feast_duckdb.DuckDBOfflineStore.get_historical_features(
                config,
                feature_views,
                feature_refs,
                entity_df,
                registry,
                project,
                full_feature_names,
                filter_by_created_timestamp,
            )
        timestamp_column = infer_event_timestamp_from_entity_df(dict(entity_df.dtypes))
        # As Feast reads them: naive timestamps are UTC, strings are parsed.
        timestamps = pd.to_datetime(entity_df[timestamp_column], utc=True)
        return get_historical_features_ibis(
            config=config,
            feature_views=feature_views,
            feature_refs=feature_refs,
            entity_df=entity_df,
            registry=registry,
            project=project,
            full_feature_names=full_feature_names,
            data_source_reader=windowed_reader(
                feast_duckdb._read_data_source, feature_views, timestamps.min(), timestamps.max()
            ),
            data_source_writer=feast_duckdb._write_data_source,
            staging_location=config.offline_store.staging_location,
            staging_location_endpoint_override=config.offline_store.staging_location_endpoint_override,
            filter_by_created_timestamp=filter_by_created_timestamp,
        )
