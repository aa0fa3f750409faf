"""The registry on the production profile's stores: a version trained, promoted and loaded back
through a tracking server with PostgreSQL and S3 behind it."""

import datetime as dt
import uuid

import pytest

from churnloop import registry
from churnloop.settings import get_settings
from churnloop.training.challenger import reference_data
from churnloop.training.gate import GateConfig, evaluate
from churnloop.training.promotion import promote_on_decision
from tests.churnloop.training_support import RECORDS_GATE, labelled_days, register_challenger


@pytest.mark.services
def test_production_registry_on_postgres_and_s3(production_settings, mlflow_server, monkeypatch):
    """Train, promote and load back through a tracking server with real services behind it."""
    tracking_uri, artifact_root = mlflow_server
    monkeypatch.setenv("CHURNLOOP_MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("CHURNLOOP_MLFLOW_ARTIFACT_URI", artifact_root)
    monkeypatch.setenv("CHURNLOOP_MLFLOW_EXPERIMENT", f"churnloop-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("CHURNLOOP_MODEL_NAME", f"churn-model-{uuid.uuid4().hex[:8]}")
    settings = get_settings()

    trained, holdout = register_challenger(settings, labelled_days(dt.date(2026, 2, 1), 8, 300))
    decision = evaluate(
        None, trained.model, holdout, GateConfig.from_settings(settings, **RECORDS_GATE)
    )
    promoted = promote_on_decision(
        settings,
        trained.version,
        decision,
        logical_date=dt.date(2026, 3, 20),
        force_reason=None if decision.blessed else "production-profile test",
    )

    assert promoted.promoted and registry.aliases(settings)[registry.CHAMPION] == trained.version
    artifact_uri = registry.connect(settings).get_run(trained.run_id).info.artifact_uri
    assert artifact_uri.startswith(artifact_root), "artifacts live in S3"
    served = registry.load_model(settings, registry.CHAMPION)
    features = list(trained.model.feature_names_in_)
    expected = trained.model.predict_proba(holdout[features])
    assert (served.predict_proba(holdout[features]) == expected).all()
    assert not reference_data(settings, trained.version).empty
