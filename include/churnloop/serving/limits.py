"""The model server's cap on request bodies: `BodySizeLimit` answers 413 naming the limit.

The limit is the lower of ``serving_max_body_bytes`` and ``serving_max_instances`` x
``serving_max_instance_bytes``, checked from ``Content-Length`` before reading, else while
the chunks arrive: a body cannot cost a parse of far more instances than the cap accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from churnloop.settings import Settings

SETTING = "CHURNLOOP_SERVING_MAX_BODY_BYTES"
INSTANCE_SETTINGS = "CHURNLOOP_SERVING_MAX_INSTANCES x CHURNLOOP_SERVING_MAX_INSTANCE_BYTES"


@dataclass(frozen=True)
class BodyLimit:
    """The most bytes a request body may hold, and the settings that make it."""

    max_bytes: int
    settings: str


def body_limit(settings: Settings) -> BodyLimit:
    """The lower of the body setting and the instance cap's bytes."""
    for_instances = settings.serving_max_instances * settings.serving_max_instance_bytes
    if for_instances < settings.serving_max_body_bytes:
        return BodyLimit(for_instances, INSTANCE_SETTINGS)
    return BodyLimit(settings.serving_max_body_bytes, SETTING)


class BodySizeLimit:
    """Answer 413 to a request whose body is longer than ``limit.max_bytes``."""

    def __init__(self, app: ASGIApp, limit: BodyLimit) -> None:
        self.app = app
        self.max_bytes = limit.max_bytes
        self.detail = f"request body over {limit.max_bytes} bytes ({limit.settings})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse({"detail": self.detail}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self.detail)
            return message

        await self.app(scope, counted, send)
