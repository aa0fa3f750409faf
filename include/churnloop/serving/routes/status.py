"""``GET /health``, ``/ready``, ``/model`` and ``/metrics``: how the server and its model
are doing, for probes, operators and Prometheus."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from churnloop.serving.routes.dependencies import ServerDep

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up (says nothing about the model: see /ready)."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "No model loaded yet, or starting"}})
async def ready(server: ServerDep) -> dict[str, Any]:
    """200 once a champion is loaded and the online store's first connection was tried."""
    model = server.champion()
    if not server.online_tried.is_set():
        raise HTTPException(503, "starting: connecting to the online store")
    return {"status": "ready", "version": model.version}


@router.get("/model")
async def model_state(server: ServerDep) -> dict[str, Any]:
    """The served version, its alias, training window and lineage; the last load error."""
    return server.model_state()


@router.get("/metrics")
async def metrics(server: ServerDep) -> Response:
    """Prometheus' text format; with several workers, their values combined."""
    return Response(server.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
