import jinja2
import pytest

from churnloop import schema
from churnloop.validation import data_docs_views
from churnloop.validation.data_docs_views import IndexPageView, PageView
from churnloop.validation.partition import validate_partition
from tests.churnloop.validation.test_partition import DAY, snapshot_table, stage


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
