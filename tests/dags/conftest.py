"""Fixtures of the DAG tests: small models, a model server following the test's registry."""

from __future__ import annotations

import socket
import threading
import time

import pytest

TOKEN = "deploy-test-token"
FAST_MODEL = '{"n_estimators": 40, "num_leaves": 15, "min_child_samples": 20, "n_jobs": 1}'


@pytest.fixture(autouse=True)
def fast_models(monkeypatch):
    """Small LightGBM models: the DAG tests are about the loop, not about model quality."""
    monkeypatch.setenv("CHURNLOOP_MODEL_PARAMS", FAST_MODEL)


@pytest.fixture
def served(settings, monkeypatch):
    """A model server on a free port, following the registry of this test's home."""
    import uvicorn

    from churnloop.serving import create_app

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    monkeypatch.setenv("CHURNLOOP_SERVING_PORT", str(port))
    monkeypatch.setenv("CHURNLOOP_SERVING_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("CHURNLOOP_DEPLOY_START_SERVER", "false")
    from churnloop.settings import get_settings

    server = uvicorn.Server(uvicorn.Config(create_app(get_settings()), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.started, "model server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)
    listener.close()


