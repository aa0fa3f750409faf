"""Scored rows against the data contract, per model feature: how many values are missing,
below or above the bounds the snapshot suite states, or categories the model never saw.

One counting, two callers: the model server counts each batch it scores
(`ServingMetrics.record_inputs`), and the daily report counts a day's prediction log
(`churnloop.monitoring.serving_inputs`). The rules come from where they are stated once:

- numeric bounds: the committed Great Expectations snapshot suite
  (``great_expectations/expectations/customer_snapshots.json``, its
  ``expect_column_values_to_be_between``), read as JSON (no GX import), for the features
  that are snapshot columns taken as they are; every numeric feature must also be finite
  (``schema.FINITE_MAX``, as the suites state it), the only bound of derived features;
- categories: the ones the model's ``OrdinalEncoder`` was fitted on (``FeatureColumn.codes``);
  anything else is ``unseen_category``, whether or not the contract lists it.
"""

from __future__ import annotations

import functools
import json
import logging
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churnloop import schema
from churnloop.errors import DataError

if TYPE_CHECKING:
    from churnloop.serving.model import FeatureColumn, ServedModel

log = logging.getLogger(__name__)

MISSING = "missing"
UNSEEN_CATEGORY = "unseen_category"
BELOW_MIN = "below_min"
ABOVE_MAX = "above_max"
REASONS = (MISSING, UNSEEN_CATEGORY, BELOW_MIN, ABOVE_MAX)

SNAPSHOT_SUITE = Path("expectations") / f"{schema.SNAPSHOTS}.json"
"""The suite stating the snapshot columns' value rules, under the GX folder."""
_BETWEEN = "expect_column_values_to_be_between"

_NOTHING = object()
"""Pads the fitted categories: equal to no value."""

Counts = dict[tuple[str, str], int]
"""Values out of contract by (feature, reason); only reasons that occurred are keys."""


@dataclass(frozen=True)
class Bounds:
    """The values a numeric feature may take; by default any finite number."""

    low: float = -schema.FINITE_MAX
    high: float = schema.FINITE_MAX
    strict_low: bool = False
    strict_high: bool = False


@functools.cache
def suite_bounds(great_expectations_dir: Path) -> dict[str, Bounds]:
    """The numeric bounds of the snapshot suite, by column (read once per folder).

    A bound given as a ``$PARAMETER`` (the day's timestamps) is not a column's value rule
    and is left out. Without the suite file (a server deployed without the GX folder) the
    features are held to being finite only, and a warning says so.
    """
    path = great_expectations_dir / SNAPSHOT_SUITE
    try:
        suite = json.loads(path.read_text())
    except FileNotFoundError:
        log.warning("no snapshot suite at %s: inputs are checked for finiteness only", path)
        return {}
    bounds: dict[str, Bounds] = {}
    for expectation in suite["expectations"]:
        kwargs = expectation["kwargs"]
        if expectation["type"] != _BETWEEN or kwargs["column"] not in schema.NUMERIC:
            continue
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        bounds[kwargs["column"]] = Bounds(
            low=float(low) if isinstance(low, int | float) else Bounds.low,
            high=float(high) if isinstance(high, int | float) else Bounds.high,
            strict_low=bool(kwargs.get("strict_min", False)),
            strict_high=bool(kwargs.get("strict_max", False)),
        )
    return bounds


class InputContract:
    """The contract of one model's inputs, and the counting of rows against it.

    Vectorised over a batch: numbers as a matrix against per-feature bound vectors,
    categories as an object matrix against the fitted ones (padded with a value that
    equals nothing). A strict bound is the next float inwards, so each side is one
    comparison.
    """

    def __init__(self, columns: Sequence[FeatureColumn], bounds: Mapping[str, Bounds]) -> None:
        numeric = [(p, c) for p, c in enumerate(columns) if not c.categorical]
        self.numeric_positions = np.array([position for position, _ in numeric], dtype=np.intp)
        self.numeric_names = tuple(column.name for _, column in numeric)
        rules = [bounds.get(name, Bounds()) for name in self.numeric_names]
        low = np.array([rule.low for rule in rules])
        high = np.array([rule.high for rule in rules])
        strict_low = np.array([rule.strict_low for rule in rules], dtype=bool)
        strict_high = np.array([rule.strict_high for rule in rules], dtype=bool)
        self._lowest = np.where(strict_low, np.nextafter(low, np.inf), low)
        self._highest = np.where(strict_high, np.nextafter(high, -np.inf), high)
        self.categories = {
            column.name: [value for value in column.codes if value is not None]
            for column in columns
            if column.codes is not None
        }
        width = max((len(fitted) for fitted in self.categories.values()), default=0)
        self._fitted = np.full((len(self.categories), width), _NOTHING, dtype=object)
        for index, fitted in enumerate(self.categories.values()):
            self._fitted[index, : len(fitted)] = fitted

    def count_encoded(self, matrix: np.ndarray, rows: Sequence[Mapping[str, Any]]) -> Counts:
        """Counts of the server's batch: ``matrix`` is ``ServedModel.encode(rows)``."""
        names = tuple(self.categories)
        categorical = np.array([[row[name] for name in names] for row in rows], dtype=object)
        return self._count(matrix[:, self.numeric_positions], categorical)

    def count_frame(self, frame: pd.DataFrame) -> Counts:
        """Counts of logged rows (a column per feature, as the prediction log holds them)."""
        absent = [name for name in (*self.numeric_names, *self.categories) if name not in frame]
        if absent:
            raise DataError(f"the rows lack the model's feature column(s) {absent}")
        try:
            numeric = frame[list(self.numeric_names)].to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError) as error:
            raise DataError(f"a numeric feature column holds text: {error}") from error
        categorical = frame[list(self.categories)].astype(object)
        return self._count(numeric, categorical.where(categorical.notna(), None).to_numpy())

    def _count(self, numeric: np.ndarray, categorical: np.ndarray) -> Counts:
        """The one counting: ``numeric`` a row per value (NaN: missing), ``categorical``
        likewise with objects (None: missing). A batch within the contract, the usual
        case, costs a few array operations; only one outside it is broken down."""
        within = (numeric >= self._lowest) & (numeric <= self._highest)
        fitted = (categorical[:, :, np.newaxis] == self._fitted).any(axis=2)
        if within.all() and fitted.all():
            return {}
        missing = np.equal(categorical, None)
        counts: Counts = {}
        for names, reason, hits in (
            (self.numeric_names, MISSING, np.isnan(numeric)),
            (self.numeric_names, BELOW_MIN, numeric < self._lowest),
            (self.numeric_names, ABOVE_MAX, numeric > self._highest),
            (tuple(self.categories), MISSING, missing),
            (tuple(self.categories), UNSEEN_CATEGORY, ~missing & ~fitted),
        ):
            totals = np.count_nonzero(hits, axis=0)
            for index in np.flatnonzero(totals):
                counts[names[index], reason] = int(totals[index])
        return counts


def nonfinite_count(scores: np.ndarray) -> int:
    """Scores that are NaN or infinite: no probability, whatever the label says."""
    return int(np.size(scores) - np.count_nonzero(np.isfinite(scores)))


_CONTRACTS: weakref.WeakKeyDictionary[ServedModel, InputContract] = weakref.WeakKeyDictionary()


def input_contract(model: ServedModel, great_expectations_dir: Path) -> InputContract:
    """``model``'s contract, built on first use and kept as long as the model is."""
    contract = _CONTRACTS.get(model)
    if contract is None:
        contract = InputContract(model.columns, suite_bounds(great_expectations_dir))
        _CONTRACTS[model] = contract
    return contract


def as_nested(counts: Counts) -> dict[str, dict[str, int]]:
    """``{feature: {reason: count}}``, features and reasons sorted: for a JSON report."""
    nested: dict[str, dict[str, int]] = {}
    for (feature, reason), count in sorted(counts.items()):
        nested.setdefault(feature, {})[reason] = count
    return nested
