"""A day's served inputs against the contract, recounted from the prediction log: the same
counts the model server exported, per model version, with non-finite scores."""

from __future__ import annotations

import datetime as dt
import math

import httpx
import pandas as pd
import pytest

from churnloop import registry, storage
from churnloop.features import definition
from churnloop.monitoring.serving_inputs import serving_input_counts
from churnloop.schema import ENTITY, PREDICTION, TIMESTAMP
from churnloop.serving.app import create_app, serve_in_background
from churnloop.serving.prediction_log import FEATURES_KEY, PredictionLog
from churnloop.settings import Settings
from tests.churnloop.serving_support import (
    CORRUPT,
    FEATURES,
    GOOD,
    LAST_DAY,
    OTHER,
    install_template,
    out_of_contract,
    point,
    template_home,
)
from tests.polling import wait_for


@pytest.fixture
def world(settings: Settings) -> Settings:
    install_template(settings, template_home())
    point(settings, registry.CHAMPION, GOOD)
    return settings


def feature_rows(settings: Settings, count: int) -> list[dict]:
    frame = storage.lake(settings).read_table(definition.DATASET, LAST_DAY).to_pandas()
    return frame[FEATURES].head(count).astype(object).to_dict("records")


def test_the_log_recounts_what_the_server_exported(world):
    rows = feature_rows(world, 6)
    rows[0]["age"] = 140
    rows[1]["monthly_charges"] = 1500.0
    rows[2]["plan"] = None
    rows[3]["days_since_last_login"] = -2
    app = create_app(world)
    with serve_in_background(app) as url:
        wait_for(lambda: httpx.get(f"{url}/ready").status_code == 200, what="/ready")
        instances = [{"features": row} for row in rows]
        assert httpx.post(f"{url}/predict", json={"instances": instances}).status_code == 200
        exported = out_of_contract(httpx.get(f"{url}/metrics").text)
        app.state.server.prediction_log.flush()

    counts = serving_input_counts(world, dt.datetime.now(dt.UTC).date())

    assert len(exported) == 4
    assert counts["out_of_contract"] == {
        feature: {reason: int(count)} for (feature, reason), count in exported.items()
    }
    assert (counts["rows"], counts["rows_checked"], counts["unchecked_rows"]) == (6, 6, 0)
    assert counts["nonfinite_predictions"] == {str(GOOD): 0}


def test_each_version_is_checked_on_its_own_and_nonfinite_scores_are_counted(world):
    rows = feature_rows(world, 4)
    moment = dt.datetime.combine(LAST_DAY, dt.time(12), tzinfo=dt.UTC)

    def record(version: int, row: dict, score: float, shadow: float | None = None) -> dict:
        return {
            TIMESTAMP: moment,
            ENTITY: 1,
            "model_version": version,
            PREDICTION: score,
            "shadow_version": OTHER if shadow is not None else None,
            "shadow_prediction": shadow,
            FEATURES_KEY: row,
        }

    log = PredictionLog(world, flush_rows=100, flush_seconds=60, max_pending_rows=100)
    log.append(
        [
            record(GOOD, rows[0] | {"age": 120}, math.nan, shadow=0.4),
            record(GOOD, rows[1], 0.3, shadow=math.inf),
            record(OTHER, rows[2] | {"region": "nowhere"}, 0.2),
            record(CORRUPT, rows[3] | {"age": 500}, 0.1),
        ]
    )
    log.flush()

    counts = serving_input_counts(world, LAST_DAY)

    assert counts["out_of_contract"] == {
        "age": {"above_max": 1},
        "region": {"unseen_category": 1},
    }, "the CORRUPT version's row is not checked: its model does not load"
    assert counts["nonfinite_predictions"] == {str(GOOD): 1, str(OTHER): 1, str(CORRUPT): 0}
    assert (counts["rows"], counts["rows_checked"], counts["unchecked_rows"]) == (4, 3, 1)
    assert "cannot load" in counts["unchecked_versions"][str(CORRUPT)]


def test_a_day_without_a_log_counts_nothing(world):
    counts = serving_input_counts(world, LAST_DAY - dt.timedelta(days=30))

    assert counts["rows"] == 0 and counts["out_of_contract"] == {}
    assert counts["nonfinite_predictions"] == {} and counts["unchecked_versions"] == {}


def test_rows_given_by_the_caller_are_not_read_again(world):
    rows = pd.DataFrame(
        [row | {"model_version": GOOD, PREDICTION: 0.5} for row in feature_rows(world, 2)]
    )
    rows.loc[0, "age"] = 10

    counts = serving_input_counts(world, LAST_DAY, predictions=rows)

    assert counts["out_of_contract"] == {"age": {"below_min": 1}} and counts["rows"] == 2
