"""The time-based split: the latest days held out, naive timestamps refused."""

import datetime as dt

import pandas as pd
import pytest

from churnloop.errors import DataError
from churnloop.schema import TIMESTAMP
from churnloop.training.split import split_by_time
from tests.churnloop.training_support import labelled_days

FIRST_DAY = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def frame():
    return labelled_days(FIRST_DAY, days=8, customers=300)


def test_split_holds_out_the_latest_days(frame):
    shuffled = frame.sample(frac=1, random_state=0)
    original_index = shuffled.index.copy()
    train, holdout = split_by_time(shuffled, holdout_days=3)

    assert shuffled.index.equals(original_index)  # the input keeps its own numbering
    for part in (train, holdout):
        assert part.index.equals(pd.RangeIndex(len(part)))
    assert len(train) + len(holdout) == len(frame)
    assert train[TIMESTAMP].max() < holdout[TIMESTAMP].min()
    held_days = sorted(holdout[TIMESTAMP].dt.date.unique())
    assert held_days == [FIRST_DAY + dt.timedelta(days=d) for d in (5, 6, 7)]


def test_split_refuses_a_window_that_is_all_holdout(frame):
    with pytest.raises(DataError, match="falls in the 8-day holdout: widen the training window"):
        split_by_time(frame, holdout_days=8)


def test_split_refuses_naive_timestamps(frame):
    naive = frame.assign(**{TIMESTAMP: frame[TIMESTAMP].dt.tz_localize(None)})

    with pytest.raises(DataError, match="must be timezone-aware"):
        split_by_time(naive, holdout_days=2)


def test_split_refuses_rows_without_a_timestamp(frame):
    broken = frame.copy()
    broken.loc[broken.index[:3], TIMESTAMP] = pd.NaT

    with pytest.raises(DataError, match="has 3 of .* rows without 'event_timestamp'"):
        split_by_time(broken, holdout_days=2)
