"""Feast's configuration and the feature repo's definitions, built from the settings.

``feature_store`` is the FeatureStore every other module of ``churnloop.features`` uses;
``write_feature_store_yaml`` renders the same configuration for the ``feast`` CLI and UI;
``apply_definitions`` registers ``feature_repo/churn_features.py`` as ``feast apply`` does.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from feast import FeatureService, FeatureStore, RepoConfig

from churnloop.features.definition import FEATURE_SERVICE
from churnloop.features.feast_extensions import offline_store, online_store
from churnloop.settings import Settings

__all__ = [
    "DEFINITIONS_FILE",
    "apply_definitions",
    "feast_config",
    "feature_names",
    "feature_store",
    "load_definitions",
    "registered_service",
    "service_feature_names",
    "write_feature_store_yaml",
]

log = logging.getLogger(__name__)

DEFINITIONS_FILE = "churn_features.py"
_SQL_REGISTRY_SCHEMES = ("postgresql", "mysql", "sqlite:")


def _sql_registry(settings: Settings) -> bool:
    return settings.feast_registry.startswith(_SQL_REGISTRY_SCHEMES)


def feast_config(settings: Settings, *, env_references: bool = False) -> dict[str, Any]:
    """The Feast repo configuration for the settings' profile, as ``feature_store.yaml`` holds it.

    With ``env_references``, values that only come from the environment and may carry
    credentials (a registry URL, a Redis connection string) are written as
    ``${CHURNLOOP_...}`` references, which Feast expands when it loads the file.
    """
    registry: dict[str, Any] = {
        "registry_type": "sql" if _sql_registry(settings) else "file",
        "path": "${CHURNLOOP_FEAST_REGISTRY}"
        if env_references and _sql_registry(settings)
        else settings.feast_registry,
        "cache_ttl_seconds": settings.feast_registry_cache_ttl_seconds,
    }
    if settings.feast_redis:
        redis = "${CHURNLOOP_FEAST_REDIS}" if env_references else settings.feast_redis
        # Redis would skip a row whose timestamp equals the stored one, so a rebuilt day
        # would not replace its values; materialize_day decides what is newer itself.
        online: dict[str, Any] = {"type": "redis", "connection_string": redis, "skip_dedup": True}
    else:
        online = {"type": online_store.STORE_TYPE, "path": settings.feast_sqlite_path}
    return {
        "project": settings.feast_project,
        "provider": "local",
        "registry": registry,
        "online_store": online,
        "offline_store": {"type": offline_store.STORE_TYPE},
        "entity_key_serialization_version": 3,
    }


def _create_local_folders(settings: Settings) -> None:
    """Feast writes its file registry and SQLite store but does not create their folders."""
    local_files = [settings.feast_sqlite_path] if not settings.feast_redis else []
    if not _sql_registry(settings):
        local_files.append(settings.feast_registry)
    for path in local_files:
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def feature_store(settings: Settings) -> FeatureStore:
    """A FeatureStore on the settings' profile."""
    _create_local_folders(settings)
    repo_config = RepoConfig(**feast_config(settings), repo_path=settings.feature_repo_dir)
    return FeatureStore(repo_path=str(settings.feature_repo_dir), config=repo_config)


def write_feature_store_yaml(settings: Settings) -> Path:
    """Render ``feature_repo/feature_store.yaml`` (git-ignored) for the ``feast`` CLI and UI.

    Registry and online store work from it as they do in the tasks. Offline reads of an
    S3 lake by the bare CLI do not: DuckDB gets its httpfs extension and S3 secret from
    ``churnloop.features.feast_extensions.duckdb_lake``, which only churnloop's own code calls.
    """
    _create_local_folders(settings)
    path = settings.feature_repo_dir / "feature_store.yaml"
    text = yaml.safe_dump(feast_config(settings, env_references=True), sort_keys=False)
    path.write_text(f"# Rendered by `churnloop feast-yaml` from the settings; do not edit.\n{text}")
    return path


@functools.cache
def _definitions_module(path: Path) -> ModuleType:
    """``feature_repo/churn_features.py``, loaded by path as ``feast apply`` would."""
    spec = importlib.util.spec_from_file_location("churnloop_feature_repo", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no Feast definitions at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_definitions(settings: Settings) -> tuple[Any, ...]:
    """The Feast objects ``feature_repo/churn_features.py`` declares for the settings."""
    module = _definitions_module(settings.feature_repo_dir / DEFINITIONS_FILE)
    return module.definitions(settings)


def service_feature_names(service: FeatureService) -> list[str]:
    """The features of ``service``, in order."""
    return [
        feature.name
        for projection in service.feature_view_projections
        for feature in projection.features
    ]


def feature_names(settings: Settings) -> list[str]:
    """The model's input columns, in order: the features of ``FEATURE_SERVICE``."""
    services = (obj for obj in load_definitions(settings) if isinstance(obj, FeatureService))
    return service_feature_names(next(services))


def registered_service(store: FeatureStore, settings: Settings) -> FeatureService:
    """``FEATURE_SERVICE`` as registered; refuses a registry that lags the definitions."""
    service = store.get_feature_service(FEATURE_SERVICE)
    if service_feature_names(service) != feature_names(settings):
        raise RuntimeError(
            f"the Feast registry's {FEATURE_SERVICE} differs from feature_repo/"
            f"{DEFINITIONS_FILE}: run `churnloop feast-apply` (apply_definitions)"
        )
    return service


def apply_definitions(settings: Settings) -> None:
    """Register the definitions and create the online tables; what ``feast apply`` does.

    Idempotent. Feature views and services of the project that the definitions no
    longer declare are removed, as ``feast apply`` would. Registry writes must not run
    concurrently against a file registry: callers serialize them (an Airflow pool of 1).
    """
    objects = list(load_definitions(settings))
    store = feature_store(settings)
    declared = {obj.name for obj in objects}
    stale = [
        obj
        for obj in [*store.list_feature_views(), *store.list_feature_services()]
        if obj.name not in declared
    ]
    store.apply(objects, objects_to_delete=stale, partial=False)
    removed = [obj.name for obj in stale]
    log.info("applied Feast definitions to project %s (removed: %s)", store.project, removed)
