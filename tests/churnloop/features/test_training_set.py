import datetime as dt

import pandas as pd
import pytest

from churnloop.errors import DataError
from churnloop.features.feast_config import feature_names
from churnloop.features.training_set import training_set
from churnloop.schema import ENTITY, LABEL, TIMESTAMP
from tests.churnloop.features_support import D1, D2, write_labels


def test_training_set_is_point_in_time_and_labels_never_reach_features(two_days):
    settings = two_days
    write_labels(settings, D1, {1: 1, 2: 0})
    write_labels(settings, D2, {1: 0, 3: 1})
    rows = training_set(settings, D1, D2).to_pandas()
    assert list(rows.columns) == [ENTITY, TIMESTAMP, *feature_names(settings), LABEL]
    assert len(rows) == 4
    pd.testing.assert_frame_equal(rows, rows.sort_values([TIMESTAMP, ENTITY], ignore_index=True))
    by_key = rows.set_index([ENTITY, rows[TIMESTAMP].dt.date])
    # Customer 1 changed on D2: its D1 row keeps the D1 values.
    assert (by_key.loc[(1, D1), "plan"], by_key.loc[(1, D1), "logins_7d"]) == ("basic", 1)
    assert (by_key.loc[(1, D2), "plan"], by_key.loc[(1, D2), "logins_7d"]) == ("premium", 51)
    assert by_key[LABEL].to_dict() == {(1, D1): 1, (2, D1): 0, (1, D2): 0, (3, D2): 1}

    write_labels(settings, D1, {1: 0, 2: 1})
    write_labels(settings, D2, {1: 1, 3: 0})
    flipped = training_set(settings, D1, D2).to_pandas()
    pd.testing.assert_frame_equal(flipped.drop(columns=LABEL), rows.drop(columns=LABEL))
    assert (flipped[LABEL] != rows[LABEL]).all()


def test_labels_without_features_are_reported_not_dropped(two_days):
    settings = two_days
    before = D1 - dt.timedelta(days=1)
    write_labels(settings, D1, {1: 0, 2: 0, 4: 1})  # 4 never had features
    write_labels(settings, before, {1: 1})  # 1's features start after this snapshot
    with pytest.raises(DataError) as failure:
        training_set(settings, before, D1)
    message = str(failure.value)
    assert "2 of 4 labelled snapshots have no feature row" in message
    assert f"{before}: 1, {D1}: 1; e.g. customers [1, 4]" in message
