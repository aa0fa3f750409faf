"""What routes receive through ``Depends``: the app's `ModelServer` (``app.state.server``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from churnloop.serving.server import ModelServer


def model_server(request: Request) -> ModelServer:
    return request.app.state.server


ServerDep = Annotated[ModelServer, Depends(model_server)]
