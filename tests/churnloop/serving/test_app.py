"""The model server over real HTTP, against a real MLflow registry and Feast online store
(the ``world`` and ``serve`` fixtures: ``conftest.py``)."""

from __future__ import annotations

import datetime as dt
import gc
import math
import uuid

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from churnloop import registry, storage
from churnloop.features import definition
from churnloop.schema import ENTITY, TIMESTAMP
from churnloop.serving.app import create_app, serve_in_background
from churnloop.serving.prediction_log import PREDICTION, read_predictions
from tests.churnloop.serving_support import (
    ADMIN,
    CORRUPT,
    FEATURES,
    GOOD,
    LAST_DAY,
    OTHER,
    TOKEN,
    UNFITTED,
    as_json_row,
    last_day_features,
    logged_predictions,
    metric,
    offline,
    out_of_contract,
    point,
    served_version,
)
from tests.polling import wait_for

UNKNOWN_CUSTOMER = 999_999


# -- predictions ----------------------------------------------------------------------------


def test_customer_and_feature_predictions_match_the_registered_model(world, serve):
    url, _ = serve()
    online = last_day_features(world)
    customers = online.index[:3].tolist()
    expected = offline(world, GOOD, online.loc[customers])

    single = httpx.post(f"{url}/predict", json={"customer_id": customers[0]}).json()
    by_features = httpx.post(
        f"{url}/predict", json={"features": as_json_row(online, customers[1])}
    ).json()

    assert single["version"] == GOOD and single["model"] == world.model_name
    assert single["probability"] == pytest.approx(expected[0], abs=1e-12)
    assert single["label"] == int(expected[0] >= world.serving_threshold)
    assert by_features["probability"] == pytest.approx(expected[1], abs=1e-12)
    assert by_features["customer_id"] is None


def test_customer_predictions_read_the_redis_online_store(world, serve, redis_address):
    """The production online store: Feast's async Redis read, inside the server's event loop."""
    from churnloop.features.feast_config import apply_definitions, feature_store
    from churnloop.features.materialize import materialize_day

    on_redis = world.model_copy(
        update={"feast_redis": redis_address, "feast_project": f"serving_{uuid.uuid4().hex[:8]}"}
    )
    apply_definitions(on_redis)
    try:
        materialize_day(on_redis, LAST_DAY, overlap_days=0)
        url, _ = serve(feast_redis=on_redis.feast_redis, feast_project=on_redis.feast_project)
        online = last_day_features(world)
        customers = online.index[:4].tolist()
        expected = offline(world, GOOD, online.loc[customers])

        single = httpx.post(f"{url}/predict", json={"customer_id": customers[0]}).json()
        batch = httpx.post(
            f"{url}/predict",
            json={"instances": [{"customer_id": c} for c in [*customers, UNKNOWN_CUSTOMER]]},
        ).json()["predictions"]

        assert single["probability"] == pytest.approx(expected[0], abs=1e-12)
        assert [p["probability"] for p in batch[:-1]] == pytest.approx(expected, abs=1e-12)
        assert batch[-1]["error"]["status"] == 404
    finally:
        feature_store(on_redis).teardown()


def test_batch_scores_each_instance_and_reports_an_unknown_customer_in_place(world, serve):
    url, _ = serve()
    online = last_day_features(world)
    first, second = online.index[:2].tolist()
    instances = [
        {"customer_id": first},
        {"customer_id": UNKNOWN_CUSTOMER},
        {"features": as_json_row(online, second)},
    ]

    response = httpx.post(f"{url}/predict", json={"instances": instances})

    assert response.status_code == 200
    body = response.json()
    assert body["version"] == GOOD
    scored, unknown, explicit = body["predictions"]
    expected = offline(world, GOOD, online.loc[[first, second]])
    assert scored["probability"] == pytest.approx(expected[0], abs=1e-12)
    assert explicit["probability"] == pytest.approx(expected[1], abs=1e-12)
    assert unknown["probability"] is None
    assert unknown["error"]["status"] == 404
    assert str(UNKNOWN_CUSTOMER) in unknown["error"]["detail"]


def test_unknown_customer_alone_is_a_404_naming_it(serve):
    url, _ = serve()

    response = httpx.post(f"{url}/predict", json={"customer_id": UNKNOWN_CUSTOMER})

    assert response.status_code == 404
    assert f"customer {UNKNOWN_CUSTOMER}" in response.json()["detail"]


def _features_with(change: dict) -> dict:
    row = dict.fromkeys(FEATURES, 1.0) | {"plan": "basic", "region": "north", "contract": "annual"}
    row.update(change)
    return {name: value for name, value in row.items() if value != "DROP"}


@pytest.mark.parametrize(
    ("payload", "loc", "message"),
    [
        ({}, ["body"], "exactly one of 'customer_id', 'features' or 'instances'"),
        ({"customer_id": 1, "features": {}}, ["body"], "exactly one"),
        ({"customer_id": "abc"}, ["body", "customer_id"], "valid integer"),
        ({"features": _features_with({"age": "DROP"})}, ["body", "features", "age"], "required"),
        ({"features": _features_with({"age": "old"})}, ["body", "features", "age"], "a number"),
        ({"features": _features_with({"plan": 3})}, ["body", "features", "plan"], "'premium'"),
        ({"features": _features_with({"bogus": 1})}, ["body", "features", "bogus"], "Extra"),
        (
            {"instances": [{"customer_id": 1}, {"features": _features_with({"region": 7})}]},
            ["body", "instances", 1, "features", "region"],
            "'north', 'south', 'east' or 'west'",
        ),
        ({"instances": []}, ["body", "instances"], "at least 1 item"),
        ({"instances": [{"customer_id": 1}] * 3}, ["body", "instances"], "at most 2 instances"),
    ],
)
def test_invalid_payloads_are_422s_naming_the_field(serve, payload, loc, message):
    url, _ = serve(serving_max_instances=2)

    response = httpx.post(f"{url}/predict", json=payload)

    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(error["loc"] == loc and message in error["msg"] for error in errors), errors


# -- following the alias ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "headers", "status", "message"),
    [
        (None, ADMIN, 403, "disabled"),
        (TOKEN, {}, 401, "Authorization: Bearer"),
        (TOKEN, {"Authorization": "Bearer wrong"}, 403, "wrong admin token"),
    ],
)
def test_admin_reload_refuses_without_the_right_token(serve, token, headers, status, message):
    url, _ = serve(serving_admin_token=token)

    response = httpx.post(f"{url}/admin/reload", headers=headers)

    assert response.status_code == status
    assert message in response.json()["detail"]


def test_admin_reload_serves_the_new_champion_at_once(world, serve):
    url, _ = serve(serving_admin_token=TOKEN, serving_poll_seconds=3600)
    customer = last_day_features(world).index[0]
    before = httpx.post(f"{url}/predict", json={"customer_id": int(customer)}).json()
    point(world, registry.CHAMPION, OTHER)

    response = httpx.post(f"{url}/admin/reload", headers=ADMIN)

    assert response.status_code == 200 and response.json()["serving"] == str(OTHER)
    after = httpx.post(f"{url}/predict", json={"customer_id": int(customer)}).json()
    assert (before["version"], after["version"]) == (GOOD, OTHER)
    assert after["probability"] != before["probability"]
    state = httpx.get(f"{url}/model").json()
    assert state["version"] == OTHER and state["alias"] == registry.CHAMPION
    assert state["lineage"]["feature_service"] == definition.FEATURE_SERVICE
    assert state["training_window"]["end"] == LAST_DAY.isoformat()


def test_poller_follows_the_champion_alias(world, serve):
    url, _ = serve(serving_poll_seconds=0.2)
    assert served_version(url) == GOOD

    point(world, registry.CHAMPION, OTHER)

    wait_for(lambda: served_version(url) == OTHER, timeout=20, what="the poller to load v2")


@pytest.mark.parametrize(
    ("broken", "reason"),
    [(CORRUPT, "cannot load"), (UNFITTED, "not a fitted LGBMClassifier")],
)
def test_a_broken_version_leaves_the_old_model_serving_and_says_why(world, serve, broken, reason):
    url, _ = serve(serving_admin_token=TOKEN, serving_poll_seconds=3600)
    point(world, registry.CHAMPION, broken)

    response = httpx.post(f"{url}/admin/reload", headers=ADMIN)

    assert response.status_code == 500
    detail = response.json()["detail"]
    assert reason in detail["error"] and detail["serving"] == str(GOOD)
    state = httpx.get(f"{url}/model").json()
    assert state["version"] == GOOD
    assert state["last_load_error"]["version"] == broken
    assert reason in state["last_load_error"]["error"]
    customer = int(last_day_features(world).index[0])
    assert httpx.post(f"{url}/predict", json={"customer_id": customer}).json()["version"] == GOOD

    point(world, registry.CHAMPION, GOOD)
    assert httpx.post(f"{url}/admin/reload", headers=ADMIN).status_code == 200
    assert httpx.get(f"{url}/model").json()["last_load_error"] is None


def test_a_broken_challenger_is_reported_without_failing_the_reload(world, serve):
    point(world, registry.CHALLENGER, CORRUPT)
    url, _ = serve(serving_admin_token=TOKEN, serving_shadow_fraction=0.5)

    response = httpx.post(f"{url}/admin/reload", headers=ADMIN)

    assert response.status_code == 200 and response.json()["serving"] == str(GOOD)
    state = httpx.get(f"{url}/model").json()
    assert state["challenger"] is None and state["last_load_error"] is None
    assert state["challenger_load_error"]["version"] == CORRUPT


def test_without_a_champion_the_server_is_alive_but_not_ready(world, serve):
    point(world, registry.CHAMPION, None)
    url, _ = serve(ready=False, serving_poll_seconds=0.2)

    assert httpx.get(f"{url}/health").status_code == 200
    assert httpx.get(f"{url}/ready").status_code == 503
    assert httpx.post(f"{url}/predict", json={"customer_id": 1}).status_code == 503

    point(world, registry.CHAMPION, GOOD)
    wait_for(lambda: httpx.get(f"{url}/ready").status_code == 200, what="ready after promotion")


def test_a_ready_server_has_put_its_start_up_objects_out_of_the_collectors_scans(serve):
    """A full collection of what importing Feast and MLflow leaves held every request for
    about 0.3 s; once ready, the collector scans only what came later."""
    gc.unfreeze()
    serve()

    assert gc.get_freeze_count() > 10 * len(gc.get_objects())


# -- explanations, shadow scoring, the prediction log, metrics ------------------------------


def test_explain_contributions_sum_to_the_raw_score(world, serve):
    url, _ = serve()
    customer = int(last_day_features(world).index[0])

    body = httpx.post(f"{url}/explain", json={"customer_id": customer}).json()

    assert set(body["contributions"]) == set(FEATURES)
    total = body["base_value"] + sum(body["contributions"].values())
    assert total == pytest.approx(body["raw_score"], abs=1e-9)
    assert 1 / (1 + math.exp(-body["raw_score"])) == pytest.approx(body["probability"], abs=1e-12)
    predicted = httpx.post(f"{url}/predict", json={"customer_id": customer}).json()
    assert body["probability"] == pytest.approx(predicted["probability"], abs=1e-12)


def test_shadow_scores_are_logged_while_callers_get_the_champion(world, serve):
    point(world, registry.CHALLENGER, OTHER)
    url, server = serve(serving_shadow_fraction=1.0)
    wait_for(lambda: server.follower.challenger, what="the challenger to load")
    online = last_day_features(world)
    customers = [int(customer) for customer in online.index[:4]]

    answers = [
        httpx.post(f"{url}/predict", json={"customer_id": customer}).json()
        for customer in customers
    ]
    server.prediction_log.flush()

    assert {answer["version"] for answer in answers} == {GOOD}
    logged = logged_predictions(world).set_index(ENTITY)
    assert sorted(logged.index) == sorted(customers)
    assert (logged["model_version"] == GOOD).all() and (logged["shadow_version"] == OTHER).all()
    rows = online.loc[customers]
    assert np.allclose(logged.loc[customers, PREDICTION], offline(world, GOOD, rows), atol=1e-12)
    shadow = offline(world, OTHER, rows)
    assert np.allclose(logged.loc[customers, "shadow_prediction"], shadow, atol=1e-12)

    batch = {"instances": [{"customer_id": customer} for customer in customers]}
    httpx.post(f"{url}/predict", json=batch)
    text = httpx.get(f"{url}/metrics").text
    shadowed = metric(
        text, "churnloop_prediction_score_count", model_version=str(OTHER), variant="shadow"
    )
    assert shadowed == 2 * len(customers), "every shadowed row of a batch is counted"


def test_prediction_log_writes_new_files_in_the_background(world, serve):
    url, server = serve(prediction_log_flush_rows=2, prediction_log_flush_seconds=3600)
    online = last_day_features(world)
    batches = [online.index[:2].tolist(), online.index[2:5].tolist()]
    today = dt.datetime.now(dt.UTC).date()
    partition = storage.Store.partition("predictions", today)

    for written, batch in zip((2, 5), batches, strict=True):
        instances = [{"customer_id": int(customer)} for customer in batch]
        httpx.post(f"{url}/predict", json={"instances": instances})
        wait_for(lambda: server.prediction_log.written_rows == written, what="a flush")  # noqa: B023

    files = list(storage.lake(world).list_files(partition))
    assert len(files) == 2 and all(path.endswith(".parquet") for path in files)
    logged = read_predictions(world, today)
    assert sorted(logged[ENTITY]) == sorted(sum(batches, []))
    assert logged[TIMESTAMP].dt.tz is not None and set(FEATURES) <= set(logged.columns)
    assert logged.set_index(ENTITY).loc[batches[0][0], "plan"] == online.loc[batches[0][0], "plan"]
    with pytest.raises(storage.PartitionNotFound, match="no predictions logged"):
        read_predictions(world, today - dt.timedelta(days=400))


def test_stopping_the_server_writes_the_rows_still_pending(world):
    settings = world.model_copy(update={"prediction_log_flush_rows": 10_000})
    customer = int(last_day_features(world).index[0])
    with serve_in_background(create_app(settings)) as url:
        wait_for(lambda: httpx.get(f"{url}/ready").status_code == 200, what="/ready")
        httpx.post(f"{url}/predict", json={"customer_id": customer})

    logged = logged_predictions(world)
    assert logged[ENTITY].tolist() == [customer]


def test_metrics_count_requests_scores_and_errors_by_model_version(world, serve):
    url, _ = serve()
    customer = int(last_day_features(world).index[0])
    httpx.post(f"{url}/predict", json={"customer_id": customer})
    httpx.post(f"{url}/predict", json={"customer_id": UNKNOWN_CUSTOMER})
    httpx.post(f"{url}/predict", json={"customer_id": "not a number"})

    text = httpx.get(f"{url}/metrics").text

    requests = "churnloop_requests_total"
    on_predict = {"endpoint": "/predict", "model_version": "1", "variant": "champion"}
    assert metric(text, requests, **on_predict, status="200") == 1
    assert metric(text, requests, **on_predict, status="404") == 1
    assert metric(text, "churnloop_request_duration_seconds_count", **on_predict) == 3
    scores = "churnloop_prediction_score_count"
    assert metric(text, scores, model_version="1", variant="champion") == 1
    assert metric(text, "churnloop_errors_total", kind="unknown_customer") == 1
    assert metric(text, "churnloop_errors_total", kind="validation") == 1
    assert metric(text, "churnloop_model_version", alias="champion") == GOOD
    champion = registry.model_version(world, GOOD)
    trained_until = registry.training_data_end(champion) + dt.timedelta(days=1)
    stamp = "churnloop_model_training_data_end_timestamp_seconds"
    end = dt.datetime.combine(trained_until, dt.time(), dt.UTC).timestamp()
    assert metric(text, stamp, alias="champion") == end, "the staleness rule's input"


# -- the data contract at the door -----------------------------------------------------------


def test_explicit_features_outside_the_contract_are_counted_by_feature(world, serve):
    """Values the request schema lets through (finite, a contract category or null) but the
    snapshot suite's bounds do not, each counted once under its feature."""
    url, _ = serve()
    online = last_day_features(world)
    rows = [as_json_row(online, customer) for customer in online.index[:5]]
    rows[0]["age"] = 150
    rows[1]["monthly_charges"] = -5.0
    rows[2]["tenure_months"] = None
    rows[3]["age"] = 17
    rows[3]["region"] = None

    response = httpx.post(f"{url}/predict", json={"instances": [{"features": r} for r in rows]})

    assert response.status_code == 200
    assert all(item["probability"] is not None for item in response.json()["predictions"])
    assert out_of_contract(httpx.get(f"{url}/metrics").text) == {
        ("age", "above_max"): 1,
        ("age", "below_min"): 1,
        ("monthly_charges", "below_min"): 1,
        ("tenure_months", "missing"): 1,
        ("region", "missing"): 1,
    }


def test_online_store_values_outside_the_contract_are_counted_too(world, serve):
    """Rows read by customer_id pass no request schema: an unseen category and an age below
    the suite's minimum, materialized online, are scored and counted."""
    from churnloop.features.materialize import materialize_day

    lake = storage.lake(world)
    day = LAST_DAY + dt.timedelta(days=1)
    odd = lake.read_table(definition.DATASET, LAST_DAY).to_pandas().iloc[:3]
    odd = odd.assign(**{TIMESTAMP: odd[TIMESTAMP] + pd.Timedelta(days=1), "plan": "platinum"})
    odd.loc[odd.index[0], "age"] = 17
    table = pa.Table.from_pandas(odd, schema=definition.TABLE_SCHEMA, preserve_index=False)
    lake.write_table(definition.DATASET, day, table)
    materialize_day(world, day, overlap_days=0)
    url, _ = serve()

    instances = [{"customer_id": int(customer)} for customer in odd[ENTITY]]
    response = httpx.post(f"{url}/predict", json={"instances": instances})

    assert response.status_code == 200
    assert all(item["probability"] is not None for item in response.json()["predictions"])
    assert out_of_contract(httpx.get(f"{url}/metrics").text) == {
        ("plan", "unseen_category"): 3,
        ("age", "below_min"): 1,
    }
