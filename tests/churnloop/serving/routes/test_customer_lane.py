"""The customer_id lane answers as FastAPI's route does: the same requests sent to a server
with the lane and to one without it get the same status, headers and body, and count the
same in /metrics; only a body of exactly one int64 ``customer_id`` takes the lane."""

from __future__ import annotations

import json
from contextlib import ExitStack

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from churnloop import registry
from churnloop.serving.app import create_app, serve_in_background
from churnloop.serving.routes.customer_lane import CustomerIdLane
from tests.churnloop.serving_support import last_day_features, point
from tests.polling import wait_for

UNKNOWN = 999_999
COUNTED = ("churnloop_requests_total", "churnloop_errors_total", "churnloop_prediction_score")
JSON = {"content-type": "application/json"}


def bodies_for(customer: int) -> tuple[list[tuple[bytes, dict]], list[tuple[bytes, dict]]]:
    """(body, headers) pairs: those the lane answers, then those it leaves to the route."""
    lane = [
        {"customer_id": customer},
        {"customer_id": UNKNOWN},
        {"customer_id": -(2**63)},
    ]
    route = [
        {"customer_id": 2**63},
        {"customer_id": float(customer)},
        {"customer_id": True},
        {"customer_id": str(customer)},
        {"customer_id": None},
        {"customer_id": customer, "features": None},
        {"customer_id": customer, "extra": 1},
        {"instances": [{"customer_id": customer}, {"customer_id": UNKNOWN}]},
        [customer],
    ]
    padded = json.dumps({"customer_id": customer}, indent=80).encode()
    return (
        [(json.dumps(body).encode(), JSON) for body in lane],
        [(json.dumps(body).encode(), JSON) for body in route]
        + [
            (padded, JSON),
            (b'{"customer_id": 1', JSON),
            (json.dumps({"customer_id": customer}).encode(), {"content-type": "text/plain"}),
            (json.dumps({"customer_id": customer}).encode(), {}),
        ],
    )


@pytest.fixture
def with_and_without_lane(world):
    """Two servers on ``world``: the app as built, and one without `CustomerIdLane`."""
    with ExitStack() as stack:

        def start(ready: bool = True) -> tuple[str, str]:
            urls = []
            for lane in (True, False):
                app = create_app(world)
                if not lane:
                    app.user_middleware = [
                        item for item in app.user_middleware if item.cls is not CustomerIdLane
                    ]
                urls.append(stack.enter_context(serve_in_background(app)))
            if ready:
                for url in urls:
                    wait_for(lambda u=url: httpx.get(f"{u}/ready").is_success, what="/ready")
            return urls[0], urls[1]

        yield start


@pytest.fixture
def lane_answers(monkeypatch) -> list[int]:
    """The ids the lane answered (its `_answer` spied on)."""
    answered: list[int] = []
    original = CustomerIdLane._answer

    async def spied(self, request, customer_id):
        answered.append(customer_id)
        return await original(self, request, customer_id)

    monkeypatch.setattr(CustomerIdLane, "_answer", spied)
    return answered


def exchange(url: str, body: bytes, headers: dict) -> tuple[int, dict, object]:
    response = httpx.post(f"{url}/predict", content=body, headers=headers)
    kept = {name: response.headers.get(name) for name in ("content-type", "content-length")}
    return response.status_code, kept, response.json()


def counted(url: str) -> dict[tuple, float]:
    """The samples of `COUNTED` families (durations by their count) but other endpoints'
    (the /ready polls before each server was ready differ)."""
    text = httpx.get(f"{url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        if family.name in COUNTED or family.name == "churnloop_request_duration_seconds"
        for sample in family.samples
        if not sample.name.endswith(("_created", "_sum", "_bucket"))
        and sample.labels.get("endpoint", "/predict") == "/predict"
    }


def test_the_lane_answers_and_counts_as_the_route_does(world, with_and_without_lane, lane_answers):
    lane_url, route_url = with_and_without_lane()
    customer = int(last_day_features(world).index[0])
    lane_bodies, route_bodies = bodies_for(customer)

    for body, headers in lane_bodies + route_bodies:
        assert exchange(lane_url, body, headers) == exchange(route_url, body, headers), body

    lane_ids = [json.loads(body)["customer_id"] for body, _ in lane_bodies]
    assert sorted(lane_answers) == sorted(lane_ids)
    # A request is counted once its answer is sent: the last one's may still be on its way.
    wait_for(lambda: counted(lane_url) == counted(route_url), timeout=10, what="equal counts")
    statuses = [exchange(lane_url, body, headers)[0] for body, headers in lane_bodies]
    assert statuses == [200, 404, 404]


def test_without_a_model_the_lane_answers_the_routes_503(world, with_and_without_lane):
    point(world, registry.CHAMPION, None)
    lane_url, route_url = with_and_without_lane(ready=False)
    body = json.dumps({"customer_id": 1}).encode()

    answer = exchange(lane_url, body, JSON)

    assert answer == exchange(route_url, body, JSON)
    assert answer[0] == 503 and "no model loaded yet" in answer[2]["detail"]
