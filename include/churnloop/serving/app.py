"""The model server: FastAPI on uvicorn, serving the registry's ``@champion``.

Endpoints (the OpenAPI page at ``/docs`` says the same):

- ``POST /predict``: one instance, ``{"customer_id": 42}`` (features from the Feast online
  store) or ``{"features": {...}}`` (every model input, null for missing), or a batch,
  ``{"instances": [...]}`` of either kind. Answers the churn probability, the label at
  ``settings.serving_threshold`` and the model name and version.
  An invalid payload is a 422 whose ``detail`` names each field (pydantic's format, also
  for feature names and types the model rejects); a body over
  ``settings.serving_max_body_bytes`` is a 413. An unknown customer (no features
  online: never materialized) is a 404 naming the id for a single instance; in a batch
  that instance gets ``error: {"status": 404, "detail": ...}`` and the others are
  scored (200). No model loaded yet: 503. The online store down: 503.
- ``POST /explain``: one instance; each feature's contribution to the raw score (log-odds)
  from LightGBM's ``pred_contrib``, with the base value: they sum to the raw score.
- ``GET /health`` (the process is up), ``GET /ready`` (a model is loaded and the first
  connection to the online store has been tried, else 503: importing Feast holds the
  interpreter for seconds, so traffic before that would wait),
  ``GET /model`` (version, alias, training window, lineage, last load error),
  ``GET /metrics`` (Prometheus).
- ``POST /admin/reload``: look at the aliases now; needs ``Authorization: Bearer <token>``
  (``settings.serving_admin_token``): 401 without, 403 with a wrong one, 403 when no token
  is configured (the admin endpoints are then disabled). 500 when the champion's
  version fails to load (a failing challenger is only reported); the old model keeps
  serving either way.

Besides answering, the server follows the aliases (`churnloop.serving.follower`), shadows
the ``@challenger`` on ``settings.serving_shadow_fraction`` of requests (logged, never
answered) and logs every prediction to the lake (`churnloop.serving.prediction_log`).

The request path does no registry call and no pandas: the champion is an attribute
read, rows are encoded straight to numpy (`churnloop.serving.model`), and the online
store is read through one long-lived Feast store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import random
import secrets
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from churnloop.registry import CHALLENGER, CHAMPION
from churnloop.schema import ENTITY, PREDICTION, TIMESTAMP
from churnloop.serving.follower import ModelFollower
from churnloop.serving.limits import BodySizeLimit
from churnloop.serving.metrics import NO_MODEL, MetricsMiddleware, ServingMetrics
from churnloop.serving.model import FeatureProblem, InvalidFeatures, ServedModel
from churnloop.serving.prediction_log import FEATURES_KEY, PredictionLog
from churnloop.settings import Settings, get_settings

if TYPE_CHECKING:
    from churnloop.serving.features import OnlineRows

log = logging.getLogger(__name__)

FeatureValue = float | int | str | bool | None
_BEARER = HTTPBearer(auto_error=False)


# -- request and response bodies --------------------------------------------------------


class _InstanceFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int | None = Field(
        default=None, description="Score this customer from the online store's features."
    )
    features: dict[str, FeatureValue] | None = Field(
        default=None,
        description="Score these feature values: every model input (GET /model lists them), "
        "null for a missing value.",
    )


class Instance(_InstanceFields):
    """One customer to score: by id, or by explicit features (exactly one of them)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Instance:
        if (self.customer_id is None) == (self.features is None):
            raise ValueError("give exactly one of 'customer_id' or 'features'")
        return self


class PredictRequest(_InstanceFields):
    """A single instance (``customer_id`` or ``features``) or a batch (``instances``)."""

    instances: list[Instance] | None = Field(
        default=None, min_length=1, description="A batch; each is scored on its own."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> PredictRequest:
        given = [
            self.customer_id is not None,
            self.features is not None,
            self.instances is not None,
        ]
        if sum(given) != 1:
            raise ValueError("give exactly one of 'customer_id', 'features' or 'instances'")
        return self


class ModelRef(BaseModel):
    model: str
    version: int
    threshold: float


class Prediction(BaseModel):
    customer_id: int | None = None
    probability: float = Field(description="Churn probability of the champion.")
    label: int = Field(description="1 (will churn) when probability >= threshold, else 0.")


class PredictResponse(Prediction, ModelRef):
    """The champion's answer for one instance."""


class InstanceError(BaseModel):
    status: int
    detail: str


class BatchItem(BaseModel):
    customer_id: int | None = None
    probability: float | None = None
    label: int | None = None
    error: InstanceError | None = Field(
        default=None, description="Why this instance was not scored (e.g. 404 unknown customer)."
    )


class BatchResponse(ModelRef):
    predictions: list[BatchItem]


class ExplainResponse(ModelRef):
    customer_id: int | None = None
    probability: float
    raw_score: float = Field(description="Log-odds: base_value + sum(contributions).")
    base_value: float = Field(description="The model's expected raw score.")
    contributions: dict[str, float] = Field(description="Per input feature, in log-odds.")


# -- the server -------------------------------------------------------------------------


class UnknownCustomer(LookupError):
    def __init__(self, customer_id: int) -> None:
        self.customer_id = customer_id
        super().__init__(
            f"customer {customer_id} has no features in the online store "
            "(never materialized, or not a customer)"
        )


class ModelServer:
    """What the endpoints share: the followed models, the online store, log and metrics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = ServingMetrics()
        self.follower = ModelFollower(
            settings,
            follow_challenger=settings.serving_shadow_fraction > 0,
            on_load=self.metrics.record_load,
        )
        self.prediction_log = PredictionLog(
            settings,
            flush_rows=settings.prediction_log_flush_rows,
            flush_seconds=settings.prediction_log_flush_seconds,
            max_pending_rows=settings.prediction_log_max_pending_rows,
            on_written=self.metrics.logged_rows.inc,
            on_dropped=self.metrics.record_dropped,
        )
        self._random = random.Random()
        self._online: OnlineRows | None = None
        self._online_lock = threading.Lock()
        self.online_tried = threading.Event()
        """Set once the first connection to the online store succeeded or failed."""

    def start(self) -> None:
        self.follower.start(self.settings.serving_poll_seconds)
        self.prediction_log.start()
        threading.Thread(
            target=self._connect_online_store, name="online-store", daemon=True
        ).start()

    def stop(self) -> None:
        self.follower.stop()
        self.prediction_log.close()

    def champion_version(self) -> str:
        champion = self.follower.champion
        return str(champion.version) if champion else NO_MODEL

    def champion(self) -> ServedModel:
        champion = self.follower.champion
        if champion is None:
            failure = self.follower.load_errors.get(CHAMPION)
            reason = f": {failure.error}" if failure else " (no @champion in the registry yet?)"
            raise HTTPException(503, f"no model loaded yet{reason}")
        return champion

    def online(self) -> OnlineRows:
        """The online store, connected on first use (importing Feast takes seconds)."""
        from churnloop.serving.features import OnlineRows

        with self._online_lock:
            if self._online is None:
                self._online = OnlineRows(self.settings)
            return self._online

    def _connect_online_store(self) -> None:
        try:
            self.online()
        except Exception:  # requests by customer_id will answer 503 with the reason
            log.exception("cannot connect the online store yet; will retry on request")
        finally:
            self.online_tried.set()

    async def online_rows(self, customer_ids: list[int]) -> list[dict[str, Any] | None]:
        """Each customer's features from the online store, or None if it has none."""
        try:
            return await self.online().rows(customer_ids)
        except Exception as error:
            self.metrics.errors.labels("online_store").inc()
            log.exception("online store read failed")
            raise HTTPException(503, f"online store unavailable: {error}") from error

    # -- scoring --------------------------------------------------------------------------

    async def score(
        self, model: ServedModel, instances: Sequence[Instance], batch: bool
    ) -> list[dict[str, Any]]:
        """Score every instance; unknown customers become per-instance errors in a batch."""
        wanted = [item.customer_id for item in instances if item.customer_id is not None]
        online = iter(await self.online_rows(wanted) if wanted else [])
        results: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        scored: list[tuple[int, Instance]] = []
        for index, item in enumerate(instances):
            row = item.features if item.customer_id is None else next(online)
            results.append({"customer_id": item.customer_id})
            if row is None:
                self.metrics.errors.labels("unknown_customer").inc()
                error = UnknownCustomer(item.customer_id)
                if not batch:
                    raise HTTPException(404, str(error))
                results[-1]["error"] = {"status": 404, "detail": str(error)}
                continue
            rows.append(row)
            scored.append((index, item))
        if not rows:
            return results
        probabilities = model.probabilities(self.encode(model, rows, scored, batch)).tolist()
        threshold = self.settings.serving_threshold
        scores = self.metrics.scores.labels(str(model.version), "champion")
        for (index, _), probability in zip(scored, probabilities, strict=True):
            results[index].update(probability=probability, label=int(probability >= threshold))
            scores.observe(probability)
        self.log_predictions(model, rows, [item for _, item in scored], probabilities)
        return results

    def encode(
        self,
        model: ServedModel,
        rows: list[dict[str, Any]],
        sources: list[tuple[int, Instance]],
        batch: bool,
    ) -> np.ndarray:
        """``model.encode``, its problems as 422s naming the request's fields.

        ``sources`` gives each row's instance and its position in the request.
        """
        try:
            return model.encode(rows)
        except InvalidFeatures as invalid:
            if any(sources[p.row][1].customer_id is not None for p in invalid.problems):
                self.metrics.errors.labels("model").inc()
                detail = f"online features do not fit the model: {invalid}"
                raise HTTPException(500, detail) from invalid
            raise RequestValidationError(
                [_validation_error(problem, sources, batch) for problem in invalid.problems]
            ) from invalid

    def log_predictions(
        self,
        model: ServedModel,
        rows: list[dict[str, Any]],
        instances: list[Instance],
        probabilities: list[float],
    ) -> None:
        """Queue a prediction-log row per scored instance, with the challenger's score when
        this request is shadowed."""
        shadow_model, shadow = self.shadow_scores(rows)
        now = dt.datetime.now(dt.UTC)
        request_id = uuid.uuid4().hex
        threshold = self.settings.serving_threshold
        self.prediction_log.append(
            {
                TIMESTAMP: now,
                "request_id": request_id,
                ENTITY: item.customer_id,
                "model_name": model.info.name,
                "model_version": model.version,
                PREDICTION: probability,
                "predicted_label": int(probability >= threshold),
                "shadow_version": shadow_model.version if shadow_model else None,
                "shadow_prediction": shadow[index] if shadow else None,
                FEATURES_KEY: row,
            }
            for index, (row, item, probability) in enumerate(
                zip(rows, instances, probabilities, strict=True)
            )
        )

    def shadow_scores(self, rows: list[dict[str, Any]]) -> tuple[ServedModel | None, list[float]]:
        """The challenger's scores on a ``serving_shadow_fraction`` of requests; its failure
        is counted and logged, never the caller's problem."""
        challenger = self.follower.challenger
        fraction = self.settings.serving_shadow_fraction
        if challenger is None or self._random.random() >= fraction:
            return None, []
        try:
            scores = challenger.probabilities(challenger.encode(rows)).tolist()
        except Exception:
            self.metrics.errors.labels("shadow").inc()
            log.exception("shadow scoring by v%s failed", challenger.version)
            return None, []
        shadow_scores = self.metrics.scores.labels(str(challenger.version), "shadow")
        for value in scores:
            shadow_scores.observe(value)
        return challenger, scores

    def model_state(self) -> dict[str, Any]:
        champion = self.follower.champion
        challenger = self.follower.challenger
        errors = self.follower.load_errors
        checked = self.follower.last_checked
        state: dict[str, Any] = (
            champion.info.to_dict()
            if champion
            else {"name": self.settings.model_name, "version": None}
        )
        state.update(
            features=list(champion.feature_names) if champion else [],
            threshold=self.settings.serving_threshold,
            challenger=challenger.info.to_dict() if challenger else None,
            shadow_fraction=self.settings.serving_shadow_fraction,
            last_load_error=errors[CHAMPION].to_dict() if CHAMPION in errors else None,
            challenger_load_error=errors[CHALLENGER].to_dict() if CHALLENGER in errors else None,
            last_checked=checked.isoformat() if checked else None,
            last_check_error=self.follower.last_check_error,
            prediction_log={
                "pending_rows": self.prediction_log.pending_rows,
                "written_rows": self.prediction_log.written_rows,
                "dropped_rows": self.prediction_log.dropped_rows,
                "last_error": self.prediction_log.last_error,
            },
        )
        return state


def _validation_error(
    problem: FeatureProblem, sources: list[tuple[int, Instance]], batch: bool
) -> dict[str, Any]:
    """A pydantic-style error for a feature the model rejects."""
    index, instance = sources[problem.row]
    where = ("body", "instances", index) if batch else ("body",)
    value = (instance.features or {}).get(problem.feature)
    return {
        "type": problem.kind,
        "loc": (*where, "features", problem.feature),
        "msg": problem.message,
        "input": value,
    }


# -- the app ------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    """The model server app; models load in the background once it starts."""
    settings = settings or get_settings()
    server = ModelServer(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.start()
        try:
            yield
        finally:
            await asyncio.to_thread(server.stop)

    app = FastAPI(
        title="churnloop model server",
        summary="Churn probabilities from the registry's @champion.",
        description=__doc__,
        version="1",
        lifespan=lifespan,
    )
    app.state.server = server
    app.add_middleware(BodySizeLimit, max_bytes=settings.serving_max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=server.metrics, version=server.champion_version)

    @app.exception_handler(RequestValidationError)
    async def count_invalid_requests(request: Request, error: RequestValidationError) -> Response:
        server.metrics.errors.labels("validation").inc()
        return await request_validation_exception_handler(request, error)

    def require_admin(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> None:
        token = settings.serving_admin_token
        if token is None or not token.get_secret_value():
            raise HTTPException(
                403, "admin endpoints are disabled: no CHURNLOOP_SERVING_ADMIN_TOKEN is configured"
            )
        if credentials is None:
            raise HTTPException(
                401,
                "admin endpoints need 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not secrets.compare_digest(credentials.credentials, token.get_secret_value()):
            raise HTTPException(403, "wrong admin token")

    @app.post(
        "/predict",
        response_model=PredictResponse | BatchResponse,
        responses={
            404: {"description": "Unknown customer (single instance)"},
            503: {"description": "No model loaded, or the online store is down"},
        },
    )
    async def predict(request: PredictRequest) -> dict[str, Any]:
        """Churn probability and label for one instance or a batch (see the description)."""
        model = server.champion()
        reference = {
            "model": model.info.name,
            "version": model.version,
            "threshold": settings.serving_threshold,
        }
        if request.instances is None:
            single = Instance(customer_id=request.customer_id, features=request.features)
            return {**reference, **(await server.score(model, [single], batch=False))[0]}
        if len(request.instances) > settings.serving_max_instances:
            raise RequestValidationError(
                [
                    {
                        "type": "too_long",
                        "loc": ("body", "instances"),
                        "input": None,
                        "msg": f"at most {settings.serving_max_instances} instances per request "
                        f"(CHURNLOOP_SERVING_MAX_INSTANCES), got {len(request.instances)}",
                    }
                ]
            )
        return {
            **reference,
            "predictions": await server.score(model, request.instances, batch=True),
        }

    @app.post("/explain", response_model=ExplainResponse, responses={404: {}, 503: {}})
    async def explain(instance: Instance) -> dict[str, Any]:
        """Each feature's contribution (log-odds) to one prediction, from LightGBM itself."""
        model = server.champion()
        if instance.customer_id is None:
            row = instance.features
        else:
            row = (await server.online_rows([instance.customer_id]))[0]
            if row is None:
                raise HTTPException(404, str(UnknownCustomer(instance.customer_id)))
        explanation = model.explain(server.encode(model, [row], [(0, instance)], batch=False))
        return {
            "model": model.info.name,
            "version": model.version,
            "threshold": settings.serving_threshold,
            "customer_id": instance.customer_id,
            "probability": explanation.probability,
            "raw_score": explanation.raw_score,
            "base_value": explanation.base_value,
            "contributions": explanation.contributions,
        }

    @app.get("/health")
    async def health() -> dict[str, str]:
        """The process is up (says nothing about the model: see /ready)."""
        return {"status": "ok"}

    @app.get("/ready", responses={503: {"description": "No model loaded yet, or starting"}})
    async def ready() -> dict[str, Any]:
        """200 once a champion is loaded and the online store's first connection was tried."""
        model = server.champion()
        if not server.online_tried.is_set():
            raise HTTPException(503, "starting: connecting to the online store")
        return {"status": "ready", "version": model.version}

    @app.get("/model")
    async def model_state() -> dict[str, Any]:
        """The served version, its alias, training window and lineage; the last load error."""
        return server.model_state()

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/admin/reload",
        dependencies=[Depends(require_admin)],
        responses={401: {}, 403: {}, 500: {"description": "The champion failed to load"}},
    )
    async def reload() -> dict[str, Any]:
        """Read the aliases now and load what moved (retrying versions that failed)."""
        try:
            outcome = await run_in_threadpool(server.follower.refresh)
        except Exception as error:
            raise HTTPException(503, f"cannot read the registry: {error}") from error
        body = {**outcome.to_dict(), "serving": server.champion_version()}
        if outcome.champion_failed:
            error = next(f.error for f in outcome.failures if f.alias == CHAMPION)
            raise HTTPException(500, {**body, "error": error})
        return body

    return app


def run_server(settings: Settings) -> None:
    """``churnloop serve``: uvicorn on ``serving_host:serving_port``, until interrupted."""
    import uvicorn

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        "churnloop.serving.app:create_app",
        factory=True,
        host=settings.serving_host,
        port=settings.serving_port,
        workers=settings.serving_workers,
        log_level="info",
        access_log=False,
    )


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
