import posixpath
import re
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

import pytest

from churnloop import schema
from churnloop.storage import Store, lake
from churnloop.validation.data_docs import DATA_DOCS_PREFIX, offline_page
from churnloop.validation.partition import PartitionQuarantined, validate_partition
from tests.churnloop.validation.test_partition import DAY, replaced, snapshot_table, stage

CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


class _Loads(HTMLParser):
    """What a page makes the browser fetch: each ``(tag, attribute, URL)``; ``<a href>`` is
    followed only on a click, so it is not one. Also every URL written in a style."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[tuple[str, str, str]] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if value and (name in ("src", "srcset") or (name == "href" and tag != "a")):
                self.loads.append((tag, name, value))
            if value and name == "style":
                self.loads += [(tag, "style", url) for url in CSS_URL.findall(value)]

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.loads += [("style", "url()", url) for url in CSS_URL.findall(data)]


def loads(page: str) -> list[tuple[str, str, str]]:
    parser = _Loads()
    parser.feed(page)
    return parser.loads


def fetched_relpath(page_relpath: str, url: str) -> str:
    """The lake path a relative ``url`` on the page at ``page_relpath`` points to."""
    path = unquote(urlsplit(url).path)
    return posixpath.normpath(posixpath.join(posixpath.dirname(page_relpath), path))


@pytest.fixture
def published_pages(settings) -> dict[str, str]:
    """The pages a failed validation published: its own, its suite's and the index."""
    stage(settings, schema.SNAPSHOTS, replaced(snapshot_table(), "age", {3: -3, 7: 212}))
    with pytest.raises(PartitionQuarantined):
        validate_partition(settings, schema.SNAPSHOTS, DAY)
    store = lake(settings)
    pages = [path for path in store.list_files(DATA_DOCS_PREFIX) if path.endswith(".html")]
    return {path: store.read_bytes(path).decode() for path in pages}


def test_published_pages_load_nothing_from_outside(published_pages):
    assert len(published_pages) == 3, sorted(published_pages)
    for relpath, page in published_pages.items():
        outside = [load for load in loads(page) if urlsplit(load[2]).netloc]
        assert outside == [], relpath
        without_links = re.sub(r"<a\b[^>]*>", "", page)
        assert "https://" not in without_links and "http://" not in without_links, relpath


def test_everything_published_pages_load_is_in_the_lake(settings, published_pages):
    store = lake(settings)
    stylesheets = set()
    for relpath, page in published_pages.items():
        fetched = {fetched_relpath(relpath, url) for _, _, url in loads(page)}
        missing = sorted(path for path in fetched if not store.exists(path))
        assert missing == [], f"{relpath} loads files the lake lacks"
        stylesheets |= {path for path in fetched if path.endswith(".css")}
        assert any("/static/vendor/bootstrap@" in path for path in fetched), relpath
    assert_stylesheets_find_their_files(store, stylesheets)


def assert_stylesheets_find_their_files(store: Store, stylesheets: set[str]) -> None:
    """Font Awesome's stylesheet loads its fonts (the status icons) relative to itself."""
    fonts = set()
    for stylesheet in stylesheets:
        for url in CSS_URL.findall(store.read_bytes(stylesheet).decode()):
            if not url.startswith("data:"):
                assert not urlsplit(url).netloc, f"{stylesheet} loads {url}"
                fonts.add(fetched_relpath(stylesheet, url))
    assert any(path.endswith(".woff2") for path in fonts)
    assert sorted(path for path in fonts if not store.exists(path)) == []


PAGES = {
    "index": ("reports/data_docs/index.html", "static"),
    "suite": ("reports/data_docs/expectations/customer_snapshots.html", "../static"),
    "validation": (
        "reports/data_docs/validations/customer_snapshots/dt=2026-03-04/20260304T000000Z/b.html",
        "../../../../static",
    ),
}


@pytest.mark.parametrize(("relpath", "static"), PAGES.values(), ids=PAGES.keys())
def test_a_page_links_the_site_copies_relative_to_where_it_lies(relpath, static):
    page = (
        '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'
        '<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/'
        'logo-long.png?d=20260304T000000Z&dataContextId=0001"/>'
        '<link rel="shortcut icon" href="../../../static/images/favicon.ico"/>'
        '<a href="https://greatexpectations.io">GX</a>'
    )

    assert offline_page(page, relpath) == (
        f'<script src="{static}/vendor/jquery@3.7.1/dist/jquery.min.js"></script>'
        f'<img src="{static}/images/logo-long.png"/>'
        f'<link rel="shortcut icon" href="{static}/images/favicon.ico"/>'
        '<a href="https://greatexpectations.io">GX</a>'
    )
