"""Routing a canary's customers: stable per customer and across processes, the share honoured,
each candidate drawing its own customers.

The share checks are binomial: over 2,000 customers routed independently with p = 0.5, the
count's standard deviation is sqrt(2000 * 0.25) ~ 22.4 customers, so a margin of 100 (5
points) is 4.5 deviations: a uniform hash misses it for about 1 set of customers in 130,000.
The customers and versions are fixed, so each check's outcome is fixed too.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from churnloop.serving.routing import CANDIDATE, CHAMPION, position, variant_for

CUSTOMERS = range(1, 2_001)
CANDIDATE_VERSION = 7


def on_candidate(version: int, share: float) -> set[int]:
    return {key for key in CUSTOMERS if variant_for(key, version, share) == CANDIDATE}


def test_half_the_customers_go_to_the_candidate_at_a_share_of_one_half():
    assert 900 <= len(on_candidate(CANDIDATE_VERSION, 0.5)) <= 1_100


@pytest.mark.parametrize(("share", "expected"), [(0.0, set()), (1.0, set(CUSTOMERS))])
def test_the_ends_of_the_share_route_everyone_one_way(share, expected):
    assert on_candidate(CANDIDATE_VERSION, share) == expected


def test_raising_the_share_keeps_the_candidates_customers_on_it():
    """A canary step adds customers; nobody flips back to the champion."""
    first_step, second_step = (
        on_candidate(CANDIDATE_VERSION, 0.1),
        on_candidate(CANDIDATE_VERSION, 0.5),
    )
    assert first_step and first_step < second_step


def test_another_candidate_draws_its_own_customers():
    """Independent draws at p = 0.5 agree on half the customers (1,000 +- 100, as above)."""
    this, next_one = on_candidate(CANDIDATE_VERSION, 0.5), on_candidate(CANDIDATE_VERSION + 1, 0.5)
    moved = len(this ^ next_one)
    assert 900 <= moved <= 1_100


def test_no_customer_or_no_candidate_means_the_champion():
    assert variant_for(None, CANDIDATE_VERSION, 1.0) == CHAMPION, "explicit features"
    assert variant_for(42, None, 1.0) == CHAMPION


def test_positions_are_the_same_in_another_process():
    """Every worker and a restarted server route alike: nothing depends on the process
    (Python's own ``hash`` of a string changes with each one)."""
    keys = [1, 2, 3, 123_456_789]
    script = (
        "from churnloop.serving.routing import position;"
        f"print([position(key, {CANDIDATE_VERSION}) for key in {keys}])"
    )
    other = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert other.stdout.strip() == str([position(key, CANDIDATE_VERSION) for key in keys])
