"""Publish Great Expectations Data Docs into the lake, where the Airflow plugin serves them.

GX builds a site only on the local filesystem; ``publish_build`` copies what one run built
(its validation page, its suite page, the index, missing static assets) under
``reports/data_docs/`` with ``storage.Store``, each object written atomically.
"""

from __future__ import annotations

from pathlib import Path

from churnloop.links import REPORTS_PREFIX
from churnloop.storage import Store
from churnloop.validation.gx_imports import (
    AbstractDataContext,
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

DATA_DOCS_SITE = "lake"
DATA_DOCS_PREFIX = f"{REPORTS_PREFIX}/data_docs"
STATIC_DIR = "static"


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
    _publish_static_assets(lake, build_dir)
    published = {
        relpath: _publish(lake, build_dir, relpath)
        for relpath in (page, _relpath(context, suite_id), _relpath(context, None))
    }
    return page if published[page] else None


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
    lake.write_bytes(relpath, built.read_bytes())
    return True


def _publish_static_assets(lake: Store, build_dir: Path) -> None:
    """Styles, scripts and fonts are the same for every run: copy only missing ones."""
    held = set(lake.list_files(f"{DATA_DOCS_PREFIX}/{STATIC_DIR}"))
    for path in sorted((build_dir / STATIC_DIR).rglob("*")):
        relpath = f"{DATA_DOCS_PREFIX}/{path.relative_to(build_dir).as_posix()}"
        if path.is_file() and relpath not in held:
            lake.write_bytes(relpath, path.read_bytes())
