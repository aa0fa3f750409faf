"""Windowed features compared at the same history depth, so a young lake does not drift.

While the lake holds fewer days than a window, every 30- and 90-day sum grows by a day's
worth each day, and a reference from last week "drifts" by construction. Drift therefore
compares each windowed sum per observed day, and both sides' ``days_observed`` and
``days_since_last_*`` as they would read with only the reference's history depth.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from churnloop.features.definition import ACTIVITY, NOT_WITHIN_LOOKBACK, RECENCY, WINDOWS
from churnloop.schema import TIMESTAMP

PER_DAY_SUFFIX = "_per_observed_day"
"""Appended to a windowed sum's name once it is divided by its window's observed days."""


def history_depth(frame: pd.DataFrame, first_day: dt.date) -> np.ndarray:
    """Days of lake history each row's features could see: its day and those before it."""
    return (_days(frame) - pd.Timestamp(first_day)).dt.days.to_numpy() + 1


def history_days(frame: pd.DataFrame) -> list[dt.date]:
    """The first day of ``frame``'s rows, as a list (empty for no rows)."""
    return [_days(frame).min().date()] if len(frame) else []


def _days(frame: pd.DataFrame) -> pd.Series:
    return frame[TIMESTAMP].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()


def at_reference_depth(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], first_day: dt.date
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], str]:
    """Both samples as drift should compare them, the renamed column list, and a note.

    The reference's depth is its youngest row's (``first_day`` is the lake's first
    snapshot day); windows no shorter than it are clipped on both sides.
    """
    depth = int(history_depth(reference, first_day).min())
    renamed = {
        sum_column: f"{sum_column}{PER_DAY_SUFFIX}"
        for sum_column in _windowed_sums()
        if sum_column in columns
    }
    frames = [_equalised(frame, renamed, depth) for frame in (reference, current)]
    note = (
        f"windowed sums compared per observed day; history depth of the reference "
        f"{depth} day(s), current {int(history_depth(current, first_day).min())}"
    )
    return frames[0], frames[1], [renamed.get(column, column) for column in columns], note


def _equalised(frame: pd.DataFrame, renamed: dict[str, str], depth: int) -> pd.DataFrame:
    """``frame`` with sums per observed day and history cut to ``depth`` days."""
    frame = frame.copy()
    for sum_column, name in renamed.items():
        window = sum_column.rsplit("_", 1)[1]
        observed = frame[f"days_observed_{window}"].clip(lower=1)
        frame[name] = frame.pop(sum_column) / observed
    for window in WINDOWS:
        column = f"days_observed_{window}d"
        if column in frame.columns and depth < window:
            frame[column] = frame[column].clip(upper=depth)
    for column in RECENCY:
        if column in frame.columns:
            frame[column] = frame[column].where(frame[column] < depth, NOT_WITHIN_LOOKBACK)
    return frame


def _windowed_sums() -> list[str]:
    return [f"{column}_{window}d" for column in ACTIVITY for window in WINDOWS]
