"""Feast's DuckDB offline store, joining a training set from only the rows it can use.

Each source is read only within [earliest entity timestamp - its view's TTL, latest entity
timestamp]; where that gives Feast's answer exactly, DuckDB's ASOF JOIN replaces Feast's
join. Configured as ``offline_store.type``; the result equals Feast's DuckDB store's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Literal

import ibis
import ibis.expr.datatypes as ibis_types
import pandas as pd
from feast import FeatureView
from feast.data_source import DataSource
from feast.infra.offline_stores import duckdb as feast_duckdb
from feast.infra.offline_stores.ibis import IbisRetrievalJob, get_historical_features_ibis
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from feast.infra.offline_stores.offline_utils import infer_event_timestamp_from_entity_df
from feast.infra.registry.base_registry import BaseRegistry
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.repo_config import RepoConfig
from ibis.expr.types import Table

__all__ = ["STORE_TYPE", "WindowedDuckDBOfflineStore", "WindowedDuckDBOfflineStoreConfig"]

STORE_TYPE = "churnloop.features.feast_extensions.offline_store.WindowedDuckDBOfflineStore"

SourceReader = Callable[[DataSource, str], Table]
UTC = ibis_types.Timestamp(timezone="UTC")


class WindowedDuckDBOfflineStoreConfig(feast_duckdb.DuckDBOfflineStoreConfig):
    """``offline_store`` of ``feature_store.yaml``: ``type`` (this class), then the
    DuckDB store's own settings."""

    type: Literal[
        "churnloop.features.feast_extensions.offline_store.WindowedDuckDBOfflineStore"
    ] = STORE_TYPE


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
        timestamps = table[source.timestamp_field].cast(UTC)
        in_window = timestamps <= ibis.literal(last)
        earliest = _earliest_needed(source.name, feature_views, first)
        if earliest is not None:
            in_window &= timestamps >= ibis.literal(earliest)
        return table.filter(in_window)

    return read_window


@dataclasses.dataclass(frozen=True)
class _ViewRows:
    """What one view brings to the join: its source's rows, with its join keys (source
    column -> entity column), timestamp and requested features (output name -> source
    column), and its TTL."""

    table: Table
    join_keys: dict[str, str]
    timestamp: str
    features: dict[str, str]
    ttl: dt.timedelta | None


def _view_rows(
    view: FeatureView, feature_refs: Sequence[str], full_feature_names: bool, table: Table
) -> _ViewRows:
    """The view's requested features, named as Feast names them in a training set."""
    source = view.batch_source
    for source_name, feature_name in source.field_mapping.items():
        if source_name in table.columns:
            table = table.rename({feature_name: source_name})
    prefix = f"{view.projection.name_to_use()}:"
    requested = [ref.split(":")[1] for ref in feature_refs if ref.startswith(prefix)]
    column_prefix = f"{view.projection.name_alias or view.name}__" if full_feature_names else ""
    return _ViewRows(
        table=table,
        join_keys=view.projection.join_key_map or {e.name: e.name for e in view.entity_columns},
        timestamp=source.timestamp_field,
        features={f"{column_prefix}{name}": name for name in requested},
        ttl=view.ttl,
    )


def _as_of_join(entity_table: Table, views: Sequence[_ViewRows], event_timestamp: str) -> Table:
    """Each entity row with, per view, its latest feature row at or before its timestamp,
    whose features are empty when that row is older than the view's TTL.

    The columns are the entity table's, then each view's features in order, as Feast's
    join returns them.
    """
    joined = entity_table
    feature_columns: list[str] = []
    for index, view in enumerate(views):
        keys = {f"__key{index}_{k}": source for k, source in enumerate(view.join_keys)}
        stamp = f"__timestamp{index}"
        rows = view.table.select(
            **{alias: view.table[source] for alias, source in keys.items()},
            **{stamp: view.table[view.timestamp].cast(UTC)},
            **{output: view.table[source] for output, source in view.features.items()},
        )
        joined = joined.asof_join(
            rows,
            on=joined[event_timestamp] >= rows[stamp],
            predicates=[
                joined[view.join_keys[source]] == rows[alias] for alias, source in keys.items()
            ],
        )
        if view.ttl:
            live = joined[stamp] + ibis.literal(view.ttl) >= joined[event_timestamp]
            joined = joined.mutate(
                **{output: live.ifelse(joined[output], ibis.null()) for output in view.features}
            )
        feature_columns.extend(view.features)
    return joined.select(*entity_table.columns, *feature_columns)


def _as_of_joinable(
    feature_views: Sequence[FeatureView],
    feature_refs: list[str],
    registry: BaseRegistry,
    project: str,
    filter_by_created_timestamp: bool,
) -> bool:
    """Whether `_as_of_join` answers the request exactly as Feast's join would."""
    if filter_by_created_timestamp:
        return False
    if any(view.batch_source.created_timestamp_column for view in feature_views):
        return False
    return not OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry)


def _entity_table(entity_df: pd.DataFrame, timestamp_column: str, utc: pd.Series) -> Table:
    """The entity rows as Feast's join reads them: timestamps held as text replaced by
    ``utc`` (the column parsed as UTC), others kept as they are (the caller's frame is
    not changed)."""
    held = entity_df[timestamp_column].infer_objects()
    if pd.api.types.is_string_dtype(held) or pd.api.types.is_object_dtype(held):
        entity_df = entity_df.assign(**{timestamp_column: utc})
    return ibis.memtable(entity_df)


def _plan_asof_joins(connection) -> None:
    """Let DuckDB plan every ASOF join as one.

    DuckDB runs an ASOF join whose left side it expects to be small as a nested loop
    (``asof_loop_join_threshold`` rows), and it expects a scan of an in-memory frame to
    hold one row: a large training set would run as a nested loop.
    """
    connection.execute("SET asof_loop_join_threshold = 0")


def _staging(config: RepoConfig) -> dict[str, Any]:
    """Where the DuckDB store's settings say a retrieval job stages its result."""
    return {
        "staging_location": config.offline_store.staging_location,
        "staging_location_endpoint_override": (
            config.offline_store.staging_location_endpoint_override
        ),
    }


def _as_of_retrieval(
    config: RepoConfig,
    feature_views: Sequence[FeatureView],
    feature_refs: list[str],
    entity_df: pd.DataFrame,
    full_feature_names: bool,
    timestamps: pd.Series,
    read: SourceReader,
) -> RetrievalJob:
    """The retrieval as one ASOF join per view over the windowed sources; ``timestamps``
    is the entity frame's timestamp column parsed as UTC."""
    timestamp_column = str(timestamps.name)
    repo_path = str(config.repo_path)
    views = [
        _view_rows(view, feature_refs, full_feature_names, read(view.batch_source, repo_path))
        for view in feature_views
    ]
    entity_table = _entity_table(entity_df, timestamp_column, timestamps)
    _plan_asof_joins(ibis.get_backend().con)
    return IbisRetrievalJob(
        _as_of_join(entity_table, views, timestamp_column),
        on_demand_feature_views=[],
        full_feature_names=full_feature_names,
        metadata=RetrievalMetadata(
            features=feature_refs,
            keys=list(set(entity_df.columns) - {timestamp_column}),
            min_event_timestamp=timestamps.min().to_pydatetime(),
            max_event_timestamp=timestamps.max().to_pydatetime(),
        ),
        data_source_writer=feast_duckdb._write_data_source,
        repo_path=repo_path,
        **_staging(config),
    )


class WindowedDuckDBOfflineStore(feast_duckdb.DuckDBOfflineStore):
    """Feast's DuckDB offline store whose historical retrieval reads only its window and
    joins it with DuckDB's ASOF JOIN."""

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
        timestamps = pd.to_datetime(entity_df[timestamp_column], utc=True).rename(timestamp_column)
        read = windowed_reader(
            feast_duckdb._read_data_source, feature_views, timestamps.min(), timestamps.max()
        )
        if _as_of_joinable(
            feature_views, feature_refs, registry, project, filter_by_created_timestamp
        ):
            return _as_of_retrieval(
                config, feature_views, feature_refs, entity_df, full_feature_names, timestamps, read
            )
        return get_historical_features_ibis(
            config=config,
            feature_views=feature_views,
            feature_refs=feature_refs,
            entity_df=entity_df,
            registry=registry,
            project=project,
            full_feature_names=full_feature_names,
            data_source_reader=read,
            data_source_writer=feast_duckdb._write_data_source,
            filter_by_created_timestamp=filter_by_created_timestamp,
            **_staging(config),
        )
