"""Scoring a request's instances with the champion: online rows, encoding, probabilities,
and a prediction-log row each (with the challenger's shadow score when drawn). Each batch
is counted against the data contract (`churnloop.serving.contract`) and its scores
observed, NaN or infinite ones counted apart.

Errors reach the caller as HTTP answers: 404 for an unknown customer (in place in a
batch), 422 naming the field the model rejects, 503 when the online store is down.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError

from churnloop.schema import ENTITY, PREDICTION, TIMESTAMP
from churnloop.serving.contract import input_contract
from churnloop.serving.model import FeatureProblem, InvalidFeatures, ServedModel
from churnloop.serving.prediction_log import FEATURES_KEY
from churnloop.serving.schemas import Instance
from churnloop.serving.server import ModelServer

log = logging.getLogger(__name__)

RowSources = list[tuple[int, Instance]]
"""Per encoded row, its instance and that instance's position in the request."""


class UnknownCustomer(LookupError):
    def __init__(self, customer_id: int) -> None:
        self.customer_id = customer_id
        super().__init__(
            f"customer {customer_id} has no features in the online store "
            "(never materialized, or not a customer)"
        )


async def score(
    server: ModelServer, model: ServedModel, instances: Sequence[Instance], batch: bool
) -> list[dict[str, Any]]:
    """Score every instance; unknown customers become per-instance errors in a batch."""
    wanted = [item.customer_id for item in instances if item.customer_id is not None]
    online = iter(await server.online_rows(wanted) if wanted else [])
    results: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    scored: RowSources = []
    for index, item in enumerate(instances):
        row = item.features if item.customer_id is None else next(online)
        results.append({"customer_id": item.customer_id})
        if row is None:
            server.metrics.errors.labels("unknown_customer").inc()
            error = UnknownCustomer(item.customer_id)
            if not batch:
                raise HTTPException(404, str(error))
            results[-1]["error"] = {"status": 404, "detail": str(error)}
            continue
        rows.append(row)
        scored.append((index, item))
    if not rows:
        return results
    matrix = encode_request_rows(server, model, rows, scored, batch)
    contract = input_contract(model, server.settings.great_expectations_dir)
    server.metrics.record_inputs(contract.count_encoded(matrix, rows))
    scores = model.probabilities(matrix)
    server.metrics.record_scores(model.version, "champion", scores)
    probabilities = scores.tolist()
    threshold = server.settings.serving_threshold
    for (index, _), probability in zip(scored, probabilities, strict=True):
        results[index].update(probability=probability, label=int(probability >= threshold))
    log_predictions(server, model, rows, [item for _, item in scored], probabilities)
    return results


def encode_request_rows(
    server: ModelServer,
    model: ServedModel,
    rows: list[dict[str, Any]],
    sources: RowSources,
    batch: bool,
) -> np.ndarray:
    """``model.encode``, its problems as 422s naming the request's fields (or a 500 when
    the rows came from the online store: the request is not at fault)."""
    try:
        return model.encode(rows)
    except InvalidFeatures as invalid:
        if any(sources[p.row][1].customer_id is not None for p in invalid.problems):
            server.metrics.errors.labels("model").inc()
            detail = f"online features do not fit the model: {invalid}"
            raise HTTPException(500, detail) from invalid
        raise RequestValidationError(
            [_validation_error(problem, sources, batch) for problem in invalid.problems]
        ) from invalid


def _validation_error(problem: FeatureProblem, sources: RowSources, batch: bool) -> dict[str, Any]:
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


def log_predictions(
    server: ModelServer,
    model: ServedModel,
    rows: list[dict[str, Any]],
    instances: list[Instance],
    probabilities: list[float],
) -> None:
    """Queue a prediction-log row per scored instance, with the challenger's score when
    this request is shadowed."""
    shadow_model, shadow = shadow_scores(server, rows)
    now = dt.datetime.now(dt.UTC)
    request_id = uuid.uuid4().hex
    threshold = server.settings.serving_threshold
    server.prediction_log.append(
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


def shadow_scores(
    server: ModelServer, rows: list[dict[str, Any]]
) -> tuple[ServedModel | None, list[float]]:
    """The challenger's scores on a ``serving_shadow_fraction`` of requests; its failure
    is counted and logged, never the caller's problem."""
    challenger = server.follower.challenger
    fraction = server.settings.serving_shadow_fraction
    if challenger is None or server.shadow_draw.random() >= fraction:
        return None, []
    try:
        scores = challenger.probabilities(challenger.encode(rows))
    except Exception:
        server.metrics.errors.labels("shadow").inc()
        log.exception("shadow scoring by v%s failed", challenger.version)
        return None, []
    server.metrics.record_scores(challenger.version, "shadow", scores)
    return challenger, scores.tolist()
