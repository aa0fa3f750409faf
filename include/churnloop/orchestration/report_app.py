"""Serve the lake's ``reports/`` (Data Docs, drift reports) over HTTP, beside Airflow's API.

The plugin mounts `create_report_app` under ``/churnloop``; every request needs what the
Airflow UI needs (a signed-in user allowed to see it), since reports hold data.
"""

from __future__ import annotations

import mimetypes
from html import escape
from pathlib import PurePosixPath

from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
from airflow.api_fastapi.core_api.security import requires_access_view
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

from churnloop import storage
from churnloop.links import PLUGIN_MOUNT, REPORTS_PREFIX
from churnloop.settings import get_settings

may_see_airflow = requires_access_view(AccessView.WEBSITE)
"""The dependency every report request passes: Airflow's own check for its UI."""


def create_report_app() -> FastAPI:
    """The reports app the plugin mounts; every route first passes `may_see_airflow`."""
    app = FastAPI(
        title="churnloop reports",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(may_see_airflow)],
    )

    @app.get("/reports/{relpath:path}")
    def report(relpath: str) -> Response:
        """A report file, or a listing when ``relpath`` names a folder without index.html."""
        clean = _safe_relpath(relpath)
        lake = storage.lake(get_settings())
        target = f"{REPORTS_PREFIX}/{clean}".rstrip("/")
        if lake.exists(target):
            media_type = mimetypes.guess_type(target)[0] or "application/octet-stream"
            return Response(lake.read_bytes(target), media_type=media_type)
        if lake.exists(f"{target}/index.html"):
            return Response(lake.read_bytes(f"{target}/index.html"), media_type="text/html")
        children = sorted(lake.list_files(target))
        if not children:
            raise HTTPException(404, f"no report at {lake.uri_of(target)}")
        return HTMLResponse(_listing(target, children))

    return app


def _safe_relpath(relpath: str) -> str:
    parts = PurePosixPath(relpath).parts
    if any(part in ("..", "") or part.startswith(".") for part in parts if part != "/"):
        raise HTTPException(400, f"invalid report path {relpath!r}")
    return "/".join(parts)


def _listing(prefix: str, files: list[str]) -> str:
    items = "".join(
        f'<li><a href="{PLUGIN_MOUNT}/{escape(name)}">{escape(name[len(prefix) + 1 :])}</a></li>'
        for name in files
        if name.endswith((".html", ".json"))
    )
    return f"<html><body><h1>{escape(prefix)}</h1><ul>{items}</ul></body></html>"
