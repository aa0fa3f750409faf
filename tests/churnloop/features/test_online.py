import asyncio

import pandas as pd

from churnloop.features.definition import FEATURE_SERVICE
from churnloop.features.feast_config import feature_names, feature_store
from churnloop.features.materialize import materialize_day
from churnloop.features.online import FOUND, OnlineFeatureReader
from churnloop.schema import ENTITY, TIMESTAMP
from tests.churnloop.features_support import D1, D2


def test_online_features_equal_offline_and_unknown_customers_are_flagged(two_days):
    settings = two_days
    materialize_day(settings, D1)
    materialize_day(settings, D2)
    names = feature_names(settings)
    at_d2 = pd.DataFrame(
        {ENTITY: [1, 2, 3], TIMESTAMP: pd.Timestamp(D2, tz="UTC") + pd.Timedelta(hours=1)}
    )
    feast_store = feature_store(settings)
    service = feast_store.get_feature_service(FEATURE_SERVICE)
    offline = feast_store.get_historical_features(entity_df=at_d2, features=service).to_df()
    offline = offline.set_index(ENTITY).sort_index()[names]

    reader = OnlineFeatureReader(settings)
    online = reader.read([3, 999, 1, 2, 1])
    assert online[ENTITY].tolist() == [3, 999, 1, 2, 1]
    assert online[FOUND].tolist() == [True, False, True, True, True]
    unknown = online.set_index(ENTITY).loc[999, names]
    assert unknown.isna().all()
    known = online[online[FOUND]].drop_duplicates(ENTITY).set_index(ENTITY)
    pd.testing.assert_frame_equal(
        known.sort_index()[names], offline, check_dtype=False, check_exact=False
    )
    assert list(reader.read([]).columns) == [ENTITY, FOUND, *names]


def test_the_servers_rows_hold_the_values_of_the_dataframe_read(two_days):
    settings = two_days
    materialize_day(settings, D2)
    reader = OnlineFeatureReader(settings)
    assert reader.direct is not None, "the server reads the embedded SQLite store directly"
    asked = [3, 999, 1]
    rows = asyncio.run(reader.rows(asked))
    assert rows[1] is None
    frame = reader.read(asked).set_index(ENTITY)
    for customer, row in zip(asked, rows, strict=True):
        if row is not None:
            assert list(row) == reader.names
            assert row == frame.loc[customer, reader.names].to_dict(), customer
