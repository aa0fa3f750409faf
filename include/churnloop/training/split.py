"""The time-based split of a training set: train on earlier snapshot days, judge on the latest.

`split_by_time` returns two frames numbered from 0; `snapshot_days` is each row's UTC day.
"""

from __future__ import annotations

import pandas as pd

from churnloop.errors import DataError
from churnloop.schema import TIMESTAMP
from churnloop.training.metrics import nonempty_column


def split_by_time(df: pd.DataFrame, holdout_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on the earlier snapshot days, hold out the latest ``holdout_days`` days.

    A random split would let the model see the same customers' later days it is judged
    on; holding out the newest days measures what serving faces: the future.
    """
    if holdout_days < 1:
        raise ValueError(f"holdout_days must be at least 1, got {holdout_days}")
    days = snapshot_days(df, "training set")
    first_held_day = days.max() - pd.Timedelta(days=holdout_days - 1)
    held = (days >= first_held_day).to_numpy()
    if held.all():
        raise DataError(
            f"every snapshot of the training set ({days.min().date()} to {days.max().date()}) "
            f"falls in the {holdout_days}-day holdout: widen the training window"
        )
    return _renumbered(df[~held]), _renumbered(df[held])


def snapshot_days(frame: pd.DataFrame, role: str) -> pd.Series:
    """The UTC day of each row's snapshot; naive timestamps are refused, not guessed."""
    timestamps = nonempty_column(frame, role, TIMESTAMP)
    if not isinstance(timestamps.dtype, pd.DatetimeTZDtype):
        raise DataError(
            f"the {role}'s {TIMESTAMP!r} must be timezone-aware (UTC), got {timestamps.dtype}"
        )
    missing = int(timestamps.isna().sum())
    if missing:
        raise DataError(
            f"the {role} has {missing} of {len(timestamps)} rows without {TIMESTAMP!r}: "
            "a snapshot without a time cannot be placed in the window"
        )
    return timestamps.dt.tz_convert("UTC").dt.normalize()


def _renumbered(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (a fresh selection) numbered from 0 in place: ``reset_index`` would copy
    every column again."""
    rows.index = pd.RangeIndex(len(rows))
    return rows
