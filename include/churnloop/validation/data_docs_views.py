"""GX's Data Docs page views, with their Jinja templates compiled once per process.

``great_expectations.yml`` names these views: GX's own, whose environments share one bytecode
cache, which ``warm`` fills before a preloading worker forks. Jinja checks each cached entry
against its template's source, so a changed template is compiled again.
"""

from __future__ import annotations

from jinja2 import BytecodeCache
from jinja2.bccache import Bucket

from churnloop.validation.gx_imports import DefaultJinjaIndexPageView, DefaultJinjaPageView


class _ProcessBytecodeCache(BytecodeCache):
    """Compiled templates kept in memory for the life of the process (and its forks)."""

    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        compiled = self._compiled.get(bucket.key)
        if compiled is not None:
            bucket.bytecode_from_string(compiled)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._compiled[bucket.key] = bucket.bytecode_to_string()


_TEMPLATES = _ProcessBytecodeCache()


class PageView(DefaultJinjaPageView):
    """GX's page view (validation results, suites), its templates compiled once."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.bytecode_cache = _TEMPLATES


class IndexPageView(DefaultJinjaIndexPageView):
    """GX's index page view, its templates compiled once."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.bytecode_cache = _TEMPLATES


def warm() -> int:
    """Compile every GX page template into the process's cache; returns how many."""
    environment = PageView().env
    names = environment.list_templates()  # the pages' templates and the styles' ones
    for name in names:
        environment.get_template(name)
    return len(names)
