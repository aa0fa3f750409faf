import datetime as dt
import os
import shutil

import yaml

from churnloop.features import definition, feast_config
from churnloop.features.feast_extensions import offline_store, online_store
from churnloop.settings import get_settings
from churnloop.storage import lake


def test_feast_config_follows_the_profile(settings, monkeypatch, tmp_path):
    embedded = feast_config.feast_config(settings)
    assert embedded["online_store"] == {
        "type": online_store.STORE_TYPE,
        "path": settings.feast_sqlite_path,
    }
    loaded = feast_config.feature_store(settings).config.online_store  # as Feast resolves it
    assert isinstance(loaded, online_store.WideSqliteOnlineStoreConfig)
    assert embedded["registry"]["registry_type"] == "file"
    assert embedded["registry"]["cache_ttl_seconds"] == settings.feast_registry_cache_ttl_seconds
    assert embedded["offline_store"] == {"type": offline_store.STORE_TYPE}

    registry_url = "postgresql+psycopg2://feast:s3cret@db:5432/feast"
    monkeypatch.setenv("CHURNLOOP_FEAST_REGISTRY", registry_url)
    monkeypatch.setenv("CHURNLOOP_FEAST_REDIS", "redis:6379")
    monkeypatch.setenv("CHURNLOOP_LAKE_URI", "s3://bucket/lake")
    monkeypatch.setenv("CHURNLOOP_S3_ENDPOINT_URL", "http://minio:9000")
    monkeypatch.setenv("CHURNLOOP_PROJECT_ROOT", str(tmp_path))  # the YAML lands there
    shutil.copytree(settings.feature_repo_dir, tmp_path / "feature_repo")
    production = get_settings()
    config = feast_config.feast_config(production)
    assert config["registry"]["registry_type"] == "sql"
    assert config["registry"]["path"] == registry_url
    assert config["online_store"]["type"] == "redis"
    assert config["online_store"]["connection_string"] == "redis:6379"
    source = feast_config.load_definitions(production)[1]
    assert source.path == "s3://bucket/lake/features/customer_features/dt=*/data.parquet"
    assert source.s3_endpoint_override == "http://minio:9000"

    text = feast_config.write_feature_store_yaml(production).read_text()
    assert "s3cret" not in text
    assert yaml.safe_load(os.path.expandvars(text)) == config


def test_definitions_declare_typed_fields_and_apply_is_idempotent(settings):
    from feast import FeatureView, Field
    from feast.types import Int32, String

    customer, source, view, service = feast_config.load_definitions(settings)
    assert source.path == lake(settings).partition_files(definition.DATASET)
    types = {field.name: field.dtype for field in view.schema}
    assert {types[name] for name in ("plan", "region", "contract")} == {String}
    assert types["tenure_bucket"] == Int32
    assert view.ttl == dt.timedelta(days=settings.feature_ttl_days)
    assert service.name == definition.FEATURE_SERVICE == "churn_model_v1"
    assert feast_config.feature_names(settings) == definition.FEATURE_SCHEMA.names

    retired = FeatureView(
        name="retired_view",
        entities=[customer],
        schema=[Field(name="age", dtype=Int32)],
        source=source,
    )
    feast_config.feature_store(settings).apply([customer, source, retired])
    feast_config.apply_definitions(settings)
    feast_config.apply_definitions(settings)
    feast_store = feast_config.feature_store(settings)
    assert [fv.name for fv in feast_store.list_feature_views()] == [definition.FEATURE_VIEW]
    registered = feast_store.get_feature_service(definition.FEATURE_SERVICE)
    names = [f.name for p in registered.feature_view_projections for f in p.features]
    assert names == feast_config.feature_names(settings)
