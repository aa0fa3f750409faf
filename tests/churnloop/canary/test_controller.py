"""The canary's walk on a real model server (uvicorn over HTTP, in a thread) and a real
registry, with live traffic: a healthy candidate goes 10% -> 50% -> 100% and becomes
``@champion``; a candidate whose answers are slow, or whose scores are shifted, is rolled
back within one step naming the guardrail; a server restarted mid-canary routes every
customer as before and the canary counts what both servers served. Faults are injected in
the candidate's scoring inside the real server (`ServedModel.probabilities`)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from pydantic import SecretStr
from scipy.special import expit, logit

from churnloop import champion, registry
from churnloop.canary import controller
from churnloop.canary.guardrails import GUARDRAILS
from churnloop.canary.state import STEP_TAG_PREFIX, load_state
from churnloop.serving.model import ServedModel
from churnloop.serving.routing import CANDIDATE, variant_for
from churnloop.settings import Settings
from tests.churnloop.serving_support import GOOD, LAST_DAY, OTHER, TOKEN, last_day_features
from tests.polling import wait_for

STEPS = (0.1, 0.5, 1.0)
SENDERS = 6
"""Clients sending at once: a slow candidate holds some while the others go on."""
BAKE_SECONDS = 1.0
CANARY = {
    "serving_admin_token": TOKEN,
    "serving_poll_seconds": 3600,
    "canary_min_requests": 100,
    "canary_evidence_wait_factor": 60,
    "canary_shadow_fraction": 1.0,
}
"""Each step judged once it has 100 requests per variant (a 10% step: about 1,000 in all,
enough for a finite upper bound of the champion's p99 at the guardrails' confidence), every
request shadowed (the score and agreement guardrails count shadowed requests)."""


@pytest.fixture
def candidate(world: Settings) -> Settings:
    """`OTHER` made ``@candidate`` by a blessed promotion beside champion `GOOD`."""
    result = champion.promote(
        world, OTHER, blessed=True, gate_failures=[], logical_date=LAST_DAY, canary=True
    )
    assert result.candidate and not result.promoted
    return world


@contextmanager
def traffic(url: str, customers: list[int], senders: int = SENDERS) -> Iterator[None]:
    """Single-customer /predict requests round the customers, from ``senders`` threads of a
    process of their own: clients sharing the in-process server's interpreter would slow
    the champion's answers as much as a slow candidate's."""
    context = multiprocessing.get_context("spawn")
    answered = context.Event()
    process = context.Process(
        target=send_requests, args=(url, customers, senders, answered), daemon=True
    )
    process.start()
    assert answered.wait(timeout=120), "the traffic process sent nothing"
    try:
        yield
    finally:
        process.terminate()
        process.join(timeout=30)


def send_requests(url: str, customers: list[int], senders: int, answered) -> None:
    """Send until terminated (the body of `traffic`'s process); ``answered`` is set once a
    request was answered."""

    def send(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for index in itertools.count(offset, senders):
                with contextlib.suppress(httpx.HTTPError):
                    client.post("/predict", json={"customer_id": customers[index % len(customers)]})
                    answered.set()

    threads = [threading.Thread(target=send, args=(offset,)) for offset in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def walk(settings: Settings, timeout: float = 120) -> list[str]:
    """Poke the canary as its sensor would until it is done; the messages it logged."""
    messages = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = controller.advance(settings, OTHER, STEPS, BAKE_SECONDS)
        messages.append(progress.message)
        if progress.done:
            return messages
        time.sleep(0.3)
    raise AssertionError(f"the canary did not end within {timeout} s: {messages[-3:]}")


def started(serve, world: Settings, **overrides) -> tuple[str, Settings]:
    url, _ = serve(**{**CANARY, **overrides})
    port = int(url.rsplit(":", 1)[1])
    update = {**CANARY, **overrides, "serving_port": port, "serving_admin_token": SecretStr(TOKEN)}
    return url, world.model_copy(update={**update, "deploy_start_server": False})


def customers(world: Settings) -> list[int]:
    return [int(customer) for customer in last_day_features(world).index]


def slower_candidate(monkeypatch, seconds: float) -> None:
    """The candidate's answers take ``seconds`` longer (awaited: the server stays free for
    the champion's customers, as a slow dependency of one model would leave it)."""
    from churnloop.serving.routes import predict

    original = predict.score

    async def score(server, instances, assignments, batch):
        if any(assigned.variant == CANDIDATE for assigned in assignments):
            await asyncio.sleep(seconds)
        return await original(server, instances, assignments, batch)

    monkeypatch.setattr(predict, "score", score)


def shifted_candidate(monkeypatch, log_odds: float) -> None:
    """The candidate's scores moved by ``log_odds`` (after it loaded: the server checks a
    model's scores against its pipeline when loading it)."""
    original = ServedModel.probabilities

    def probabilities(self, matrix):
        scores = original(self, matrix)
        if self.version != OTHER:
            return scores
        return expit(logit(np.clip(scores, 1e-9, 1 - 1e-9)) + log_odds)

    monkeypatch.setattr(ServedModel, "probabilities", probabilities)


def test_a_healthy_candidate_widens_step_by_step_and_becomes_champion(candidate, serve):
    url, settings = started(serve, candidate)

    with traffic(url, customers(candidate)):
        messages = walk(settings)

    assert registry.aliases(candidate)[registry.CHAMPION] == OTHER
    assert registry.CANDIDATE not in registry.aliases(candidate)
    assert registry.aliases(candidate)[registry.PREVIOUS_CHAMPION] == GOOD
    assert any("widened to 50%" in message for message in messages)
    assert any("widened to 100%" in message for message in messages)
    tags = registry.model_version(candidate, OTHER).tags
    assert [tags[f"{STEP_TAG_PREFIX}{n}"] for n in (1, 2, 3)], "each step recorded"
    events = [(e.version, e.kind) for e in champion.history_events(candidate)]
    started_and_passed = [(OTHER, "canary-step")] * 4
    assert events[-6:] == [(OTHER, "candidate"), *started_and_passed, (OTHER, "canary")]
    assert httpx.get(f"{url}/model").json()["version"] == OTHER


@pytest.mark.parametrize(
    ("inject", "guardrail", "senders", "least"),
    [
        (lambda patch: slower_candidate(patch, 3.0), "latency_p99", 20, 30),
        (lambda patch: shifted_candidate(patch, 4.0), "score_drift", SENDERS, 100),
    ],
    ids=["latency", "shifted-scores"],
)
def test_a_faulty_candidate_is_rolled_back_in_its_first_step_naming_the_guardrail(
    candidate, serve, monkeypatch, inject, guardrail, senders, least
):
    """3 s more puts the candidate's p99 lower bound at the 1 s bucket edge, above 1.5x any
    champion upper bound up to 250 ms, which a loaded machine's in-process server can reach
    (more clients, and 30 requests judged, so that slow answers do not stall the test)."""
    url, settings = started(serve, candidate, canary_min_requests=least)
    controller.advance(settings, OTHER, STEPS, BAKE_SECONDS)  # loaded, 10% of customers
    inject(monkeypatch)

    with (
        traffic(url, customers(candidate), senders),
        pytest.raises(controller.CanaryRolledBack) as failed,
    ):
        walk(settings)

    assert f"step 1/3 (10% of customers): {guardrail}" in str(failed.value)
    assert registry.aliases(candidate)[registry.CHAMPION] == GOOD, "the champion never moved"
    assert registry.CANDIDATE not in registry.aliases(candidate)
    last = champion.history_events(candidate)[-1]
    assert last.kind == "canary-rollback" and guardrail in last.reason
    httpx.post(f"{url}/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    answer = httpx.post(f"{url}/predict", json={"customer_id": customers(candidate)[0]}).json()
    assert answer["version"] == GOOD, "the server routes nobody to the rolled-back candidate"


def test_a_server_restarted_mid_canary_routes_alike_and_counts_both_runs(candidate, serve):
    everyone = customers(candidate)
    url, settings = started(serve, candidate)
    with traffic(url, everyone):
        controller.advance(settings, OTHER, STEPS, 3600)  # started: 10%, a long bake
        time.sleep(2)
        controller.advance(settings, OTHER, STEPS, 3600)
    before = load_state(candidate, OTHER).step_evidence.candidate.requests
    routed = _variants(url, everyone)

    url, settings = started(serve, candidate)  # another server on the same registry
    wait_for(lambda: httpx.get(f"{url}/model").json()["canary_share"] == STEPS[0], what="canary")
    assert _variants(url, everyone) == routed
    expected = {c: variant_for(c, OTHER, STEPS[0]) for c in everyone}
    assert routed == expected and CANDIDATE in routed.values()
    with traffic(url, everyone):
        time.sleep(2)
        controller.advance(settings, OTHER, STEPS, 3600)
    after = load_state(candidate, OTHER).step_evidence.candidate.requests
    assert before > 0 and after > before, "the new server's requests add to the old one's"


def _variants(url: str, everyone: list[int]) -> dict[int, str]:
    instances = [{"customer_id": customer} for customer in everyone]
    body = httpx.post(f"{url}/predict", json={"instances": instances}, timeout=30).json()
    return {item["customer_id"]: item["variant"] for item in body["predictions"]}


def test_a_person_finishes_a_canary_and_the_sensor_succeeds(candidate, serve):
    _, settings = started(serve, candidate)
    controller.advance(settings, OTHER, STEPS, 3600)
    status = controller.describe(candidate)
    assert status.startswith(f"v{OTHER} on canary beside champion v{GOOD}: step 1/3 (10% of")
    assert all(f"  {name}: wait: " in status for name in GUARDRAILS), status

    assert controller.finish(candidate, "on-call: the candidate fixes an incident") == OTHER

    progress = controller.advance(settings, OTHER, STEPS, 3600)
    assert progress.done and "finished by hand: on-call" in progress.message
    assert registry.aliases(candidate)[registry.CHAMPION] == OTHER
    assert controller.describe(candidate) == "model 'churn-model' has no canary running"


def test_a_person_aborts_a_canary_and_the_sensor_fails_saying_why(candidate, serve):
    _, settings = started(serve, candidate)
    controller.advance(settings, OTHER, STEPS, 3600)
    with pytest.raises(ValueError, match="needs a reason"):
        controller.abort(candidate, " ")

    assert (
        controller.abort(candidate, "on-call: complaints from the candidate's customers") == OTHER
    )

    with pytest.raises(controller.CanaryRolledBack, match="aborted by hand: on-call"):
        controller.advance(settings, OTHER, STEPS, 3600)
    assert registry.aliases(candidate)[registry.CHAMPION] == GOOD
    assert registry.aliases_and_split(candidate)[1] == registry.TrafficSplit()
