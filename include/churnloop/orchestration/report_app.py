"""Serve the lake's ``reports/`` (Data Docs, drift reports) beside Airflow's API, untrusted.

The plugin mounts `create_report_app` under ``/churnloop``; a request needs what the UI needs,
except for ``reports/data_docs/static/`` (GX's static files and the vendored libraries the
Data Docs pages load: code, never data), served without sign-in and to any origin.
HTML runs in a CSP sandbox without ``allow-same-origin``, anything else runs no script;
only files inside ``reports/`` (symlinks resolved) are served; a malformed name is a 400, a
missing one a 404 naming the report path only. docs/reliability.md says why.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable
from html import escape
from pathlib import PurePosixPath

from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
from airflow.api_fastapi.core_api.security import requires_access_view
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from churnloop import storage
from churnloop.links import PLUGIN_MOUNT, REPORTS_PREFIX
from churnloop.settings import get_settings

may_see_airflow = requires_access_view(AccessView.WEBSITE)
"""The dependency every report request passes: Airflow's own check for its UI."""

PAGE_POLICY = "sandbox allow-scripts allow-popups allow-downloads"
"""CSP of an HTML page: scripts run in an opaque origin; links opening a new tab (which
inherits the sandbox) and Plotly's "download as PNG" work; never ``allow-same-origin``."""
FILE_POLICY = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
"""CSP of anything else opened directly (an SVG, JSON, an error): no script runs."""

MAX_PATH_CHARS = 1024
"""Longest report path accepted; GX's deepest page names fewer than 200 characters."""
MAX_PART_BYTES = 255
"""Longest path segment accepted: a file name's limit on common file systems."""
SHOWN_CHARS = 200
"""How much of a refused or missing name an error message echoes."""
PUBLIC_FOLDER = "data_docs/static"
"""Under ``reports/``: GX's static files and the libraries Data Docs pages load (vendored,
``churnloop.validation.data_docs_assets``), public code served without sign-in and to any
origin: a sandboxed page's requests carry no session cookie and come from an opaque origin
(fonts and ``crossorigin`` scripts are CORS requests)."""


def create_report_app() -> FastAPI:
    """The reports app the plugin mounts; every route but the Data Docs' static files
    first passes `may_see_airflow`."""
    app = FastAPI(
        title="churnloop reports",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.middleware("http")(_security_headers)

    @app.get(f"/reports/{PUBLIC_FOLDER}/{{relpath:path}}")
    def public_file(relpath: str) -> Response:
        """A style, script, font or image of the Data Docs pages, for any page's origin."""
        target = f"{REPORTS_PREFIX}/{PUBLIC_FOLDER}/{_safe_relpath(relpath)}"
        lake = storage.lake(get_settings())
        if not (_within(lake, target, f"{REPORTS_PREFIX}/{PUBLIC_FOLDER}") and lake.exists(target)):
            raise HTTPException(404, f"no report at {_shown(target)}")
        response = _file(lake, target)
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    @app.get("/reports/{relpath:path}", dependencies=[Depends(may_see_airflow)])
    def report(relpath: str) -> Response:
        """A report file, or a listing when ``relpath`` names a folder without index.html."""
        target = f"{REPORTS_PREFIX}/{_safe_relpath(relpath)}".rstrip("/")
        lake = storage.lake(get_settings())
        missing = HTTPException(404, f"no report at {_shown(target)}")
        if not _within_reports(lake, target):
            raise missing
        for candidate in (target, f"{target}/index.html"):
            if _is_report_file(lake, candidate):
                return _file(lake, candidate)
        children = [child for child in lake.list_files(target) if _within_reports(lake, child)]
        if not children:
            raise missing
        return HTMLResponse(_listing(target, sorted(children)))

    return app


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Every answer, errors included: never sniffed; HTML sandboxed, the rest scriptless."""
    response = await call_next(request)
    is_page = response.headers.get("content-type", "").startswith("text/html")
    response.headers["Content-Security-Policy"] = PAGE_POLICY if is_page else FILE_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _safe_relpath(relpath: str) -> str:
    """``relpath`` as a clean name under ``reports/``, or a 400 saying what is wrong."""
    parts = [part for part in PurePosixPath(relpath).parts if part != "/"]
    problem = _name_problem(relpath, parts)
    if problem:
        raise HTTPException(400, f"invalid report path {_shown(relpath)}: {problem}")
    return "/".join(parts)


def _name_problem(relpath: str, parts: list[str]) -> str | None:
    if len(relpath) > MAX_PATH_CHARS:
        return f"longer than {MAX_PATH_CHARS} characters"
    if not relpath.isprintable():
        return "it holds a control or unprintable character"
    if any(part in ("..", "") or part.startswith(".") for part in parts):
        return "'..' or a hidden part"
    if any(len(part.encode()) > MAX_PART_BYTES for part in parts):
        return f"a part is longer than {MAX_PART_BYTES} bytes"
    return None


def _shown(name: str) -> str:
    """``name`` as an error message may echo it: quoted, escaped, cut to `SHOWN_CHARS`."""
    cut = "..." if len(name) > SHOWN_CHARS else ""
    return escape(repr(name[:SHOWN_CHARS] + cut), quote=False)


def _within_reports(lake: storage.Store, relpath: str) -> bool:
    return _within(lake, relpath, REPORTS_PREFIX)


def _within(lake: storage.Store, relpath: str, folder: str) -> bool:
    """Whether ``relpath`` stays inside ``folder`` once its symlinks are resolved (a
    symlink loop does not); S3 has no symlinks, so the name check is all it needs."""
    path, root = lake.local_path(relpath), lake.local_path(folder)
    if path is None or root is None:
        return True
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


def _is_report_file(lake: storage.Store, relpath: str) -> bool:
    return _within_reports(lake, relpath) and lake.exists(relpath)


def _file(lake: storage.Store, relpath: str) -> Response:
    media_type = mimetypes.guess_type(relpath)[0] or "application/octet-stream"
    return Response(lake.read_bytes(relpath), media_type=media_type)


def _listing(prefix: str, files: list[str]) -> str:
    items = "".join(
        f'<li><a href="{PLUGIN_MOUNT}/{escape(name)}">{escape(name[len(prefix) + 1 :])}</a></li>'
        for name in files
        if name.endswith((".html", ".json"))
    )
    return f"<html><body><h1>{escape(prefix)}</h1><ul>{items}</ul></body></html>"
