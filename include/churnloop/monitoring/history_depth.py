"""Which features a drift check may judge, given how much history its reference saw.

While the lake holds fewer days than a window, every 30- and 90-day feature grows day by
day, and a reference from then "drifts" against any later day by construction; a window's
sums cannot be cut back to a shorter history after the fact. So a feature is judged only
when the reference's youngest row saw its whole window (``definition.WINDOW_OF``); the
others are listed as not judged until a champion trained on a deeper lake.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from churnloop.features.definition import WINDOW_OF
from churnloop.schema import TIMESTAMP


def history_depth(frame: pd.DataFrame, first_day: dt.date) -> np.ndarray:
    """Days of lake history each row's features could see: its day and those before it."""
    return (_days(frame) - pd.Timestamp(first_day)).dt.days.to_numpy() + 1


def history_days(frame: pd.DataFrame) -> list[dt.date]:
    """The first day of ``frame``'s rows, as a list (empty for no rows)."""
    return [_days(frame).min().date()] if len(frame) else []


def judged_at_reference_depth(
    reference: pd.DataFrame, columns: list[str], first_day: dt.date
) -> tuple[list[str], str]:
    """The columns to judge, and a note that names those left out and says why.

    ``first_day`` is the lake's first snapshot day; the reference's depth is its youngest row's.
    """
    depth = int(history_depth(reference, first_day).min())
    judged = [column for column in columns if WINDOW_OF.get(column, 0) <= depth]
    unjudged = [column for column in columns if column not in judged]
    if not unjudged:
        return judged, f"history depth of the reference {depth} day(s): every feature judged"
    windows = sorted({WINDOW_OF[column] for column in unjudged})
    note = (
        f"not judged: {len(unjudged)} feature(s) of {', '.join(f'{w}-day' for w in windows)} "
        f"windows, longer than the reference's {depth} day(s) of history "
        f"({', '.join(unjudged)}); judged once a champion is trained on a deeper lake"
    )
    return judged, note


def _days(frame: pd.DataFrame) -> pd.Series:
    return frame[TIMESTAMP].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
