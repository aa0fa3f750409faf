"""Row-level training/serving skew: logged features of customers scored from the online
store against the lake's feature rows, on constructed logs with a known right answer and on
a log the real model server wrote."""

from __future__ import annotations

import datetime as dt
import shutil

import httpx
import numpy as np
import pandas as pd
import pytest

from churnloop import registry, storage
from churnloop.features import definition
from churnloop.monitoring.skew import training_serving_skew
from churnloop.schema import ENTITY, PREDICTION, TIMESTAMP
from churnloop.serving.app import create_app, serve_in_background
from churnloop.serving.prediction_log import FEATURES_KEY, PredictionLog
from churnloop.settings import Settings
from tests.churnloop.serving_support import (
    CUSTOMERS,
    FEATURES,
    GOOD,
    LAST_DAY,
    install_template,
    isolated_settings,
    logged_predictions,
    point,
    template_home,
)
from tests.polling import wait_for

DAY_BEFORE = LAST_DAY - dt.timedelta(days=1)


@pytest.fixture
def lake_world(settings: Settings) -> Settings:
    """The template's lake: a feature partition per day up to LAST_DAY, CUSTOMERS each."""
    return install_template(settings, template_home())


def lake_rows(settings: Settings, day: dt.date) -> pd.DataFrame:
    return storage.lake(settings).read_table(definition.DATASET, day).to_pandas()


def write_log(settings: Settings, rows: pd.DataFrame, day: dt.date = LAST_DAY) -> None:
    """``rows`` (``customer_id``, None for explicit features, and the features) as the
    model server logs them on ``day``."""
    moment = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    ids = rows[ENTITY].astype(object).where(rows[ENTITY].notna(), None)
    log = PredictionLog(settings, flush_rows=10**6, flush_seconds=60, max_pending_rows=10**6)
    log.append(
        {
            TIMESTAMP: moment,
            ENTITY: customer,
            "model_version": GOOD,
            PREDICTION: 0.5,
            FEATURES_KEY: features,
        }
        for customer, features in zip(
            ids, rows[FEATURES].astype(object).to_dict("records"), strict=True
        )
    )
    assert log.flush()


def test_served_features_equal_to_the_lake_have_no_mismatch(lake_world):
    write_log(lake_world, lake_rows(lake_world, LAST_DAY))

    result = training_serving_skew(lake_world, LAST_DAY)

    assert result["rows_matched"] == CUSTOMERS and result["rows_without_lake_row"] == 0
    assert set(result["columns"]) == set(FEATURES)
    assert all(column["mismatches"] == 0 for column in result["columns"].values())
    assert result["matched_by_feature_day"][LAST_DAY.isoformat()] == CUSTOMERS
    assert not result["failed"] and not result["insufficient_data"]


def test_rows_served_before_the_day_was_materialized_match_the_day_before(lake_world):
    """Until the day's features are built, the online store serves the day before's."""
    write_log(lake_world, lake_rows(lake_world, DAY_BEFORE))

    result = training_serving_skew(lake_world, LAST_DAY)

    assert result["matched_by_feature_day"] == {
        LAST_DAY.isoformat(): 0,
        DAY_BEFORE.isoformat(): CUSTOMERS,
    }
    assert all(column["mismatches"] == 0 for column in result["columns"].values())
    assert not result["failed"]


def _off_by_one_in_5_percent(rows: pd.DataFrame) -> tuple[pd.DataFrame, str, int]:
    changed = rows.index[np.random.default_rng(5).permutation(len(rows))[: len(rows) // 20]]
    rows.loc[changed, "logins_30d"] += 1
    return rows, "logins_30d", len(changed)


def _category_renamed(rows: pd.DataFrame) -> tuple[pd.DataFrame, str, int]:
    renamed = rows["plan"] == "basic"
    rows.loc[renamed, "plan"] = "bronze"
    return rows, "plan", int(renamed.sum())


@pytest.mark.parametrize("skew", [_off_by_one_in_5_percent, _category_renamed])
def test_a_skewed_column_fails_the_check_by_name(lake_world, skew):
    served, column, changed = skew(lake_rows(lake_world, LAST_DAY))
    write_log(lake_world, served)

    result = training_serving_skew(lake_world, LAST_DAY)

    assert result["columns"][column]["mismatches"] == changed > 0
    assert result["columns"][column]["rate"] == pytest.approx(changed / CUSTOMERS)
    others = [value for name, value in result["columns"].items() if name != column]
    assert all(value["mismatches"] == 0 for value in others)
    assert result["failed"] and column in result["reason"]
    assert result["matched_by_feature_day"][LAST_DAY.isoformat()] == CUSTOMERS


def test_a_mismatch_rate_not_above_the_limit_with_confidence_passes(lake_world):
    """1 row of 300 (0.33%) differs: reported, but its interval reaches below 1%."""
    served = lake_rows(lake_world, LAST_DAY)
    served.loc[served.index[0], "age"] += 1
    write_log(lake_world, served)

    result = training_serving_skew(lake_world, LAST_DAY)

    assert result["columns"]["age"]["mismatches"] == 1
    assert result["columns"]["age"]["low"] < lake_world.skew_max_mismatch_rate
    assert not result["failed"]


def test_explicit_feature_rows_are_counted_not_compared(lake_world):
    served = lake_rows(lake_world, LAST_DAY)
    explicit = served.head(50).assign(**{ENTITY: None, "plan": "bronze", "age": 99})
    write_log(lake_world, pd.concat([served, explicit], ignore_index=True))

    result = training_serving_skew(lake_world, LAST_DAY)

    assert result["explicit_feature_rows"] == 50 and result["log_rows"] == CUSTOMERS + 50
    assert result["rows_matched"] == CUSTOMERS
    assert all(column["mismatches"] == 0 for column in result["columns"].values())
    assert not result["failed"]


def test_log_rows_without_a_lake_row_are_counted(lake_world):
    served = lake_rows(lake_world, LAST_DAY)
    strangers = served.head(7).assign(**{ENTITY: served[ENTITY].max() + 1 + np.arange(7)})
    write_log(lake_world, pd.concat([served, strangers], ignore_index=True))

    result = training_serving_skew(lake_world, LAST_DAY)

    assert result["rows_without_lake_row"] == 7 and result["rows_matched"] == CUSTOMERS
    assert not result["failed"]


def test_too_few_matched_rows_give_no_verdict(lake_world):
    served, column, _ = _category_renamed(lake_rows(lake_world, LAST_DAY).head(60))
    write_log(lake_world, served)

    result = training_serving_skew(lake_world, LAST_DAY)

    assert result["insufficient_data"] and not result["failed"]
    assert result["columns"][column]["mismatches"] > 0
    assert "skew_min_rows" in result["reason"]


def test_a_day_without_log_or_lake_rows_gives_no_verdict(lake_world):
    day = LAST_DAY + dt.timedelta(days=30)

    result = training_serving_skew(lake_world, day)

    assert result["log_rows"] == 0 and result["matched_by_feature_day"] == {}
    assert result["insufficient_data"] and not result["failed"]


@pytest.fixture
def online_world(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The template with the last day materialized in the online store."""
    from churnloop.features.feast_config import apply_definitions
    from churnloop.features.materialize import materialize_day

    home = tmp_path_factory.mktemp("skew-online") / "home"
    shutil.copytree(template_home(), home)
    apply_definitions(isolated_settings(home))
    materialize_day(isolated_settings(home), LAST_DAY, overlap_days=0)
    install_template(settings, home)
    point(settings, registry.CHAMPION, GOOD)
    return settings


def test_the_real_server_scoring_from_the_online_store_has_no_skew(online_world):
    customers = [int(customer) for customer in lake_rows(online_world, LAST_DAY)[ENTITY]]
    app = create_app(online_world)
    with serve_in_background(app) as url:
        wait_for(lambda: httpx.get(f"{url}/ready").status_code == 200, what="/ready")
        for start in range(0, len(customers), 100):
            batch = [{"customer_id": customer} for customer in customers[start : start + 100]]
            assert httpx.post(f"{url}/predict", json={"instances": batch}).status_code == 200
        app.state.server.prediction_log.flush()
    logged = logged_predictions(online_world)

    result = training_serving_skew(online_world, LAST_DAY, predictions=logged)

    assert result["rows_matched"] == CUSTOMERS
    assert all(column["mismatches"] == 0 for column in result["columns"].values())
    assert not result["failed"] and not result["insufficient_data"]
