"""Live traffic for the demo: customers scored by id while the loop runs, so that a canary
has requests to judge (a candidate bakes on live traffic only)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx


@dataclass
class TrafficCounts:
    """Answers by (version, variant), and requests that got no answer (no model loaded yet,
    a server restarting: the sender carries on)."""

    answers: Counter[tuple[int, str]] = field(default_factory=Counter)
    failed: int = 0

    def describe(self) -> str:
        served = ", ".join(
            f"v{version} {variant} {count:,}"
            for (version, variant), count in sorted(self.answers.items())
        )
        total, served = sum(self.answers.values()), served or "none answered"
        return f"{total:,} requests by customer_id ({served}; {self.failed:,} failed)"


@contextmanager
def live_traffic(
    url: str, customers: Sequence[int], rate: float, timeout: float = 10.0
) -> Iterator[TrafficCounts]:
    """Score ``customers`` by id, in turn, at about ``rate`` requests a second on a thread of
    its own until the block ends; the counts fill in as answers come."""
    counts, stop = TrafficCounts(), threading.Event()
    sender = threading.Thread(
        target=_send, args=(url, customers, rate, timeout, counts, stop), daemon=True
    )
    sender.start()
    try:
        yield counts
    finally:
        stop.set()
        sender.join()


def _send(
    url: str,
    customers: Sequence[int],
    rate: float,
    timeout: float,
    counts: TrafficCounts,
    stop: threading.Event,
) -> None:
    interval, due, index = 1 / rate, time.monotonic(), 0
    with httpx.Client(base_url=url, timeout=timeout) as client:
        while not stop.is_set():
            customer = customers[index % len(customers)]
            index += 1
            try:
                answer = client.post("/predict", json={"customer_id": customer})
                answer.raise_for_status()
                body = answer.json()
                counts.answers[(body["version"], body["variant"])] += 1
            except httpx.HTTPError:
                counts.failed += 1
            due = max(due + interval, time.monotonic())
            stop.wait(due - time.monotonic())
