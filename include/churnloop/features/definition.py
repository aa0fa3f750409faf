"""The feature definition: from validated daily snapshots to the churn model's inputs.

One definition serves training and serving: a day's partition built from it is Feast's
offline source and what is materialized online. ``FEATURE_SCHEMA`` names and types the
columns; no feature is ever NaN or infinite, and each day's build stands alone.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from churnloop.errors import DataError, enumerated
from churnloop.schema import ENTITY, SNAPSHOT_SCHEMA, SNAPSHOTS, TIMESTAMP
from churnloop.storage import partition_name

DATASET = "features/customer_features"
"""Lake dataset of the daily feature partitions: Feast's offline source."""
FEATURE_VIEW = "customer_features"
FEATURE_SERVICE = "churn_model_v1"
"""The features a model version is trained on; bump the version when ``FEATURE_SCHEMA`` changes."""

WINDOWS = (7, 30, 90)
"""Trailing windows in days, today included. Changing them changes the feature names."""
LOOKBACK_DAYS = max(WINDOWS)

ACTIVITY = ("logins", "spend", "session_minutes", "support_tickets", "payment_failures")
"""Daily activity columns summed over the windows."""
HISTORY_COLUMNS = [ENTITY, TIMESTAMP, *ACTIVITY]
"""The only snapshot columns read from days before the feature day."""

CURRENT = (
    "plan",
    "region",
    "contract",
    "age",
    "tenure_months",
    "monthly_charges",
    "days_since_last_login",
)
"""Attributes taken as they are from the day's snapshot."""

TENURE_BUCKET_EDGES = (6, 12, 24, 48)
"""``tenure_bucket`` is 0 below 6 months, 1 for 6-11, 2 for 12-23, 3 for 24-47, 4 beyond."""

NOT_WITHIN_LOOKBACK = LOOKBACK_DAYS + 1
"""``days_since_last_*`` when the event did not happen within the lookback."""

_SNAPSHOT_TYPES = {field.name: field.type for field in SNAPSHOT_SCHEMA}
_EXAMPLES = 5
"""Customers and days an error about unusable values names."""


def _sum_type(column: str) -> pa.DataType:
    return pa.int64() if pa.types.is_integer(_SNAPSHOT_TYPES[column]) else pa.float64()


FEATURE_SCHEMA = pa.schema(
    [pa.field(name, _SNAPSHOT_TYPES[name]) for name in CURRENT]
    + [pa.field("tenure_bucket", pa.int32())]
    + [
        pa.field(f"{column}_{window}d", _sum_type(column))
        for column in ACTIVITY
        for window in WINDOWS
    ]
    + [pa.field(f"days_observed_{window}d", pa.int32()) for window in WINDOWS]
    + [
        pa.field("spend_per_login_30d", pa.float64()),
        pa.field("minutes_per_login_30d", pa.float64()),
        pa.field("support_tickets_per_30d", pa.float64()),
        pa.field("payment_failures_per_30d", pa.float64()),
        pa.field("logins_per_day_trend", pa.float64()),
        pa.field("spend_per_day_trend", pa.float64()),
        pa.field("days_since_last_ticket", pa.int32()),
        pa.field("days_since_last_payment_failure", pa.int32()),
    ]
)
"""The model's input columns, in order, with their types (also the Feast field schema)."""

TABLE_SCHEMA = pa.schema(
    [SNAPSHOT_SCHEMA.field(ENTITY), SNAPSHOT_SCHEMA.field(TIMESTAMP), *FEATURE_SCHEMA]
)
"""A feature partition: entity, the snapshot's event timestamp, then the features."""

RECENCY = {
    "days_since_last_ticket": "support_tickets",
    "days_since_last_payment_failure": "payment_failures",
}
"""Each ``days_since_last_*`` feature and the activity column whose last event it counts."""

WINDOW_OF = {
    **{f"{column}_{window}d": window for column in ACTIVITY for window in WINDOWS},
    **{f"days_observed_{window}d": window for window in WINDOWS},
    "spend_per_login_30d": 30,
    "minutes_per_login_30d": 30,
    "support_tickets_per_30d": LOOKBACK_DAYS,
    "payment_failures_per_30d": LOOKBACK_DAYS,
    "logins_per_day_trend": 30,
    "spend_per_day_trend": 30,
    **dict.fromkeys(RECENCY, LOOKBACK_DAYS),
}
"""The longest trailing window each history feature reads; features not named read the
day's snapshot only. Two samples compare fairly on a feature only when both saw its window."""


def lookback_days(day: dt.date) -> list[dt.date]:
    """The snapshot days a feature day reads, oldest first, the day itself last."""
    return [day - dt.timedelta(days=offset) for offset in range(LOOKBACK_DAYS - 1, -1, -1)]


def _days_before(timestamps: pd.Series, day: dt.date) -> np.ndarray:
    """Whole days from each timestamp's UTC date to ``day`` (0 for ``day`` itself)."""
    dates = timestamps.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    return (pd.Timestamp(day) - dates).dt.days.to_numpy()


class RollingWindows:
    """Running window sums for one day's customers, fed history one chunk at a time.

    Memory is one row per customer of the day; each day is computed from the snapshots,
    not from the day before, so every day's build stands alone (backfills, corrections).

    ``add`` accepts any rows with the ``HISTORY_COLUMNS``: rows of other customers, of
    days outside the lookback or after the feature day are ignored, so a caller may
    pass whole partitions. Each (customer, day) must be added once: a chunk with a
    duplicate raises, and callers add each day's partition once.
    """

    def __init__(self, day: dt.date, customers: pd.Series) -> None:
        self.day = day
        self._index = pd.Index(customers.to_numpy())
        size = len(self._index)
        self.sums = {(column, window): np.zeros(size) for column in ACTIVITY for window in WINDOWS}
        self.days_observed = {window: np.zeros(size, dtype=np.int64) for window in WINDOWS}
        self.days_since = {name: np.full(size, NOT_WITHIN_LOOKBACK) for name in RECENCY}

    def add(self, history: pd.DataFrame) -> None:
        age = _days_before(history[TIMESTAMP], self.day)
        position = self._index.get_indexer(history[ENTITY].to_numpy())
        keep = (position >= 0) & (age >= 0) & (age < LOOKBACK_DAYS)
        require_values(history[keep], ACTIVITY, self.day)
        position, age = position[keep], age[keep]
        if pd.MultiIndex.from_arrays([position, age]).has_duplicates:
            raise DataError(
                f"snapshot history for features of {self.day} has more than one row for a "
                "customer on the same day; validated snapshots must be unique per day"
            )
        size = len(self._index)
        values = {column: history[column].to_numpy(dtype=float)[keep] for column in ACTIVITY}
        for window in WINDOWS:
            inside = age < window
            at = position[inside]
            self.days_observed[window] += np.bincount(at, minlength=size)
            for column in ACTIVITY:
                weights = values[column][inside]
                self.sums[column, window] += np.bincount(at, weights=weights, minlength=size)
        for name, column in RECENCY.items():
            happened = history[column].to_numpy()[keep] > 0
            latest = np.full(size, NOT_WITHIN_LOOKBACK)
            np.minimum.at(latest, position[happened], age[happened])
            self.days_since[name] = np.minimum(self.days_since[name], latest)


def assemble(today: pd.DataFrame, windows: RollingWindows) -> pd.DataFrame:
    """The feature rows of ``today``'s customers, once ``windows`` has seen all history.

    Rates and trends divide by ``days_observed`` (at least 1: today is in every window), so
    a gap in the data does not read as a drop in activity; per-login ratios divide by
    ``max(logins, 1)``.
    """
    frame = today[[ENTITY, TIMESTAMP, *CURRENT]].reset_index(drop=True)
    tenure = frame["tenure_months"].to_numpy()
    frame["tenure_bucket"] = np.searchsorted(TENURE_BUCKET_EDGES, tenure, side="right")
    for (column, window), values in windows.sums.items():
        frame[f"{column}_{window}d"] = values
    for window, values in windows.days_observed.items():
        frame[f"days_observed_{window}d"] = values
    logins_30d = np.maximum(frame["logins_30d"], 1)
    frame["spend_per_login_30d"] = frame["spend_30d"] / logins_30d
    frame["minutes_per_login_30d"] = frame["session_minutes_30d"] / logins_30d
    per_30_days = 30 / frame[f"days_observed_{LOOKBACK_DAYS}d"]
    frame["support_tickets_per_30d"] = frame[f"support_tickets_{LOOKBACK_DAYS}d"] * per_30_days
    frame["payment_failures_per_30d"] = frame[f"payment_failures_{LOOKBACK_DAYS}d"] * per_30_days
    for column in ("logins", "spend"):
        recent = frame[f"{column}_7d"] / frame["days_observed_7d"]
        frame[f"{column}_per_day_trend"] = (
            recent - frame[f"{column}_30d"] / frame["days_observed_30d"]
        )
    for name, values in windows.days_since.items():
        frame[name] = values
    dtypes = {
        field.name: field.type.to_pandas_dtype()
        for field in FEATURE_SCHEMA
        if not pa.types.is_string(field.type)
    }
    return frame[TABLE_SCHEMA.names].astype(dtypes)


def snapshot_of_day(history: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The rows of ``history`` whose snapshot day is ``day``; raises if there are none."""
    today = history[_days_before(history[TIMESTAMP], day) == 0]
    if today.empty:
        raise DataError(f"no snapshot rows for {day}: cannot build that day's features")
    require_values(today, CURRENT, day)
    duplicated = today[ENTITY].duplicated()
    if duplicated.any():
        examples = today.loc[duplicated, ENTITY].head(5).tolist()
        raise DataError(f"snapshot of {day} has duplicate {ENTITY}s, e.g. {examples}")
    return today


def require_values(rows: pd.DataFrame, columns: tuple[str, ...], day: dt.date) -> None:
    """Raise a DataError if ``columns`` of ``rows`` hold a null, or a number that is NaN or
    infinite: no feature of ``day`` can be computed from it.

    The snapshot suite refuses such rows first; this names them when a partition got past
    it (validated under an older suite, copied in by hand), instead of a cast error deep
    in pandas, or NaN and inf in the features.
    """
    for column in columns:
        values = rows[column]
        if pd.api.types.is_numeric_dtype(values):
            unusable = ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        else:
            unusable = values.isna().to_numpy()
        if unusable.any():
            raise _unusable(rows[unusable], column, day)


def _unusable(bad: pd.DataFrame, column: str, day: dt.date) -> DataError:
    days = sorted(set(bad[TIMESTAMP].dt.tz_convert("UTC").dt.date))
    partitions = enumerated([partition_name(snapshot_day) for snapshot_day in days], _EXAMPLES)
    customers = enumerated([str(customer) for customer in bad[ENTITY]], _EXAMPLES)
    return DataError(
        f"{SNAPSHOTS} {partitions}: {len(bad)} row{'s' if len(bad) > 1 else ''} with a null "
        f"or non-finite {column!r} "
        f"({ENTITY} {customers}); the features of {day} need a finite number or a category "
        "in every row. Correct that data, validate it again, then rebuild the features."
    )


def build_features(snapshots_history: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Feature rows (``TABLE_SCHEMA``) for the customers in ``day``'s snapshot.

    ``snapshots_history`` holds validated snapshot rows of ``day`` and of any earlier
    days (rows outside the lookback are ignored). Each output row carries the
    snapshot's own ``event_timestamp``, so a label joins its features exactly.
    """
    today = snapshot_of_day(snapshots_history, day)
    windows = RollingWindows(day, today[ENTITY])
    windows.add(snapshots_history)
    return assemble(today, windows)
