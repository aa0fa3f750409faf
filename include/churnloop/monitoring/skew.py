"""Row-level training/serving skew of one day: the features the model server scored from
the online store, compared value by value with the lake's feature row of the same
customer, which is what training reads.

Only rows scored by ``customer_id`` are compared: a row scored from a request's own
``features`` (no ``customer_id`` in the log) may differ from the lake by design, and is
only counted. The online store holds a day's features once `customer_data` has built
them, after the day ends, so the rows logged on ``day`` were served from ``day``'s
partition or from the day before's: each is compared with both and judged against the
one it matches best (``matched_by_feature_day`` says how many each). A logged row whose
customer is in neither is counted in ``rows_without_lake_row``, never silently dropped.

A column fails when its mismatch rate is above ``settings.skew_max_mismatch_rate`` with
confidence (the lower bound of its Wilson interval); below ``settings.skew_min_rows``
matched rows there is no verdict, only ``insufficient_data``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from churnloop import storage
from churnloop.features import definition
from churnloop.schema import ENTITY
from churnloop.serving.prediction_log import read_predictions
from churnloop.settings import Settings

SERVED_FEATURE_DAYS = 2
"""Feature partitions a day's requests may have been served from: the day's and the one before."""


def training_serving_skew(
    settings: Settings, day: dt.date, predictions: pd.DataFrame | None = None
) -> dict[str, Any]:
    """Per feature column, the share of ``day``'s online-scored rows whose served value
    differs from the lake's (``predictions``: the day's log, if already read); JSON-safe."""
    if predictions is None:
        predictions = _logged_rows(settings, day)
    by_id = predictions[predictions[ENTITY].notna()]
    columns = [name for name in definition.FEATURE_SCHEMA.names if name in predictions]
    lake = storage.lake(settings)
    stored = set(lake.partitions(definition.DATASET))
    candidates = [day - dt.timedelta(days=back) for back in range(SERVED_FEATURE_DAYS)]
    days = [candidate for candidate in candidates if candidate in stored]
    partitions = [lake.read_table(definition.DATASET, d).to_pandas() for d in days]
    chosen, mismatch = best_matches(by_id, partitions, columns, settings.skew_numeric_tolerance)
    matched = chosen >= 0
    rows_matched = int(matched.sum())
    rates = {
        column: mismatch_rate(int(count), rows_matched, settings.skew_confidence)
        for column, count in zip(columns, mismatch[matched].sum(axis=0), strict=True)
    }
    failed, insufficient, reason = skew_verdict(rates, rows_matched, settings)
    return {
        "day": day.isoformat(),
        "log_rows": len(predictions),
        "explicit_feature_rows": len(predictions) - len(by_id),
        "rows_matched": rows_matched,
        "rows_without_lake_row": len(by_id) - rows_matched,
        "matched_by_feature_day": {
            d.isoformat(): int((chosen == i).sum()) for i, d in enumerate(days)
        },
        "columns": rates,
        "max_mismatch_rate": settings.skew_max_mismatch_rate,
        "confidence": settings.skew_confidence,
        "failed": failed,
        "insufficient_data": insufficient,
        "reason": reason,
    }


def _logged_rows(settings: Settings, day: dt.date) -> pd.DataFrame:
    try:
        return read_predictions(settings, day)
    except storage.PartitionNotFound:
        return pd.DataFrame({ENTITY: pd.Series(dtype="Int64")})


def best_matches(
    served: pd.DataFrame, partitions: Sequence[pd.DataFrame], columns: list[str], tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per served row, the index of the partition whose row of that customer differs in
    the fewest ``columns`` (the earlier on a tie; -1 when none has the customer), and which
    columns differ from that row."""
    rows, width = len(served), len(columns)
    chosen = np.full(rows, -1)
    fewest = np.full(rows, width + 1)
    differs = np.zeros((rows, width), dtype=bool)
    customers = served[ENTITY].to_numpy(dtype=np.int64)
    for index, partition in enumerate(partitions):
        positions = pd.Index(partition[ENTITY]).get_indexer(customers)
        found = np.flatnonzero(positions >= 0)
        mismatch = np.zeros((rows, width), dtype=bool)
        for position, column in enumerate(columns):
            mismatch[found, position] = values_differ(
                served[column].iloc[found], partition[column].iloc[positions[found]], tolerance
            )
        total = np.full(rows, width + 1)
        total[found] = mismatch[found].sum(axis=1)
        better = total < fewest
        chosen[better], fewest[better], differs[better] = index, total[better], mismatch[better]
    return chosen, differs


def values_differ(served: pd.Series, lake: pd.Series, tolerance: float) -> np.ndarray:
    """Where a served value is not the lake's: numbers beyond ``tolerance`` (relative and
    absolute; missing equals missing), anything else when not equal."""
    if pd.api.types.is_numeric_dtype(lake.dtype):
        given = pd.to_numeric(served, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        expected = lake.to_numpy(dtype=float, na_value=np.nan)
        return ~np.isclose(given, expected, rtol=tolerance, atol=tolerance, equal_nan=True)
    return _objects(served) != _objects(lake)


def _objects(values: pd.Series) -> np.ndarray:
    """Values as Python objects, every kind of missing as None (None equals None)."""
    return values.astype(object).where(values.notna(), None).to_numpy()


def mismatch_rate(mismatches: int, rows: int, confidence: float) -> dict[str, Any]:
    """A column's mismatches over ``rows``, with the rate's Wilson interval (None: no rows)."""
    if rows == 0:
        return {"mismatches": mismatches, "rate": None, "low": None, "high": None}
    interval = binomtest(mismatches, rows).proportion_ci(confidence, method="wilson")
    return {
        "mismatches": mismatches,
        "rate": mismatches / rows,
        "low": float(interval.low),
        "high": float(interval.high),
    }


def skew_verdict(
    rates: dict[str, dict[str, Any]], rows_matched: int, settings: Settings
) -> tuple[bool, bool, str]:
    """``(failed, insufficient_data, reason)``; the reason names every failing column."""
    if rows_matched < settings.skew_min_rows:
        return (
            False,
            True,
            f"{rows_matched} served row(s) matched a lake row, fewer than skew_min_rows="
            f"{settings.skew_min_rows}: no verdict",
        )
    limit = settings.skew_max_mismatch_rate
    failing = [column for column, rate in rates.items() if rate["low"] > limit]
    if not failing:
        return False, False, f"no column's mismatch rate is above {limit:.2%} ({rows_matched} rows)"
    shown = ", ".join(
        f"{column} {rates[column]['rate']:.2%} [{rates[column]['low']:.2%}, "
        f"{rates[column]['high']:.2%}]"
        for column in failing
    )
    return (
        True,
        False,
        f"training/serving skew: served values differ from the lake's above {limit:.2%} "
        f"in {len(failing)} column(s) ({rows_matched} rows): {shown}",
    )
