"""Fixtures of the DAG tests: small models, the customer_data DAG, a model server following
the test's registry."""

from __future__ import annotations

import pytest

from tests.dags.dag_support import parsed_dag
from tests.loop_support import FAST_MODEL, LOOP_GATE_ENV, NO_CANARY_ENV

TOKEN = "deploy-test-token"


@pytest.fixture(autouse=True)
def fast_models(settings, monkeypatch):
    """Small LightGBM models: the DAG tests are about the loop, not about model quality;
    no wait for a missing drop (waiting is tested on a real scheduler: tests/integration);
    no canary unless a test asks for one (it needs live traffic).

    After ``settings``, which clears every ``CHURNLOOP_*`` variable."""
    monkeypatch.setenv("CHURNLOOP_MODEL_PARAMS", FAST_MODEL)
    monkeypatch.setenv("CHURNLOOP_LANDING_WAIT_SECONDS", "0")  # a missing drop fails at once
    for name, value in {**LOOP_GATE_ENV, **NO_CANARY_ENV}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def customer_data_dag(airflow_db, settings):
    """The customer_data DAG, run with ``dag.test()`` by its tests and the failure alerts'."""
    return parsed_dag(settings, "customer_data")


@pytest.fixture
def served(settings, monkeypatch):
    """A model server on a free port, following the registry of this test's home."""
    from churnloop.serving.app import create_app, serve_in_background
    from churnloop.settings import get_settings

    monkeypatch.setenv("CHURNLOOP_SERVING_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("CHURNLOOP_DEPLOY_START_SERVER", "false")
    with serve_in_background(create_app(get_settings())) as url:
        monkeypatch.setenv("CHURNLOOP_SERVING_PORT", url.rsplit(":", 1)[1])
        yield url
