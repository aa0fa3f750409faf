"""The demo's live traffic against a real HTTP server: every customer in turn, answers
counted by version and variant, failures counted and passed over, the rate held."""

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from churnloop.demo.traffic import live_traffic

UNKNOWN = 3


class FakeScorer(BaseHTTPRequestHandler):
    """Answers /predict as the model server does: odd customers on the candidate (v2);
    customer 3 is unknown (404)."""

    asked: list[int] = []

    def do_POST(self) -> None:
        customer = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["customer_id"]
        self.asked.append(customer)
        if customer == UNKNOWN:
            self.send_response(404)
            self.end_headers()
            return
        odd = customer % 2
        body = json.dumps(
            {"version": 2 if odd else 1, "variant": "candidate" if odd else "champion"}
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def scorer() -> Iterator[str]:
    FakeScorer.asked = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeScorer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_customers_are_scored_in_turn_and_answers_counted(scorer: str):
    with live_traffic(scorer, [1, 2, 3, 4], rate=200) as counts:
        deadline = time.monotonic() + 10
        while len(FakeScorer.asked) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
    asked = FakeScorer.asked
    assert asked[:8] == [1, 2, 3, 4, 1, 2, 3, 4]
    assert counts.failed == asked.count(UNKNOWN) > 0, "a 404 is counted, the sender carries on"
    assert counts.answers == {
        (2, "candidate"): asked.count(1),
        (1, "champion"): asked.count(2) + asked.count(4),
    }
    assert counts.describe().startswith(f"{len(asked) - counts.failed:,} requests by customer_id")


def test_the_rate_is_held_not_flooded(scorer: str):
    """At 20 a second for a second: about 20 requests, where an unpaced loop sends hundreds."""
    with live_traffic(scorer, [2], rate=20):
        time.sleep(1.0)
    assert 5 <= len(FakeScorer.asked) <= 30
