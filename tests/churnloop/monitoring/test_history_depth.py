import datetime as dt
import functools

import numpy as np
import pandas as pd
import pytest

from churnloop import schema
from churnloop.demo.simulation import generate_snapshots
from churnloop.features import definition
from churnloop.monitoring.effect_sizes import compute_drift
from churnloop.monitoring.history_depth import PER_DAY_SUFFIX, at_reference_depth, history_depth

FIRST_DAY = dt.date(2026, 3, 1)
CUSTOMERS = 3_000
FEATURES = list(definition.FEATURE_SCHEMA.names)


@functools.cache
def snapshots(days: int) -> pd.DataFrame:
    """The simulator's first ``days`` snapshots (one distribution: no drift scenario)."""
    tables = [
        generate_snapshots(FIRST_DAY + dt.timedelta(days=offset), CUSTOMERS).to_pandas()
        for offset in range(days)
    ]
    return pd.concat(tables, ignore_index=True)


def features_on(offset: int) -> pd.DataFrame:
    return definition.build_features(snapshots(offset + 1), FIRST_DAY + dt.timedelta(days=offset))


def drifted(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> list[str]:
    categorical = [*schema.CATEGORICAL, "tenure_bucket"]
    return compute_drift(
        reference, current, columns, categorical_columns=categorical
    ).drifted_columns


def test_a_young_lake_drifts_by_construction_unless_compared_at_the_same_depth():
    reference, current = features_on(14), features_on(28)

    assert {"logins_30d", "spend_30d"} <= set(drifted(reference, current, FEATURES))
    fair = at_reference_depth(reference, current, FEATURES, FIRST_DAY)
    assert drifted(*fair[:3]) == []
    assert "reference 15 day(s), current 29" in fair[3]


def test_a_real_change_in_activity_still_drifts_at_the_same_depth():
    reference, current = features_on(14), features_on(28)
    busier = current.assign(logins_30d=current["logins_30d"] * 2)

    fair = at_reference_depth(reference, busier, FEATURES, FIRST_DAY)

    assert drifted(*fair[:3]) == [f"logins_30d{PER_DAY_SUFFIX}"]


def test_sums_become_rates_and_history_is_cut_to_the_reference_depth():
    day = FIRST_DAY + dt.timedelta(days=9)
    row = {
        schema.TIMESTAMP: pd.Timestamp(day, tz="UTC"),
        "logins_30d": 20,
        "days_observed_30d": 10,
        "days_observed_7d": 7,
        "days_since_last_ticket": 8,
    }
    reference = pd.DataFrame([row])
    current = pd.DataFrame(
        [
            {
                **row,
                schema.TIMESTAMP: pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=20),
                "days_observed_30d": 30,
                "days_since_last_ticket": 25,
            }
        ]
    )
    columns = ["logins_30d", "days_observed_30d", "days_observed_7d", "days_since_last_ticket"]

    fair_reference, fair_current, names, _ = at_reference_depth(
        reference, current, columns, FIRST_DAY
    )

    assert names[0] == f"logins_30d{PER_DAY_SUFFIX}" and names[1:] == columns[1:]
    assert fair_reference[names].iloc[0].tolist() == [2.0, 10, 7, 8]
    assert fair_current[names].iloc[0].tolist() == [
        pytest.approx(20 / 30),
        10,
        7,
        definition.NOT_WITHIN_LOOKBACK,
    ]
    assert history_depth(current, FIRST_DAY).tolist() == [30]


def test_history_depth_counts_the_first_day_as_one():
    frame = pd.DataFrame(
        {schema.TIMESTAMP: pd.to_datetime(["2026-03-01 00:00", "2026-03-05 23:00"], utc=True)}
    )
    assert np.array_equal(history_depth(frame, FIRST_DAY), [1, 5])
