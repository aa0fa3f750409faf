"""Waiting in tests: poll a condition until it holds, or fail naming what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    condition: Callable[[], Any],
    timeout: float = 30,
    what: str = "condition",
    *,
    interval: float = 0.05,
) -> Any:
    """Poll ``condition`` every ``interval`` seconds until it returns something truthy;
    returns that. It is asked at least once, and once more at the deadline. The default
    interval suits a local server; poll Airflow's REST API every couple of seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() >= deadline:
            break
        time.sleep(min(interval, max(deadline - time.monotonic(), 0)))
    if result:
        return result
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
