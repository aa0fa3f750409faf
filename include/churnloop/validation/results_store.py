"""GX's validation results store, keeping an excerpt of the values a result reports.

Strings are cut as in the quarantined ``validation_result.json`` (``excerpts``), so a drop of
megabyte-long values does not make tens of MB per run. The class keeps GX's name: GX
recognises a project's results store by its class name.
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
