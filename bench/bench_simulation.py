"""How long one simulated day takes, and how much memory it needs.

Measures ``generate_snapshots``, ``generate_labels`` and a full ``simulate`` day (snapshot
+ labels of the day 30 days earlier, both written as Parquet to a temporary landing zone)
at 100k and 1M customers, beside two peers measured in the same run:

- the floor: numpy drawing as many plain uniforms as the simulator draws variates
  (18 per customer: 12 for the profile, 6 for the day's behaviour);
- a naive generator: a Python loop over customers with ``random`` building rows, timed
  on 20k customers and extrapolated linearly.

Each case runs in a fresh child process, so its peak RSS (``ru_maxrss``, above the
child's footprint after imports and a warm-up call) is its own.

Run: ``.venv/bin/python bench/bench_simulation.py`` (figures also to bench/results/simulation.json).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa
from harness import write_results

from churnloop import schema
from churnloop.demo.simulation import BASELINE, generate_labels, generate_snapshots, simulate
from churnloop.settings import Settings

DAY = dt.date(2026, 3, 4)
RUNS = 3
DRAWS_PER_CUSTOMER = 18
NAIVE = "peer: naive per-customer Python loop"
NAIVE_SAMPLE = 20_000


def _naive_snapshots(customers: int) -> pa.Table:
    """The obvious first version: one Python dict per customer."""
    rng = random.Random(42)
    stamp = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
    rows = []
    for customer in range(1, customers + 1):
        logins = int(rng.expovariate(1 / 1.6))
        rows.append(
            {
                schema.ENTITY: customer,
                schema.TIMESTAMP: stamp,
                "plan": rng.choice(schema.PLANS),
                "region": rng.choice(schema.REGIONS),
                "contract": rng.choice(schema.CONTRACTS),
                "age": min(100, max(18, round(rng.gauss(31, 6.5)))),
                "tenure_months": int(rng.gammavariate(1.3, 18.0)),
                "monthly_charges": round(rng.lognormvariate(3.8, 0.5), 2),
                "logins": logins,
                "session_minutes": round(rng.gammavariate(logins + 1, 9.0), 2) if logins else 0.0,
                "support_tickets": int(rng.random() < 0.05),
                "payment_failures": int(rng.random() < 0.02),
                "spend": round(rng.gammavariate(0.6, 3.0), 2),
                "days_since_last_login": 0 if logins else int(rng.expovariate(0.5)) + 1,
            }
        )
    return pa.Table.from_pylist(rows, schema=schema.SNAPSHOT_SCHEMA)


def _uniform_floor(customers: int) -> np.ndarray:
    return np.random.default_rng(42).random(DRAWS_PER_CUSTOMER * customers)


def _simulate_one_day(customers: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        history_start = DAY - dt.timedelta(days=schema.LABEL_DELAY_DAYS)
        settings = Settings(home=home, landing_uri=f"{home}/landing")
        simulate(
            settings,
            DAY,
            1,
            customers,
            BASELINE,
            progress=lambda line: None,
            history_start=history_start,
        )


CASES: dict[str, Callable[[int], object]] = {
    "generate_snapshots": lambda n: generate_snapshots(DAY, n),
    "generate_labels": lambda n: generate_labels(DAY, n),
    "simulate (1 day, Parquet written)": _simulate_one_day,
    "peer: numpy uniforms, same draw count (floor)": _uniform_floor,
    NAIVE: _naive_snapshots,
}


def _measure(case: str, customers: int) -> tuple[float, float]:
    """Median seconds of RUNS calls and peak RSS growth in MB, inside a child process.

    A small warm-up call first pays the lazy imports (pyarrow loads pandas on first use),
    which are neither the case's time nor its memory.
    """
    CASES[case](1_000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = []
    for _ in range(RUNS):
        began = time.perf_counter()
        CASES[case](customers)
        seconds.append(time.perf_counter() - began)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return statistics.median(seconds), (peak - before) / 1024


def main() -> None:
    context = multiprocessing.get_context("spawn")
    print("| what | customers | median of 3 (s) | peak RSS growth (MB) |")
    print("| --- | ---: | ---: | ---: |")
    rows = []
    for customers in (100_000, 1_000_000):
        for case in CASES:
            measured = min(customers, NAIVE_SAMPLE) if case == NAIVE else customers
            with context.Pool(1) as pool:
                seconds, megabytes = pool.apply(_measure, (case, measured))
            what, memory = case, f"{megabytes:.0f}"
            if measured < customers:
                seconds *= customers / measured
                what, memory = f"{case} (timed at {measured:,}, extrapolated)", "n/a"
                megabytes = None
            print(f"| {what} | {customers:,} | {seconds:.2f} | {memory} |", flush=True)
            rows.append(
                {
                    "case": case,
                    "what": what,
                    "customers": customers,
                    "seconds": seconds,
                    "peak_rss_growth_mb": megabytes,
                }
            )
    write_results("simulation", {"runs": RUNS, "rows": rows})


if __name__ == "__main__":
    main()
