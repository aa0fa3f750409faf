"""``POST /admin/reload``, behind ``Authorization: Bearer <settings.serving_admin_token>``
(401 without it, 403 with a wrong one or when no token is configured)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

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
    if not secrets.compare_digest(credentials.credentials, token.get_secret_value()):
        raise HTTPException(403, "wrong admin token")


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
        raise HTTPException(503, f"cannot read the registry: {error}") from error
    body = {**outcome.to_dict(), "serving": server.served_version()}
    if outcome.champion_failed:
        error = next(f.error for f in outcome.failures if f.alias == CHAMPION)
        raise HTTPException(500, {**body, "error": error})
    return body
