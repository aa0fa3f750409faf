"""The model server's FastAPI app: `create_app` includes the routers and ties the
`ModelServer` to the app's lifespan; `run_server` is ``churnloop serve``, and
`serve_in_background` a thread-served app for the demo and the tests.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from churnloop.errors import excerpt
from churnloop.serving.limits import BodySizeLimit, body_limit
from churnloop.serving.metrics import SERVER_START_VARIABLE, MetricsMiddleware
from churnloop.serving.process import PROMETHEUS_MULTIPROCESS_VARIABLES
from churnloop.serving.routes import admin, predict, status
from churnloop.serving.routes.customer_lane import CustomerIdLane
from churnloop.serving.schemas import MAX_TEXT_CHARS
from churnloop.serving.server import ModelServer
from churnloop.settings import Settings, get_settings

DESCRIPTION = """The model server: FastAPI on uvicorn, serving the registry's ``@champion``
(and, during a canary, ``@candidate`` to a share of customers).

Endpoints (the OpenAPI page at ``/docs`` says the same):

- ``POST /predict``: one instance, ``{"customer_id": 42}`` (features from the Feast online
  store) or ``{"features": {...}}`` (every model input, null for missing), or a batch,
  ``{"instances": [...]}`` of either kind. Answers the churn probability, the label at
  ``settings.serving_threshold``, the model name and the version and variant that answered
  (``champion`` or ``candidate``; in a batch, top-level ``version`` is the champion's and
  each item names its own).
  An invalid payload is a 422 whose ``detail`` names each field (pydantic's format, also
  for feature names and types the model rejects), echoing no input or name longer than
  ``MAX_TEXT_CHARS`` characters: a ``customer_id`` outside int64, a category outside the data
  contract (``plan``, ``region``, ``contract``), a number that is not finite (NaN,
  Infinity, 1e400) or a string over ``MAX_TEXT_CHARS`` characters. A batch over
  ``settings.serving_max_instances`` is a 422 before its instances are validated; a body
  over ``serving_max_body_bytes``, or over ``serving_max_instances`` x
  ``serving_max_instance_bytes`` if lower, is a 413 before it is parsed. An unknown
  customer (no features online: never materialized) is a 404 naming the id for a single
  instance; in a batch that instance gets ``error: {"status": 404, "detail": ...}`` and
  the others are scored (200). No model loaded yet: 503. The online store down: 503.
- ``POST /explain``: one instance; each feature's contribution to the raw score (log-odds)
  from LightGBM's ``pred_contrib``, with the base value: they sum to the raw score. The
  model is the one that answers the same instance's ``/predict``.
- ``GET /health`` (the process is up), ``GET /ready`` (a model is loaded and the first
  connection to the online store has been tried, else 503: importing Feast holds the
  interpreter for seconds, so traffic before that would wait),
  ``GET /model`` (version, alias, training window, lineage, last load error),
  ``GET /metrics`` (Prometheus; with several workers, their sum).
- ``POST /admin/reload``: look at the aliases now; needs ``Authorization: Bearer <token>``
  (``settings.serving_admin_token``): 401 without, 403 with a wrong one (compared as
  bytes, whatever its characters), 403 when no token is configured (the admin endpoints
  are then disabled). 500 when the champion's version fails to load (a failing
  challenger is only reported); the old model keeps serving either way.

During a canary (``@candidate`` set and the registered model's ``canary_share`` tag giving
its version a share above 0), that share of customers is answered by the candidate: each
``customer_id`` is placed by a stable hash salted with the candidate's version
(`churnloop.serving.routing`), so a customer sees one version for the whole canary, on every
worker and after a restart (each reads the split from the registry, within
``serving_poll_seconds``). Explicit-feature instances go to the champion: hashing feature
values would move a customer between versions whenever their features change. A batch may
mix both; each instance is scored by its own model. On ``settings.canary_shadow_fraction``
of requests the other model shadows each instance (the candidate the champion's, the
champion the candidate's): ``churnloop_shadow_agreement_total`` counts whether their labels
agree, for the canary controller (`churnloop.canary`), which reads ``GET /metrics``.

Besides answering, the server follows the aliases (`churnloop.serving.follower`), shadows
the ``@challenger`` on ``settings.serving_shadow_fraction`` of requests outside a canary
(logged, never answered) and logs every prediction to the lake
(`churnloop.serving.prediction_log`).

With ``serving_workers`` above 1, every worker answers with the same routing, and
``GET /metrics`` answers the sum over the workers whichever answers
(`churnloop.serving.metrics`); ``churnloop_server_start_time_seconds`` is the run's start.

No answer and no log line shows a credential: errors that name a URI are masked
(`churnloop.redaction`), and ``churnloop serve`` formats every log line through it.

The request path does no registry call and no pandas: the champion is an attribute
read, rows are encoded straight to numpy (`churnloop.serving.model`), and the online
store is read directly where it is Feast's Redis or our SQLite store, else through one
long-lived Feast store (`churnloop.features.online`). A body of exactly one
``customer_id`` is answered by the route's own code without FastAPI's request handling
(`churnloop.serving.routes.customer_lane`); the answer is the same.
"""
"""The API's description on ``/docs`` and in ``/openapi.json``."""
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "redacted": {
            "()": "churnloop.redaction.RedactingFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "redacted",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["stderr"], "level": "INFO"},
}
"""``churnloop serve``'s logging: uvicorn's lines and the app's (tracebacks included) through
one handler whose formatter masks credentials."""
METRICS_FOLDER_PREFIX = "churnloop-metrics-"
"""The workers' metrics folder of a ``churnloop serve`` run: a fresh temporary folder so
named."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The model server app; models load in the background once it starts."""
    settings = settings or get_settings()
    server = ModelServer(settings)
    app = FastAPI(
        title="churnloop model server",
        summary="Churn probabilities from the registry's @champion (and @candidate in a canary).",
        description=DESCRIPTION,
        version="1",
        lifespan=_run_alongside,
    )
    app.state.server = server
    app.add_middleware(CustomerIdLane, api=app)
    app.add_middleware(BodySizeLimit, limit=body_limit(settings))
    app.add_middleware(MetricsMiddleware, metrics=server.metrics, version=server.served_version)
    app.add_exception_handler(RequestValidationError, _count_invalid_request)
    for router in (predict.router, status.router, admin.router):
        app.include_router(router)
    return app


@asynccontextmanager
async def _run_alongside(app: FastAPI) -> AsyncIterator[None]:
    """The app's lifespan: the server's background work runs while the app does."""
    server: ModelServer = app.state.server
    server.start()
    try:
        yield
    finally:
        await asyncio.to_thread(server.stop)


async def _count_invalid_request(request: Request, error: RequestValidationError) -> Response:
    """FastAPI's own 422, counted as a ``validation`` error, with long strings cut."""
    request.app.state.server.metrics.errors.labels("validation").inc()
    capped = RequestValidationError([_capped_echo(item) for item in error.errors()])
    return await request_validation_exception_handler(request, capped)


def _capped_echo(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error whose echoed strings (the input, a field name) are cut to
    ``MAX_TEXT_CHARS``: a 422 does not send back the megabyte a client sent."""
    capped = {**error, "loc": tuple(_echoable(part) for part in error["loc"])}
    if "input" in error:
        capped["input"] = _echoable(error["input"])
    return capped


def _echoable(value: Any) -> Any:
    """``value`` as a 422 echoes it: a short JSON scalar as it is, anything else as text
    cut to ``MAX_TEXT_CHARS`` (NaN and infinities too: JSON has no such numbers)."""
    if value is None or isinstance(value, bool):
        return value
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if isinstance(value, int | float) and len(text) <= MAX_TEXT_CHARS and math.isfinite(value):
        return value
    return excerpt(text, MAX_TEXT_CHARS)


def run_server(settings: Settings) -> None:
    """``churnloop serve``: uvicorn on ``serving_host:serving_port``, until interrupted.

    Its start time goes to every worker through the environment (`SERVER_START_VARIABLE`),
    and with several workers, so does their metrics folder (`shared_metrics_folder`).
    """
    import uvicorn

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ[SERVER_START_VARIABLE] = repr(time.time())
    with shared_metrics_folder(settings.serving_workers):
        uvicorn.run(
            "churnloop.serving.app:create_app",
            factory=True,
            host=settings.serving_host,
            port=settings.serving_port,
            workers=settings.serving_workers,
            log_config=LOG_CONFIG,
            log_level="info",
            access_log=False,
        )


@contextmanager
def shared_metrics_folder(workers: int) -> Iterator[None]:
    """With several workers, a fresh folder for their metric files (prometheus_client's
    multiprocess mode), named in the environment before uvicorn spawns them and removed at
    the end; one worker keeps its metrics in memory.

    Both variable names point at it: importing Feast in a worker would otherwise make a
    folder of its own for the name it reads.
    """
    if workers == 1:
        yield
        return
    folder = tempfile.mkdtemp(prefix=METRICS_FOLDER_PREFIX)
    for name in PROMETHEUS_MULTIPROCESS_VARIABLES:
        os.environ[name] = folder
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def serve_in_background(app: FastAPI, timeout: float = 60) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yields its base URL.

    For the demo and the tests, which need a real HTTP server beside Airflow in one
    process. The socket is bound here (port 0) and handed to uvicorn, so no other process
    can take the port between choosing and binding it.
    """
    import socket
    import time

    import uvicorn

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        listener.close()
        raise RuntimeError(f"the model server did not start on port {port}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
