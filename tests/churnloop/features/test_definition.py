import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from churnloop.errors import DataError
from churnloop.features import definition
from churnloop.schema import ENTITY, SNAPSHOT_SCHEMA, TIMESTAMP

DAY = dt.date(2026, 4, 30)


def snapshot_rows(day: dt.date, customers: dict[int, dict]) -> pd.DataFrame:
    """A day's snapshot in the data contract; unnamed columns get plain values."""
    defaults = {
        "plan": "basic",
        "region": "north",
        "contract": "monthly",
        "age": 40,
        "tenure_months": 12,
        "monthly_charges": 25.0,
        "logins": 0,
        "session_minutes": 0.0,
        "support_tickets": 0,
        "payment_failures": 0,
        "spend": 0.0,
        "days_since_last_login": 1,
    }
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    rows = [
        {ENTITY: customer, TIMESTAMP: midnight, **defaults, **values}
        for customer, values in customers.items()
    ]
    return pa.Table.from_pylist(rows, schema=SNAPSHOT_SCHEMA).to_pandas()


def history(days_back: range, customers: dict[int, dict]) -> pd.DataFrame:
    return pd.concat(
        [snapshot_rows(DAY - dt.timedelta(days=back), customers) for back in days_back],
        ignore_index=True,
    )


def features_of(frame: pd.DataFrame, customer: int) -> pd.Series:
    return frame.set_index(ENTITY).loc[customer]


def test_windows_sum_the_trailing_days_today_included():
    built = definition.build_features(history(range(120), {1: {"logins": 1, "spend": 2.5}}), DAY)
    row = features_of(built, 1)
    assert (row.logins_7d, row.logins_30d, row.logins_90d) == (7, 30, 90)
    assert row.spend_90d == pytest.approx(225.0)
    assert (row.days_observed_7d, row.days_observed_30d, row.days_observed_90d) == (7, 30, 90)


def test_window_edges_and_later_rows():
    rows = pd.concat(
        [
            snapshot_rows(DAY, {1: {}}),
            snapshot_rows(DAY - dt.timedelta(days=6), {1: {"logins": 1}}),  # last day in 7d
            snapshot_rows(DAY - dt.timedelta(days=7), {1: {"logins": 10}}),  # first outside
            snapshot_rows(DAY - dt.timedelta(days=90), {1: {"logins": 1000}}),  # out of lookback
            snapshot_rows(DAY + dt.timedelta(days=1), {1: {"logins": 10_000}}),  # the future
        ]
    )
    row = features_of(definition.build_features(rows, DAY), 1)
    assert (row.logins_7d, row.logins_30d, row.logins_90d) == (1, 11, 11)


def test_missing_days_are_counted_and_rates_use_the_days_present():
    rows = history(range(0, 90, 10), {1: {"support_tickets": 2, "payment_failures": 1}})
    row = features_of(definition.build_features(rows, DAY), 1)
    assert (row.days_observed_7d, row.days_observed_30d, row.days_observed_90d) == (1, 3, 9)
    assert row.support_tickets_90d == 18
    assert row.support_tickets_per_30d == pytest.approx(18 * 30 / 9)
    assert row.payment_failures_per_30d == pytest.approx(9 * 30 / 9)


def test_zero_denominators_give_finite_values():
    quiet = {"logins": 0, "spend": 12.0, "session_minutes": 30.0}
    built = definition.build_features(history(range(30), {1: quiet}), DAY)
    row = features_of(built, 1)
    assert row.spend_per_login_30d == pytest.approx(360.0)  # spend over max(logins, 1)
    assert row.minutes_per_login_30d == pytest.approx(900.0)
    numeric = built.select_dtypes("number")
    assert np.isfinite(numeric.to_numpy(dtype=float)).all()


def test_trend_compares_recent_and_monthly_daily_means():
    rows = pd.concat(
        [history(range(7), {1: {"logins": 4}}), history(range(7, 30), {1: {"logins": 1}})]
    )
    row = features_of(definition.build_features(rows, DAY), 1)
    assert row.logins_per_day_trend == pytest.approx(4 - (28 + 23) / 30)


def test_recency_of_tickets_and_payment_failures():
    rows = pd.concat(
        [
            history(range(40), {1: {}, 2: {}}),
            snapshot_rows(DAY - dt.timedelta(days=5), {1: {"support_tickets": 1}}),
            snapshot_rows(DAY - dt.timedelta(days=12), {1: {"support_tickets": 3}}),
        ]
    ).drop_duplicates([ENTITY, TIMESTAMP], keep="last")
    built = definition.build_features(rows, DAY)
    assert features_of(built, 1).days_since_last_ticket == 5
    assert features_of(built, 2).days_since_last_ticket == definition.NOT_WITHIN_LOOKBACK
    assert features_of(built, 1).days_since_last_payment_failure == definition.NOT_WITHIN_LOOKBACK


@pytest.mark.parametrize(
    ("tenure", "bucket"), [(0, 0), (5, 0), (6, 1), (11, 1), (12, 2), (47, 3), (48, 4), (200, 4)]
)
def test_tenure_buckets(tenure, bucket):
    built = definition.build_features(snapshot_rows(DAY, {1: {"tenure_months": tenure}}), DAY)
    assert features_of(built, 1).tenure_bucket == bucket


def test_current_attributes_come_from_the_day_and_only_its_customers_get_rows():
    rows = pd.concat(
        [
            snapshot_rows(DAY, {1: {"plan": "premium", "region": "west"}}),
            snapshot_rows(DAY - dt.timedelta(days=1), {1: {"plan": "basic"}, 2: {}}),
        ]
    )
    built = definition.build_features(rows, DAY)
    assert built[ENTITY].tolist() == [1]
    assert (built.plan.item(), built.region.item()) == ("premium", "west")
    assert built[TIMESTAMP].item() == pd.Timestamp(DAY, tz="UTC")


def test_output_has_the_declared_schema():
    built = definition.build_features(history(range(3), {1: {}, 2: {"logins": 3}}), DAY)
    assert list(built.columns) == definition.TABLE_SCHEMA.names
    assert pa.Table.from_pandas(built, preserve_index=False).schema.equals(
        definition.TABLE_SCHEMA, check_metadata=False
    )
    assert "churned" not in definition.FEATURE_SCHEMA.names


def test_feeding_history_day_by_day_equals_the_whole_history():
    rng = np.random.default_rng(7)
    days = [DAY - dt.timedelta(days=back) for back in range(60)]
    parts = [
        snapshot_rows(
            day,
            {
                customer: {"logins": int(rng.integers(0, 5)), "spend": float(rng.random() * 9)}
                for customer in range(1, 30)
                if rng.random() > 0.2 or day == DAY
            },
        )
        for day in days
    ]
    whole = definition.build_features(pd.concat(parts, ignore_index=True), DAY)
    today = definition.snapshot_of_day(parts[0], DAY)
    windows = definition.RollingWindows(DAY, today[ENTITY])
    for part in parts:
        windows.add(part[definition.HISTORY_COLUMNS])
    pd.testing.assert_frame_equal(definition.assemble(today, windows), whole)


def test_a_day_without_rows_or_with_duplicates_is_refused():
    with pytest.raises(DataError, match="no snapshot rows for 2026-04-30"):
        definition.build_features(history(range(1, 5), {1: {}}), DAY)
    twice = pd.concat([snapshot_rows(DAY, {1: {}}), snapshot_rows(DAY, {1: {}})])
    with pytest.raises(DataError, match="duplicate customer_ids, e.g. \\[1\\]"):
        definition.build_features(twice, DAY)
    yesterday = history(range(1, 2), {1: {}})
    earlier_twice = pd.concat([snapshot_rows(DAY, {1: {}}), yesterday, yesterday])
    with pytest.raises(DataError, match="more than one row for a customer on the same day"):
        definition.build_features(earlier_twice, DAY)


UNBUILDABLE = {
    "null_age_today": (0, "age", None),
    "nan_spend_today": (0, "spend", float("nan")),
    "infinite_minutes_today": (0, "session_minutes", float("inf")),
    "infinite_spend_days_ago": (3, "spend", float("inf")),
    "null_logins_days_ago": (20, "logins", None),
    "null_plan_today": (0, "plan", None),
}


@pytest.mark.parametrize("back, column, value", UNBUILDABLE.values(), ids=UNBUILDABLE.keys())
def test_values_no_feature_can_hold_are_a_data_error_naming_day_and_column(back, column, value):
    """Nulls, NaN and infinities would become NaN or inf features (or a cast error deep in
    pandas); the definition refuses them naming the snapshot day, the column and customers."""
    rows = history(range(30), {1: {}, 2: {}, 3: {}})
    bad_day = DAY - dt.timedelta(days=back)
    rows.loc[(rows[TIMESTAMP].dt.date == bad_day) & (rows[ENTITY] >= 2), column] = value

    with pytest.raises(DataError) as caught:
        definition.build_features(rows, DAY)

    message = str(caught.value)
    assert f"customer_snapshots dt={bad_day}" in message
    assert f"2 rows with a null or non-finite {column!r} (customer_id 2, 3)" in message
    assert f"features of {DAY}" in message
