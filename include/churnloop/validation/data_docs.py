"""Publish Great Expectations Data Docs into the lake, where the Airflow plugin serves them.

GX builds a site only on the local filesystem; ``publish_build`` copies what one run built
(its validation page, its suite page, the index, missing static assets) under
``reports/data_docs/`` with ``storage.Store``, each object written atomically. A published
page loads nothing from outside: each CDN or GX web-asset URL it names becomes a relative
link to the site's own copy (``data_docs_assets``), so it works offline, behind the plugin
and from any static host.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from churnloop.links import REPORTS_PREFIX
from churnloop.storage import Store
from churnloop.validation.data_docs_assets import LOCAL_COPIES, VENDOR_DIR, VENDORED
from churnloop.validation.gx_imports import (
    AbstractDataContext,
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

DATA_DOCS_SITE = "lake"
DATA_DOCS_PREFIX = f"{REPORTS_PREFIX}/data_docs"
STATIC_DIR = "static"

_OUTSIDE_URL = re.compile(
    "(?P<url>"
    + "|".join(re.escape(url) for url in sorted(LOCAL_COPIES, key=len, reverse=True))
    + r")(?:\?[^\"'\s)]*)?(?=[\"')])"
)
"""A URL of `LOCAL_COPIES` ending an attribute or a CSS ``url()``, with any query (GX adds
one to its logo's)."""
_STATIC_LINK = re.compile(r"(?P<attribute>(?:src|href)=\")(?:\./|(?:\.\./)+)static/")
"""GX's own links into ``static/``: their depth is wrong on validation pages (the favicon's)."""


def publish_build(
    lake: Store,
    build_dir: Path,
    context: AbstractDataContext,
    result_id: ValidationResultIdentifier,
) -> str | None:
    """Copy the pages built for ``result_id`` from ``build_dir`` into the lake.

    Returns the validation page's lake path (``reports/data_docs/validations/...html``), or
    None when GX could not render it (GX logs why; the validation result itself stands).
    The index goes last so that it never links to a page the lake does not hold yet.
    """
    suite_id = ExpectationSuiteIdentifier(name=result_id.expectation_suite_identifier.name)
    page = _relpath(context, result_id)
    _publish_static_assets(lake, build_dir, Path(context.root_directory) / VENDOR_DIR)
    published = {
        relpath: _publish(lake, build_dir, relpath)
        for relpath in (page, _relpath(context, suite_id), _relpath(context, None))
    }
    return page if published[page] else None


def offline_page(page: str, relpath: str) -> str:
    """``page``, published at ``relpath``, linking the site's copies instead of outside URLs.

    Links are relative (from ``relpath``'s folder to the site's ``static/``), and GX's own
    links into ``static/`` are made so too.
    """
    static = posixpath.relpath(f"{DATA_DOCS_PREFIX}/{STATIC_DIR}", posixpath.dirname(relpath))
    page = _STATIC_LINK.sub(rf"\g<attribute>{static}/", page)
    return _OUTSIDE_URL.sub(lambda match: f"{static}/{LOCAL_COPIES[match['url']]}", page)


def _relpath(
    context: AbstractDataContext,
    resource: ValidationResultIdentifier | ExpectationSuiteIdentifier | None,
) -> str:
    """The site's public path is DATA_DOCS_PREFIX, so GX's URL of a page is its lake path."""
    (site,) = context.get_docs_sites_urls(
        resource_identifier=resource, site_name=DATA_DOCS_SITE, only_if_exists=False
    )
    return site["site_url"]


def _publish(lake: Store, build_dir: Path, relpath: str) -> bool:
    """Copy one built page; False when GX did not write it (it logs rendering errors)."""
    built = build_dir / relpath.removeprefix(f"{DATA_DOCS_PREFIX}/")
    if not built.is_file():
        return False
    lake.write_bytes(relpath, offline_page(built.read_text(encoding="utf-8"), relpath).encode())
    return True


def _publish_static_assets(lake: Store, build_dir: Path, vendor_dir: Path) -> None:
    """GX's static files and the vendored ones are the same for every run: copy only missing
    ones (a vendored file's path names its package's version)."""
    static = f"{DATA_DOCS_PREFIX}/{STATIC_DIR}"
    held = set(lake.list_files(static))
    sources = {
        f"{static}/{path.relative_to(build_dir / STATIC_DIR).as_posix()}": path
        for path in (build_dir / STATIC_DIR).rglob("*")
        if path.is_file()
    }
    sources |= {
        f"{static}/{VENDOR_DIR}/{file.relpath}": vendor_dir / file.relpath for file in VENDORED
    }
    for relpath, path in sorted(sources.items()):
        if relpath not in held:
            lake.write_bytes(relpath, path.read_bytes())
