"""``POST /predict`` and ``POST /explain``: the champion's answers for customers by id or
by explicit features (see `churnloop.serving.schemas` for the bodies)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.exceptions import RequestValidationError

from churnloop.serving.model import ServedModel
from churnloop.serving.routes.dependencies import ServerDep
from churnloop.serving.schemas import (
    BatchResponse,
    ExplainResponse,
    Instance,
    PredictRequest,
    PredictResponse,
)
from churnloop.serving.scoring import UnknownCustomer, encode_request_rows, score
from churnloop.serving.server import ModelServer

router = APIRouter()


@router.post(
    "/predict",
    response_model=PredictResponse | BatchResponse,
    responses={
        404: {"description": "Unknown customer (single instance)"},
        503: {"description": "No model loaded, or the online store is down"},
    },
)
async def predict(request: PredictRequest, server: ServerDep) -> dict[str, Any]:
    """Churn probability and label for one instance or a batch (see the description)."""
    model = server.champion()
    reference = _model_reference(server, model)
    if request.instances is None:
        single = Instance(customer_id=request.customer_id, features=request.features)
        return {**reference, **(await score(server, model, [single], batch=False))[0]}
    _check_batch_size(server, request.instances)
    return {
        **reference,
        "predictions": await score(server, model, request.instances, batch=True),
    }


@router.post("/explain", response_model=ExplainResponse, responses={404: {}, 503: {}})
async def explain(instance: Instance, server: ServerDep) -> dict[str, Any]:
    """Each feature's contribution (log-odds) to one prediction, from LightGBM itself."""
    model = server.champion()
    if instance.customer_id is None:
        row = instance.features
    else:
        row = (await server.online_rows([instance.customer_id]))[0]
        if row is None:
            raise HTTPException(404, str(UnknownCustomer(instance.customer_id)))
    matrix = encode_request_rows(server, model, [row], [(0, instance)], batch=False)
    explanation = model.explain(matrix)
    return {
        **_model_reference(server, model),
        "customer_id": instance.customer_id,
        "probability": explanation.probability,
        "raw_score": explanation.raw_score,
        "base_value": explanation.base_value,
        "contributions": explanation.contributions,
    }


def _model_reference(server: ModelServer, model: ServedModel) -> dict[str, Any]:
    """Which model answered, and the threshold its labels use."""
    return {
        "model": model.info.name,
        "version": model.version,
        "threshold": server.settings.serving_threshold,
    }


def _check_batch_size(server: ModelServer, instances: list[Instance]) -> None:
    """A 422 on ``instances`` past ``serving_max_instances``."""
    limit = server.settings.serving_max_instances
    if len(instances) > limit:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("body", "instances"),
                    "input": None,
                    "msg": f"at most {limit} instances per request "
                    f"(CHURNLOOP_SERVING_MAX_INSTANCES), got {len(instances)}",
                }
            ]
        )
