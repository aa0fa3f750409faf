"""``POST /predict`` of one ``customer_id``, answered without FastAPI's request handling.

``{"customer_id": 42}`` is how the model is used in production. FastAPI's routing,
dependency solving, body parsing and validation and response validation cost about a
third of such a request's CPU (docs/benchmarks.md, serving). `CustomerIdLane` answers that
one body with the route's own code (`predict.answer_one`) and the response model's
serializer; any other request reaches the app unchanged, its body replayed: a batch,
features, another key, a value FastAPI would coerce or refuse, another content type. An
error is answered by the app's own handler for it (404, 422, 503), else propagates as it
would from the route (500). The tests send the same requests both ways and compare status,
headers, body and metrics.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from churnloop.serving.routes import predict
from churnloop.serving.schemas import INT64_MAX, INT64_MIN, Instance, PredictResponse

PATH = "/predict"
MAX_BODY_BYTES = 64
"""Longer bodies, or of no declared length, go to the app unread: the lane's body, with the
longest id, is 38 bytes."""
_ANSWER = TypeAdapter(PredictResponse)


class CustomerIdLane:
    """An ASGI middleware inside the app's others (metrics, body limit), so that they see
    the lane's requests as the route's."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api
        self.route = next(
            route for route in api.routes if isinstance(route, APIRoute) and route.path == PATH
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _json_post_to_predict(scope):
            await self.app(scope, receive, send)
            return
        message = await receive()
        customer_id = _lone_customer_id(message)
        if customer_id is None:
            await self.app(scope, _replaying(message, receive), send)
            return
        scope["route"] = self.route  # as the router would: the metrics label it by its path
        response = await self._answer(Request(scope, receive), customer_id)
        await response(scope, receive, send)

    async def _answer(self, request: Request, customer_id: int) -> Response:
        server = self.api.state.server
        try:
            answer = await predict.answer_one(server, request, Instance(customer_id=customer_id))
        except Exception as error:
            handler = self._handler(error)
            if handler is None:
                raise
            return await handler(request, error)
        body = _ANSWER.dump_json(_ANSWER.validate_python(answer))
        return Response(body, media_type="application/json")

    def _handler(self, error: Exception) -> Any:
        """The app's handler for ``error``'s class or its nearest base (the app's handlers
        are coroutines); None for an error no handler answers."""
        handlers = self.api.exception_handlers
        return next((handlers[kind] for kind in type(error).__mro__ if kind in handlers), None)


def _json_post_to_predict(scope: Scope) -> bool:
    """A JSON POST to `PATH` whose declared length is the lane's: nothing else is read here
    (a chunked or longer body reaches the app unread, its size limit answering for it)."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
        return False
    headers = dict(scope["headers"])
    length = headers.get(b"content-length", b"")
    return (
        headers.get(b"content-type") == b"application/json"
        and length.isdigit()
        and int(length) <= MAX_BODY_BYTES
    )


def _lone_customer_id(message: Message) -> int | None:
    """The id of a complete body that is exactly ``{"customer_id": <int64>}``, else None."""
    body = message.get("body", b"")
    if message.get("more_body") or len(body) > MAX_BODY_BYTES:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if type(parsed) is not dict or parsed.keys() != {"customer_id"}:
        return None
    customer_id = parsed["customer_id"]
    is_int64 = type(customer_id) is int and INT64_MIN <= customer_id <= INT64_MAX
    return customer_id if is_int64 else None


def _replaying(first: Message, receive: Receive) -> Receive:
    """``receive`` with ``first`` given back before it: the app reads the whole body."""
    pending = [first]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
