"""``POST /admin/reload``, behind ``Authorization: Bearer <settings.serving_admin_token>``
(401 without it, 403 with a wrong one, whatever its characters, or when no token is
configured)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from churnloop.redaction import describe_error
from churnloop.registry import CHAMPION
from churnloop.serving.routes.dependencies import ServerDep

_BEARER = HTTPBearer(auto_error=False)


def require_admin(
    server: ServerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> None:
    token = server.settings.serving_admin_token
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
    if not _same_token(credentials.credentials, token.get_secret_value()):
        raise HTTPException(403, "wrong admin token")


def _same_token(given: str, expected: str) -> bool:
    """Compare in constant time, as bytes: ``compare_digest`` refuses non-ASCII text.

    Starlette decodes headers as latin-1, so encoding back gives the bytes sent; the
    token is compared in UTF-8, as a client would send it.
    """
    try:
        sent = given.encode("latin-1")
    except UnicodeEncodeError:  # not from an HTTP header: no token matches it
        return False
    return hmac.compare_digest(sent, expected.encode())


router = APIRouter(dependencies=[Depends(require_admin)])


@router.post(
    "/admin/reload",
    responses={401: {}, 403: {}, 500: {"description": "The champion failed to load"}},
)
async def reload(server: ServerDep) -> dict[str, Any]:
    """Read the aliases now and load what moved (retrying versions that failed)."""
    try:
        outcome = await run_in_threadpool(server.follower.refresh)
    except Exception as error:
        raise HTTPException(503, f"cannot read the registry: {describe_error(error)}") from error
    body = {**outcome.to_dict(), "serving": server.served_version()}
    if outcome.champion_failed:
        error = next(f.error for f in outcome.failures if f.alias == CHAMPION)
        raise HTTPException(500, {**body, "error": error})
    return body
