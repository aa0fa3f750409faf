import html

import jinja2
import pyarrow as pa
import pytest

from churnloop import schema
from churnloop.storage import lake
from churnloop.validation import data_docs_views
from churnloop.validation.data_docs import DATA_DOCS_PREFIX
from churnloop.validation.data_docs_views import IndexPageView, PageView
from churnloop.validation.partition import PartitionQuarantined, validate_partition
from tests.churnloop.validation.test_partition import DAY, replaced, snapshot_table, stage


@pytest.fixture
def compilations(monkeypatch):
    """Names of the templates Jinja compiles from source while the test runs."""
    compiled = []
    compile_source = jinja2.Environment.compile

    def counting(self, source, name=None, *args, **kwargs):
        compiled.append(name)
        return compile_source(self, source, name, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    return compiled


def test_a_warm_process_renders_data_docs_without_compiling(settings, compilations):
    assert data_docs_views.warm() > 20
    compilations.clear()
    stage(settings, schema.SNAPSHOTS, snapshot_table())

    outcome = validate_partition(settings, schema.SNAPSHOTS, DAY)  # builds the site

    assert outcome.data_docs_relpath
    assert compilations == []


def test_each_view_compiles_a_template_once_per_process(compilations):
    for view in (PageView, IndexPageView, PageView):
        view().env.get_template("index_page.j2")
    assert compilations.count("index_page.j2") <= 1


def test_a_changed_template_is_compiled_again():
    def render(source: str) -> str:
        environment = jinja2.Environment(loader=jinja2.DictLoader({"page.j2": source}))
        environment.bytecode_cache = PageView().env.bytecode_cache
        return environment.get_template("page.j2").render()

    assert render("first") == "first"
    assert render("second") == "second"


PAYLOADS = {
    "script": "<script>alert('xss')</script>",
    "image": "<img src=x onerror=alert(1)>",
    "attribute_breakout": '"><svg onload=alert(1)>',
    "closing_tags": "</div></td><iframe src=javascript:alert(1)>",
}


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_data_docs_show_a_drops_markup_only_escaped(settings, payload):
    """GX renders observed and unexpected values into table cells as raw HTML; the views
    escape every value of the document, so a drop's text is never markup on the page."""
    raw = replaced(snapshot_table(), "plan", {1: payload, 2: payload})
    raw = raw.append_column(payload, pa.array([payload] * raw.num_rows))
    stage(settings, schema.SNAPSHOTS, raw)

    with pytest.raises(PartitionQuarantined) as caught:
        validate_partition(settings, schema.SNAPSHOTS, DAY)

    store = lake(settings)
    html_files = [path for path in store.list_files(DATA_DOCS_PREFIX) if path.endswith(".html")]
    pages = {path: store.read_bytes(path).decode() for path in html_files}
    assert len(pages) == 3, sorted(pages)
    for path, text in pages.items():
        assert payload not in text, f"{path} holds the drop's markup raw"
    page = pages[caught.value.outcome.data_docs_relpath]
    assert html.escape(payload, quote=False) in page, "the value is shown, escaped"
