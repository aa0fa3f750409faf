import datetime as dt
import functools

import numpy as np
import pandas as pd

from churnloop import schema
from churnloop.demo.simulation import generate_snapshots
from churnloop.features import definition
from churnloop.monitoring.effect_sizes import compute_drift
from churnloop.monitoring.history_depth import history_depth, judged_at_reference_depth

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


def test_a_young_lake_drifts_by_construction_unless_only_whole_windows_are_judged():
    reference, current = features_on(14), features_on(40)

    assert {"logins_30d", "days_observed_90d"} <= set(drifted(reference, current, FEATURES))
    judged, note = judged_at_reference_depth(reference, FEATURES, FIRST_DAY)
    assert drifted(reference, current, judged) == []
    assert "logins_7d" in judged and "age" in judged and "logins_30d" not in judged
    assert "30-day, 90-day windows, longer than the reference's 15 day(s)" in note


def test_a_real_change_in_activity_is_still_judged():
    reference, current = features_on(14), features_on(40)
    busier = current.assign(logins_7d=current["logins_7d"] * 2)

    judged, _ = judged_at_reference_depth(reference, FEATURES, FIRST_DAY)

    assert drifted(reference, busier, judged) == ["logins_7d"]


def test_a_reference_that_saw_every_window_judges_every_feature():
    reference = pd.DataFrame({schema.TIMESTAMP: [pd.Timestamp(2026, 6, 1, tz="UTC")]})

    judged, note = judged_at_reference_depth(reference, FEATURES, FIRST_DAY)

    assert judged == FEATURES and "every feature judged" in note


def test_every_history_feature_names_its_window():
    history = [name for name in FEATURES if name not in definition.CURRENT]
    assert sorted(set(history) - set(definition.WINDOW_OF)) == ["tenure_bucket"]


def test_history_depth_counts_the_first_day_as_one():
    frame = pd.DataFrame(
        {schema.TIMESTAMP: pd.to_datetime(["2026-03-01 00:00", "2026-03-05 23:00"], utc=True)}
    )
    assert np.array_equal(history_depth(frame, FIRST_DAY), [1, 5])
