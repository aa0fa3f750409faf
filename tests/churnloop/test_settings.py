from pathlib import Path

import pytest

from churnloop.settings import get_settings


def test_embedded_default_needs_no_variable(settings):
    home = settings.home
    assert settings.lake_uri == str(home / "lake")
    assert settings.landing_uri == str(home / "landing")
    assert settings.mlflow_tracking_uri == f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    assert settings.feast_redis is None
    assert Path(settings.feast_registry).parent == home / "feast"


def test_production_profile_is_chosen_by_variables_alone(settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_LAKE_URI", "s3://lake-bucket/churn")
    monkeypatch.setenv("CHURNLOOP_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("CHURNLOOP_FEAST_REDIS", "127.0.0.1:6379")
    monkeypatch.setenv("CHURNLOOP_MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    production = get_settings()
    assert production.lake_uri == "s3://lake-bucket/churn"
    assert production.feast_redis == "127.0.0.1:6379"
    assert production.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert production.landing_uri == str(settings.home / "landing"), "unset values keep defaults"


def test_bad_value_names_the_variable(settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_SERVING_PORT", "eighty")
    with pytest.raises(ValueError, match="serving_port"):
        get_settings()


def test_optional_threshold_can_be_switched_off_from_the_environment(settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_GATE_MAX_SLICE_DROP", "null")
    assert get_settings().gate_max_slice_drop is None
