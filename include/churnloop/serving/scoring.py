"""Scoring a request's instances, each with the model `ModelServer.assign` gave it (the
champion, or the candidate during a canary): online rows, encoding, probabilities, and a
prediction-log row each naming its version and variant, with its shadow's version and score
when the request is drawn for shadowing (during a canary the other variant's model, else
the challenger). Each variant's rows are counted against its model's data contract
(`churnloop.serving.contract`) and their scores observed by version and variant, NaN or
infinite ones counted apart.

Errors reach the caller as HTTP answers: 404 for an unknown customer (in place in a
batch), 422 naming the field the model rejects, 503 when the online store is down.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError

from churnloop.schema import ENTITY, PREDICTION, TIMESTAMP
from churnloop.serving.contract import input_contract
from churnloop.serving.model import FeatureProblem, InvalidFeatures, ServedModel
from churnloop.serving.prediction_log import FEATURES_KEY
from churnloop.serving.routing import CANDIDATE, CHAMPION, SHADOW
from churnloop.serving.schemas import Instance
from churnloop.serving.server import Assignment, ModelServer

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


@dataclass
class VariantRows:
    """The rows of one request that one variant's model scores, and their scores."""

    assigned: Assignment
    rows: list[dict[str, Any]] = field(default_factory=list)
    sources: RowSources = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)


async def score(
    server: ModelServer,
    instances: Sequence[Instance],
    assignments: Sequence[Assignment],
    batch: bool,
) -> list[dict[str, Any]]:
    """Score every instance with its assigned model; unknown customers become per-instance
    errors in a batch. Every variant's rows are encoded before any is scored: a request
    refused (422) or failing (500) leaves no observed score and no log row."""
    results, groups = await _rows_by_variant(server, instances, assignments, batch)
    matrices = [
        encode_request_rows(server, group.assigned.model, group.rows, group.sources, batch)
        for group in groups
    ]
    threshold = server.settings.serving_threshold
    for group, matrix in zip(groups, matrices, strict=True):
        model, variant = group.assigned.model, group.assigned.variant
        contract = input_contract(model, server.settings.great_expectations_dir)
        server.metrics.record_inputs(contract.count_encoded(matrix, group.rows))
        scores = model.probabilities(matrix)
        server.metrics.record_scores(model.version, variant, scores)
        group.probabilities = scores.tolist()
        for (index, _), probability in zip(group.sources, group.probabilities, strict=True):
            results[index].update(
                probability=probability,
                label=int(probability >= threshold),
                version=model.version,
                variant=variant,
            )
    if groups:
        log_predictions(server, groups)
    return results


async def _rows_by_variant(
    server: ModelServer,
    instances: Sequence[Instance],
    assignments: Sequence[Assignment],
    batch: bool,
) -> tuple[list[dict[str, Any]], list[VariantRows]]:
    """A result per instance (a 404 error in place for an unknown customer in a batch, a
    raised 404 alone) and the rows to score, grouped by variant."""
    wanted = [item.customer_id for item in instances if item.customer_id is not None]
    online = iter(await server.online_rows(wanted) if wanted else [])
    results: list[dict[str, Any]] = []
    groups: dict[str, VariantRows] = {}
    for index, (item, assigned) in enumerate(zip(instances, assignments, strict=True)):
        row = item.features if item.customer_id is None else next(online)
        results.append({"customer_id": item.customer_id})
        if row is None:
            server.metrics.errors.labels("unknown_customer").inc()
            error = UnknownCustomer(item.customer_id)
            if not batch:
                raise HTTPException(404, str(error))
            results[-1]["error"] = {"status": 404, "detail": str(error)}
            continue
        group = groups.setdefault(assigned.variant, VariantRows(assigned))
        group.rows.append(row)
        group.sources.append((index, item))
    return results, list(groups.values())


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


def log_predictions(server: ModelServer, groups: list[VariantRows]) -> None:
    """Queue a prediction-log row per scored instance, naming its version and variant, with
    its shadow's version and score when its rows are shadowed (`shadow_scores`)."""
    shadows = shadow_scores(server, groups)  # before the log's lock, which append holds
    now = dt.datetime.now(dt.UTC)
    request_id = uuid.uuid4().hex
    threshold = server.settings.serving_threshold
    server.prediction_log.append(
        {
            TIMESTAMP: now,
            "request_id": request_id,
            ENTITY: item.customer_id,
            "model_name": group.assigned.model.info.name,
            "model_version": group.assigned.model.version,
            "variant": group.assigned.variant,
            PREDICTION: probability,
            "predicted_label": int(probability >= threshold),
            "shadow_version": shadow.model.version if shadow else None,
            "shadow_prediction": shadow.scores[index] if shadow else None,
            FEATURES_KEY: row,
        }
        for group, shadow in zip(groups, shadows, strict=True)
        for index, (row, (_, item), probability) in enumerate(
            zip(group.rows, group.sources, group.probabilities, strict=True)
        )
    )


@dataclass(frozen=True)
class Shadow:
    """A variant's rows as the model shadowing them scored them (logged, never answered)."""

    model: ServedModel
    scores: list[float]


def shadow_scores(server: ModelServer, groups: list[VariantRows]) -> list[Shadow | None]:
    """Per variant's rows, their scores by the model shadowing them on this request (None:
    not shadowed), observed as ``shadow`` with how often its labels agree with the served
    ones; a failure is counted and logged, never the caller's problem."""
    shadows = shadow_models(server, [group.assigned for group in groups])
    return [
        _shadow(server, group, model) if model else None
        for group, model in zip(groups, shadows, strict=True)
    ]


def shadow_models(server: ModelServer, served: list[Assignment]) -> list[ServedModel | None]:
    """Who shadows each variant's rows on this request. During a canary, on a
    ``canary_shadow_fraction`` draw, the other variant's model: the candidate the
    champion's rows, the champion the candidate's (the controller compares their labels);
    otherwise the challenger, on a ``serving_shadow_fraction`` draw."""
    candidate, share = server.follower.canary()
    if candidate is not None and share > 0:
        others = {CHAMPION: candidate, CANDIDATE: server.follower.champion}
        fraction = server.settings.canary_shadow_fraction
    else:
        challenger = server.follower.challenger
        others = {CHAMPION: challenger, CANDIDATE: challenger}
        fraction = server.settings.serving_shadow_fraction
    if server.shadow_draw.random() >= fraction:
        return [None] * len(served)
    shadows = [others[each.variant] for each in served]
    return [
        shadow if shadow is not None and shadow.version != each.model.version else None
        for each, shadow in zip(served, shadows, strict=True)
    ]


def _shadow(server: ModelServer, group: VariantRows, model: ServedModel) -> Shadow | None:
    try:
        scores = model.probabilities(model.encode(group.rows))
    except Exception:
        server.metrics.errors.labels("shadow").inc()
        log.exception("shadow scoring by v%s failed", model.version)
        return None
    server.metrics.record_scores(model.version, SHADOW, scores)
    served = (group.assigned.model.version, group.assigned.variant)
    threshold = server.settings.serving_threshold
    probabilities = np.asarray(group.probabilities)
    server.metrics.record_agreement(served, model.version, probabilities, scores, threshold)
    return Shadow(model, scores.tolist())
