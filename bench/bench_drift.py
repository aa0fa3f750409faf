"""How long the daily drift report takes at 100k and 1M rows x 20 columns, and its memory.

Cases, each on a reference and a current sample of the same number of rows:

- verdict: ``compute_drift`` on all rows (PSI on reference quantiles, Jensen-Shannon, each
  with its likelihood-ratio test);
- peer: Evidently's ``DataDriftPreset`` on all rows with the same methods and thresholds,
  HTML rendered (``build_report`` with no sampling);
- whole path: ``compute_drift`` + ``build_report`` (Evidently's HTML on the default
  50k-row sample per side) + ``save_report`` into a local lake.

Data: 12 numeric columns (normal, lognormal, Poisson counts) and 8 categorical ones
(3-12 string categories); the current sample shifts 3 numeric and 2 categorical columns,
so the report has drift to show.

Each case runs in a fresh child process: the time is the median of ``--runs`` runs,
the memory the peak RSS growth above the child's footprint after generating both
samples, importing Evidently and a warm-up on 1,000 rows. Evidently at 1M rows is
slow, so it runs once unless ``--runs-evidently-1m`` says more.

Run: ``.venv/bin/python bench/bench_drift.py`` (figures also to bench/results/drift.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import resource
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from harness import write_results

from churnloop.monitoring.effect_sizes import compute_drift
from churnloop.monitoring.report import build_report, save_report
from churnloop.settings import Settings

DAY = dt.date(2026, 3, 4)
SIZES = (100_000, 1_000_000)
NUMERIC, CATEGORICAL = 12, 8
PEER = "peer: Evidently DataDriftPreset, all rows, HTML"


def samples(rows: int, seed: int, *, drifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for i in range(NUMERIC):
        shift = 0.5 if drifted and i < 3 else 0.0
        if i % 3 == 0:
            columns[f"num_{i}"] = rng.normal(shift, 1.0, rows)
        elif i % 3 == 1:
            columns[f"num_{i}"] = rng.lognormal(shift, 0.5, rows)
        else:
            columns[f"num_{i}"] = rng.poisson(3 + 2 * shift, rows)
    for i in range(CATEGORICAL):
        values = np.array([f"v{k}" for k in range(3 + i)])
        weights = np.linspace(1.0, 2.0, values.size)
        if drifted and i < 2:
            weights = weights[::-1] ** 3
        columns[f"cat_{i}"] = rng.choice(values, rows, p=weights / weights.sum())
    return pd.DataFrame(columns)


def _verdict(reference: pd.DataFrame, current: pd.DataFrame, lake_home: str) -> None:
    compute_drift(reference, current, list(reference.columns))


def _evidently_all_rows(reference: pd.DataFrame, current: pd.DataFrame, lake_home: str) -> None:
    """Evidently alone: the small verdict only supplies the per-column methods and thresholds."""
    result = compute_drift(reference.head(1_000), current.head(1_000), list(reference.columns))
    build_report(reference, current, result, title="bench", notes=[], sample_rows=len(current))


def _whole_path(reference: pd.DataFrame, current: pd.DataFrame, lake_home: str) -> None:
    result = compute_drift(reference, current, list(reference.columns))
    report = build_report(reference, current, result, title="bench", notes=[])
    save_report(Settings(home=lake_home), DAY, report)


CASES: dict[str, Callable[[pd.DataFrame, pd.DataFrame, str], None]] = {
    "verdict: compute_drift, all rows": _verdict,
    PEER: _evidently_all_rows,
    "whole path: verdict + report (HTML on 50k sample) + save": _whole_path,
}


def _measure(case: str, rows: int, runs: int) -> tuple[list[float], float]:
    """Seconds of each run and peak RSS growth in MB, inside a child process."""
    reference, current = samples(rows, 1, drifted=False), samples(rows, 2, drifted=True)
    with tempfile.TemporaryDirectory() as home:
        CASES[case](reference.head(1_000), current.head(1_000), home)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        seconds = []
        for _ in range(runs):
            began = time.perf_counter()
            CASES[case](reference, current, home)
            seconds.append(time.perf_counter() - began)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return seconds, (peak - before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--runs-evidently-1m", type=int, default=1)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    print("| what | rows per side x columns | median (s) | runs | peak RSS growth (MB) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    results = []
    for rows in SIZES:
        for case in CASES:
            runs = args.runs_evidently_1m if case == PEER and rows == SIZES[-1] else args.runs
            with context.Pool(1) as pool:
                seconds, megabytes = pool.apply(_measure, (case, rows, runs))
            shape = f"{rows:,} x {NUMERIC + CATEGORICAL}"
            median = statistics.median(seconds)
            print(f"| {case} | {shape} | {median:.2f} | {runs} | {megabytes:.0f} |", flush=True)
            results.append(
                {
                    "case": case,
                    "rows": rows,
                    "columns": NUMERIC + CATEGORICAL,
                    "seconds": median,
                    "runs": runs,
                    "peak_rss_growth_mb": megabytes,
                }
            )
    write_results("drift", {"rows": results})


if __name__ == "__main__":
    main()
