"""GX's validation results store, keeping an excerpt of the values a result reports.

``great_expectations.yml`` names this store. GX keeps every run's result in this machine's
working folder; a drop with megabyte-long values made each of those files tens of MB.
Strings are cut as in the quarantined ``validation_result.json`` (``excerpts``); lists keep
their length, so GX reads the stored result back into its own schema.

The class keeps GX's name: GX recognises a project's results store by its class name and
would otherwise replace it with an in-memory one.
"""

from __future__ import annotations

from typing import Any

from churnloop.validation import gx_imports
from churnloop.validation.excerpts import capped


class ValidationResultsStore(gx_imports.ValidationResultsStore):
    """GX's results store, with each string of a result cut short."""

    def serialize(self, value: Any) -> Any:
        if self.cloud_mode:
            return super().serialize(value)
        return self._expectationSuiteValidationResultSchema.dumps(
            capped(value.to_json_dict(), lists=False), indent=2, sort_keys=True
        )
