"""A canary in the model server, over real HTTP against a real registry: ``@candidate``
answers the registry's share of customers, each placed by `routing.variant_for` (the pure
routing is tested in ``test_routing.py``); every answer, metric and log row names its version
and variant, and a share that is malformed, or a candidate that is the champion, routes
nobody to it."""

from __future__ import annotations

import logging
from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from churnloop import registry
from churnloop.schema import ENTITY, PREDICTION
from churnloop.serving.routing import CANDIDATE, CHAMPION, variant_for
from churnloop.settings import Settings
from tests.churnloop.serving_support import (
    ADMIN,
    FEATURES,
    GOOD,
    OTHER,
    TOKEN,
    as_json_row,
    last_day_features,
    logged_predictions,
    metric,
    offline,
    point,
)
from tests.polling import wait_for

SHARE = 0.5
VERSIONS = {CHAMPION: GOOD, CANDIDATE: OTHER}


@pytest.fixture
def canary(world: Settings) -> Settings:
    """``world`` with `OTHER` as ``@candidate`` on half the customers."""
    point(world, registry.CANDIDATE, OTHER)
    registry.set_canary_share(world, OTHER, SHARE)
    return world


def start_with_candidate(serve, **overrides):
    """A ready server whose candidate is loaded too (/ready waits for the champion only):
    its URL and state."""
    url, server = serve(**overrides)
    wait_for(lambda: server.follower.candidate, what="the candidate to load")
    return url, server


def answers(url: str, customers: list[int]) -> list[dict]:
    instances = [{"customer_id": customer} for customer in customers]
    response = httpx.post(f"{url}/predict", json={"instances": instances}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def variants(url: str, customers: list[int]) -> set[str]:
    return {answer["variant"] for answer in answers(url, customers)}


def test_each_customer_is_answered_by_its_variant_on_every_server(canary, serve):
    url, _ = start_with_candidate(serve)
    online = last_day_features(canary)
    customers = [int(customer) for customer in online.index]

    batch = answers(url, customers)

    routed = [answer["variant"] for answer in batch]
    assert routed == [variant_for(customer, OTHER, SHARE) for customer in customers]
    assert set(routed) == {CHAMPION, CANDIDATE}
    assert [answer["version"] for answer in batch] == [VERSIONS[variant] for variant in routed]
    for variant, version in VERSIONS.items():
        chosen = [c for c, routed_to in zip(customers, routed, strict=True) if routed_to == variant]
        served = [answer["probability"] for answer in batch if answer["variant"] == variant]
        expected = offline(canary, version, online.loc[chosen])
        assert served == pytest.approx(expected.tolist(), abs=1e-12), variant
    restarted, _ = start_with_candidate(serve)
    assert [answer["variant"] for answer in answers(restarted, customers)] == routed


def test_single_answers_name_their_variant_and_explicit_features_get_the_champion(canary, serve):
    url, _ = start_with_candidate(serve)
    online = last_day_features(canary)
    customers = [int(customer) for customer in online.index[:40]]
    by_variant = {variant_for(customer, OTHER, SHARE): customer for customer in customers}

    for variant, customer in by_variant.items():
        for _ in range(2):
            answer = httpx.post(f"{url}/predict", json={"customer_id": customer}).json()
            assert (answer["variant"], answer["version"]) == (variant, VERSIONS[variant])
    on_candidate = by_variant[CANDIDATE]
    explained = httpx.post(f"{url}/explain", json={"customer_id": on_candidate}).json()
    assert (explained["variant"], explained["version"]) == (CANDIDATE, OTHER)
    row = {"features": as_json_row(online, on_candidate)}
    explicit = httpx.post(f"{url}/predict", json=row).json()
    assert (explicit["variant"], explicit["version"]) == (CHAMPION, GOOD)


def test_metrics_and_log_rows_carry_the_version_and_variant(canary, serve):
    url, server = start_with_candidate(serve)
    customers = [int(customer) for customer in last_day_features(canary).index[:20]]
    expected = {customer: variant_for(customer, OTHER, SHARE) for customer in customers}
    on_candidate = [customer for customer in customers if expected[customer] == CANDIDATE]
    assert 0 < len(on_candidate) < len(customers), "the batch mixes both variants"

    answers(url, customers)
    httpx.post(f"{url}/predict", json={"customer_id": on_candidate[0]})
    server.prediction_log.flush()

    text = httpx.get(f"{url}/metrics").text
    scores = "churnloop_prediction_score_count"
    candidate_scores = metric(text, scores, model_version=str(OTHER), variant=CANDIDATE)
    assert candidate_scores == len(on_candidate) + 1
    champion_scores = metric(text, scores, model_version=str(GOOD), variant=CHAMPION)
    assert champion_scores == len(customers) - len(on_candidate)
    ok = {"endpoint": "/predict", "status": "200"}
    requests = "churnloop_requests_total"
    assert metric(text, requests, **ok, model_version=str(OTHER), variant=CANDIDATE) == 1
    assert metric(text, requests, **ok, model_version=f"{GOOD}+{OTHER}", variant="mixed") == 1
    logged = logged_predictions(canary)
    rows = set(zip(logged[ENTITY], logged["variant"], logged["model_version"], strict=True))
    assert rows == {(c, expected[c], VERSIONS[expected[c]]) for c in customers}


def test_during_a_canary_each_variant_shadows_the_other_and_their_agreement_is_counted(
    canary, serve
):
    """What the controller's agreement guardrail reads: every shadowed row both ways,
    champion's rows scored by the candidate and the candidate's by the champion."""
    url, server = start_with_candidate(serve, canary_shadow_fraction=1.0)
    online = last_day_features(canary)
    customers = [int(customer) for customer in online.index[:40]]

    answers(url, customers)
    for customer in customers[:6]:
        assert httpx.post(f"{url}/predict", json={"customer_id": customer}).status_code == 200
    server.prediction_log.flush()

    logged = logged_predictions(canary)
    assert len(logged) == len(customers) + 6
    other = {CHAMPION: OTHER, CANDIDATE: GOOD}
    assert logged["shadow_version"].tolist() == logged["variant"].map(other).tolist()
    for version in (GOOD, OTHER):
        shadowed = logged[logged["shadow_version"] == version]
        expected = offline(canary, version, online.loc[shadowed[ENTITY], FEATURES])
        assert shadowed["shadow_prediction"].tolist() == pytest.approx(expected.tolist(), abs=1e-12)
    threshold = canary.serving_threshold
    agree = (logged[PREDICTION] >= threshold) == (logged["shadow_prediction"] >= threshold)
    logged_pairs = Counter(
        zip(
            logged["model_version"].astype(str),
            logged["variant"],
            logged["shadow_version"].astype(str),
            agree.map({True: "agree", False: "disagree"}),
            strict=True,
        )
    )
    counted = shadow_agreement(httpx.get(f"{url}/metrics").text)
    assert {pair: count for pair, count in counted.items() if count} == logged_pairs
    assert {variant for _, variant, _, _ in logged_pairs} == {CHAMPION, CANDIDATE}
    assert sum(counted.values()) == len(logged)


def shadow_agreement(text: str) -> dict[tuple[str, str, str, str], float]:
    """Every sample of the agreement counter, by its labels."""
    labels = ("model_version", "variant", "shadow_version", "agreement")
    return {
        tuple(sample.labels[name] for name in labels): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "churnloop_shadow_agreement_total"
    }


def test_a_malformed_share_or_a_candidate_that_is_champion_routes_nobody_to_it(
    world, serve, caplog
):
    point(world, registry.CANDIDATE, OTHER)
    client = registry.connect(world)
    client.set_registered_model_tag(world.model_name, registry.CANARY_SHARE_TAG, "lots")
    customers = [int(customer) for customer in last_day_features(world).index[:20]]
    with caplog.at_level(logging.WARNING, logger="churnloop.serving.follower"):
        url, _ = start_with_candidate(serve, serving_admin_token=TOKEN, serving_poll_seconds=3600)

    assert variants(url, customers) == {CHAMPION}
    state = httpx.get(f"{url}/model").json()
    assert state["candidate"]["version"] == OTHER and state["canary_share"] == 0
    assert "'lots' is not <version>:<share in [0, 1]>" in state["canary_share_error"]
    assert any(registry.CANARY_SHARE_TAG in record.getMessage() for record in caplog.records)

    registry.set_canary_share(world, OTHER, 1.0)
    reload = httpx.post(f"{url}/admin/reload", headers=ADMIN).json()
    assert reload["canary"] == {"candidate": OTHER, "share": 1.0, "problem": None}
    assert variants(url, customers) == {CANDIDATE}

    point(world, registry.CANDIDATE, GOOD)
    httpx.post(f"{url}/admin/reload", headers=ADMIN)
    assert variants(url, customers) == {CHAMPION}
    assert httpx.get(f"{url}/model").json()["candidate"] is None
