"""What routes receive through ``Depends``: the app's `ModelServer` (``app.state.server``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from churnloop.serving.server import ModelServer


async def model_server(request: Request) -> ModelServer:
    """Async so that FastAPI calls it on the event loop: a plain function would cost every
    request a hand-off to its thread pool and back."""
    return request.app.state.server


ServerDep = Annotated[ModelServer, Depends(model_server)]
