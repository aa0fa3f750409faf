"""The Great Expectations names churnloop uses, imported with GX's logger turned down first.

Importing GX logs one INFO line per public API it registers (~200); inside an Airflow task
they bury the task's own log. The level must be set before the first GX import, so every
churnloop module takes GX from here rather than importing it directly.
"""

# ruff: noqa: E402 -- the imports below must follow the logger setting.
import logging

logging.getLogger("great_expectations").setLevel(logging.WARNING)

from great_expectations.checkpoint import Checkpoint, UpdateDataDocsAction
from great_expectations.core import ExpectationValidationResult, ValidationDefinition
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context import AbstractDataContext, FileDataContext, get_context
from great_expectations.data_context.store import ValidationResultsStore
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.exceptions import DataContextError
from great_expectations.render import RenderedContent
from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView

__all__ = [
    "AbstractDataContext",
    "Checkpoint",
    "DataContextError",
    "DefaultJinjaIndexPageView",
    "DefaultJinjaPageView",
    "DefaultSiteIndexBuilder",
    "ExpectationSuiteIdentifier",
    "ExpectationValidationResult",
    "FileDataContext",
    "RenderedContent",
    "RunIdentifier",
    "UpdateDataDocsAction",
    "ValidationDefinition",
    "ValidationResultIdentifier",
    "ValidationResultsStore",
    "get_context",
]
