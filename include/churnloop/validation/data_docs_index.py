"""GX's Data Docs index, listing every failed validation besides the newest ones.

GX's index lists only the newest ``validation_results_limit`` validations (it reads each one
it lists, on every validation), so an older quarantined day, the page on-call needs, drops
off it. `SiteIndexBuilder` (named in ``great_expectations.yml``) lists the newest ones and
every failed one. Whether a validation passed is read from its result once, then kept as an
empty marker file in the build's `OUTCOMES_DIR`: an index build reads at most one result
more than GX's own, whatever the number of results.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

from churnloop.validation.gx_imports import DefaultSiteIndexBuilder, ValidationResultIdentifier

OUTCOMES_DIR = ".outcomes"
"""Folder of the build holding one ``<key digest>.passed`` or ``.failed`` file per result."""
PASSED, FAILED = "passed", "failed"

logger = logging.getLogger(__name__)


class SiteIndexBuilder(DefaultSiteIndexBuilder):
    """GX's index builder; its ``validation_results_limit`` spares failed validations."""

    newest_listed: int | None = None

    @property
    def validation_results_limit(self) -> None:
        """Unset for GX's own code, which would cut the list `listed` returns."""
        return None

    @validation_results_limit.setter
    def validation_results_limit(self, limit: int | None) -> None:
        self.newest_listed = limit

    def _add_validations_to_index_links(
        self, index_links_dict: dict, validation_and_profiling_result_site_keys: list
    ) -> None:
        listed = self.listed(validation_and_profiling_result_site_keys)
        super()._add_validations_to_index_links(index_links_dict, listed)

    def listed(
        self, keys: Iterable[ValidationResultIdentifier]
    ) -> list[ValidationResultIdentifier]:
        """The newest ``newest_listed`` of ``keys`` (all without a limit), then the older
        ones that failed, newest first."""
        newest_first = sorted(keys, key=lambda key: key.run_id.run_time, reverse=True)
        if not self.newest_listed:
            return newest_first
        older = newest_first[self.newest_listed :]
        return newest_first[: self.newest_listed] + self._failed(older)

    def _failed(self, keys: list[ValidationResultIdentifier]) -> list[ValidationResultIdentifier]:
        folder = Path(self.target_store.store_backends["index_page"].full_base_directory)
        folder = folder / OUTCOMES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        known = {path.name for path in folder.iterdir()}
        failed = []
        for key in keys:
            name = _digest(key)
            if f"{name}.{PASSED}" in known:
                continue
            if f"{name}.{FAILED}" in known or self._outcome(key, folder / name) == FAILED:
                failed.append(key)
        return failed

    def _outcome(self, key: ValidationResultIdentifier, marker: Path) -> str | None:
        """Read once from the result, then kept as ``marker`` with the outcome as suffix.

        None when the result is gone or unreadable: GX's own index leaves such a result out
        with a warning, and a broken old result must not fail today's validation.
        """
        store = self.data_context.stores[self.source_stores["validations"]]
        try:
            result = store.get(key)
        except Exception:
            logger.warning("validation result %s could not be read: not listed", key.to_tuple())
            return None
        if result is None:
            return None
        outcome = PASSED if result.success else FAILED
        marker.with_name(f"{marker.name}.{outcome}").touch()
        return outcome


def _digest(key: ValidationResultIdentifier) -> str:
    """A file name for ``key`` (suite, run name, run time, batch id), however long they are."""
    return hashlib.sha256("/".join(key.to_tuple()).encode()).hexdigest()[:32]
