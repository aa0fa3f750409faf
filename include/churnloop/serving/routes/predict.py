"""``POST /predict`` and ``POST /explain``: answers for customers by id or by explicit
features (see `churnloop.serving.schemas` for the bodies), each from the model
`ModelServer.assign` gives it: the champion, or during a canary the candidate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from churnloop.serving.metrics import note_served
from churnloop.serving.model import ServedModel
from churnloop.serving.routes.dependencies import ServerDep
from churnloop.serving.routing import CHAMPION
from churnloop.serving.schemas import (
    BatchResponse,
    ExplainResponse,
    Instance,
    PredictRequest,
    PredictResponse,
)
from churnloop.serving.scoring import UnknownCustomer, encode_request_rows, score
from churnloop.serving.server import Assignment, ModelServer

router = APIRouter()


async def batch_within_cap(request: Request, server: ServerDep) -> None:
    """A 422 on ``instances`` past ``serving_max_instances``, before any is validated.

    FastAPI solves dependencies before it validates the body, on the JSON it has parsed
    (Starlette keeps it): a body of 50,000 ids costs that parse, not 50,000 models.
    """
    try:
        body = await request.json()
    except ValueError:  # not JSON: the body's validation answers
        return
    instances = body.get("instances") if isinstance(body, dict) else None
    limit = server.settings.serving_max_instances
    if isinstance(instances, list) and len(instances) > limit:
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


@router.post(
    "/predict",
    response_model=PredictResponse | BatchResponse,
    responses={
        404: {"description": "Unknown customer (single instance)"},
        413: {"description": "Body over the limit (see the description)"},
        503: {"description": "No model loaded, or the online store is down"},
    },
    dependencies=[Depends(batch_within_cap)],
)
async def predict(request: PredictRequest, server: ServerDep, http: Request) -> dict[str, Any]:
    """Churn probability and label for one instance or a batch (see the description)."""
    if request.instances is None:
        instance = Instance(customer_id=request.customer_id, features=request.features)
        return await answer_one(server, http, instance)
    assignments = _assign(server, http, request.instances)
    results = await score(server, request.instances, assignments, batch=True)
    return {**_model_reference(server, _champion_of(server, assignments)), "predictions": results}


async def answer_one(server: ModelServer, http: Request, instance: Instance) -> dict[str, Any]:
    """The answer to a single instance (also `customer_lane`'s): which model, its score."""
    (assigned,) = _assign(server, http, [instance])
    (result,) = await score(server, [instance], [assigned], batch=False)
    return {**_model_reference(server, assigned.model), **result}


def _champion_of(server: ModelServer, assignments: list[Assignment]) -> ServedModel:
    """The champion that answered this batch: a poll during the scoring may have moved the
    server's since (the batch's ``version`` must name a model that scored it)."""
    used = (each.model for each in assignments if each.variant == CHAMPION)
    return next(used, None) or server.champion()


@router.post("/explain", response_model=ExplainResponse, responses={404: {}, 503: {}})
async def explain(instance: Instance, server: ServerDep, http: Request) -> dict[str, Any]:
    """Each feature's contribution (log-odds) to one prediction, from LightGBM itself, by
    the model that answers this customer's /predict."""
    (assigned,) = _assign(server, http, [instance])
    model = assigned.model
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
        "variant": assigned.variant,
        "customer_id": instance.customer_id,
        "probability": explanation.probability,
        "raw_score": explanation.raw_score,
        "base_value": explanation.base_value,
        "contributions": explanation.contributions,
    }


def _assign(server: ModelServer, http: Request, instances: list[Instance]) -> list[Assignment]:
    """Each instance's model and variant, noted for the request's metrics."""
    assignments = server.assign([item.customer_id for item in instances])
    note_served(http, [(a.model.version, a.variant) for a in assignments])
    return assignments


def _model_reference(server: ModelServer, model: ServedModel) -> dict[str, Any]:
    """Which model answered, and the threshold its labels use."""
    return {
        "model": model.info.name,
        "version": model.version,
        "threshold": server.settings.serving_threshold,
    }
