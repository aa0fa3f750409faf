"""GX's Data Docs page views, showing the data only as text, their templates compiled once.

``great_expectations.yml`` names these views: GX's own, but every value of the page is
HTML-escaped (GX writes observed values and column names raw) and cut to
``excerpts.LONGEST_STORED``; the environments share one bytecode cache that ``warm`` fills.
"""

from __future__ import annotations

import html
from typing import Any

from jinja2 import BytecodeCache
from jinja2.bccache import Bucket

from churnloop.validation.excerpts import capped
from churnloop.validation.gx_imports import (
    DefaultJinjaIndexPageView,
    DefaultJinjaPageView,
    RenderedContent,
)

GX_MARKUP = frozenset({"template", "styling"})
"""Keys of a rendered document whose strings are GX's own markup: a string template's
text (with ``$`` parameters) and styling (classes, attributes, styles)."""


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


class _TextOnly:
    """Renders a document whose values are cut short and escaped (mixed into GX's views)."""

    def render(self, document: Any, template: str | None = None, **kwargs: Any) -> str:
        if isinstance(document, RenderedContent):
            document = document.to_json_dict()
        text_only = as_text(capped(document, lists=False))
        return super().render(text_only, template, **kwargs)  # type: ignore[misc]

    def _validate_document(self, document: Any) -> None:
        if not isinstance(document, dict):
            raise TypeError(f"expected a rendered document, got {type(document).__name__}")


class PageView(_TextOnly, DefaultJinjaPageView):
    """GX's page view (validation results, suites): values as text, templates compiled once."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.bytecode_cache = _TEMPLATES


class IndexPageView(_TextOnly, DefaultJinjaIndexPageView):
    """GX's index page view: values as text, templates compiled once."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.bytecode_cache = _TEMPLATES


def as_text(node: Any) -> Any:
    """A rendered document (JSON) whose every value shows as text.

    Strings are HTML-escaped, except GX's markup (``GX_MARKUP``) and the string parameters
    of its templates, which GX escapes when it substitutes them (escaping them here too
    would show ``&lt;`` on the page); lists and dicts held in parameters are escaped here.
    """
    if isinstance(node, str):
        return html.escape(node, quote=False)
    if isinstance(node, list):
        return [as_text(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {key: _value_as_text(key, value) for key, value in node.items()}


def _value_as_text(key: str, value: Any) -> Any:
    if key in GX_MARKUP:
        return value
    if key == "params" and isinstance(value, dict):
        return {
            name: item if isinstance(item, str) else as_text(item) for name, item in value.items()
        }
    return as_text(value)


def warm() -> int:
    """Compile every GX page template into the process's cache; returns how many."""
    environment = PageView().env
    names = environment.list_templates()  # the pages' templates and the styles' ones
    for name in names:
        environment.get_template(name)
    return len(names)
