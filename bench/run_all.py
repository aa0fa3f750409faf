"""``make bench``: run every benchmark in bench/, then write the figures into docs/benchmarks.md.

Each benchmark is its own script writing ``bench/results/<name>.json``; this driver runs
them one after the other, notes the machine (cores, memory, load average at the start
and the end, since the machine may be shared), and rewrites the generated blocks of
``docs/benchmarks.md``: the header with the summary table (one row per headline figure,
beside its peer and target), and the detailed tables of the DAG parse, loop and
drift-to-serving sections. The prose around them is written by people and left alone.

``--quick`` (what ``make bench`` runs) keeps the whole run within about half an hour on
2 shared cores: the Feast benchmark at 20k customers over 40 feature days and the serving
load at 2,000 requests a run (30 s cap); every figure is still a median of 3 runs. The
loop at 1M customers is not part of it (one run, with its preparation, about 5 minutes): run
``bench_loop.py --customers 1000000 --runs 1 --result loop_1m`` for it, and the summary
shows its stored result with its date, as it does for any benchmark not re-run
(``--only NAME ...`` runs some). The serving and Feast benchmarks and the loop on
Feast's Redis online store (``loop_redis``, 100k customers) need Redis on
127.0.0.1:6379 and are skipped, with a note, when it does not answer. ``loop_tuned`` runs
the loop at 100k customers with tuning on (``TUNED_TRIALS`` trials), beside the bare
script running the same search; its summary row "tuning at 100k" compares the two
searches alone. A result measured after the last ``make bench`` (its script run alone,
then ``--doc-only``) is named in the summary's header with its own date.

Run: ``.venv/bin/python bench/run_all.py [--quick] [--only loop retrain]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_feast import SERVER_LOOKUP
from bench_loop import TUNE_STAGE
from bench_serving import ASSEMBLED_PEER, MLSERVER_INVOCATIONS, MLSERVER_V2, PEER
from harness import RESULTS_DIR, commit, machine, write_results

BENCH = Path(__file__).resolve().parent
DOC = BENCH.parent / "docs" / "benchmarks.md"

REDIS = ("127.0.0.1", 6379)
TUNED_TRIALS = 3
"""Trials of ``loop_tuned``'s search on each side: few, so that the result stays near 10
minutes of ``make bench`` on quiet cores; they measure tuning's cost, not its search."""
FULL: dict[str, list[str]] = {
    "dag_parse": ["bench_dag_parse.py"],
    "simulation": ["bench_simulation.py"],
    "drift": ["bench_drift.py"],
    "serving": ["bench_serving.py"],
    "feast": ["bench_feast.py"],
    "loop": ["bench_loop.py"],
    "loop_redis": [
        "bench_loop.py",
        "--redis",
        f"{REDIS[0]}:{REDIS[1]}",
        "--customers",
        "100000",
        "--result",
        "loop_redis",
    ],
    "loop_tuned": [
        "bench_loop.py",
        "--customers",
        "100000",
        "--tuning-trials",
        str(TUNED_TRIALS),
        "--result",
        "loop_tuned",
    ],
    "retrain": ["bench_retrain.py"],
}
"""Each benchmark's script and its arguments."""
QUICK_ARGUMENTS: dict[str, list[str]] = {
    "feast": ["--customers", "20000", "--feature-days", "40", "--lookups", "500"],
    "serving": ["--requests", "2000", "--max-seconds", "30"],
}


NEEDS_REDIS = ("serving", "feast", "loop_redis")


def _redis_answers() -> bool:
    try:
        socket.create_connection(REDIS, timeout=2).close()
    except OSError:
        return False
    return True


def run_benchmarks(names: list[str], quick: bool) -> dict[str, float]:
    """Run each benchmark script; returns the wall seconds each took."""
    took = {}
    if not _redis_answers():
        skipped = [name for name in names if name in NEEDS_REDIS]
        print(f"no Redis at {REDIS[0]}:{REDIS[1]}: skipping {', '.join(skipped)}", flush=True)
        names = [name for name in names if name not in NEEDS_REDIS]
    for name in names:
        script, *arguments = FULL[name]
        command = [sys.executable, str(BENCH / script), *arguments]
        command += QUICK_ARGUMENTS.get(name, []) if quick else []
        print(f"\n== {name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        subprocess.run(command, cwd=BENCH, check=True)
        took[name] = time.monotonic() - started
    return took


# -- the summary table ------------------------------------------------------------------------


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:,.0f} s"


def _mb(megabytes: float | None) -> str:
    if megabytes is None:
        return "n/a"
    return f"{megabytes / 1024:.1f} GB" if megabytes >= 1024 else f"{megabytes:,.0f} MB"


def _met(condition: bool | None) -> str:
    return "n/a" if condition is None else ("yes" if condition else "**no**")


Row = list[str]


def dag_parse_rows(result: dict) -> list[Row]:
    slowest = max(result["dags"], key=lambda item: item["dags_report_seconds"])
    importing = max(result["dags"], key=lambda item: item["import"]["cpu_seconds"])
    heaviest = max(result["task_imports"], key=lambda item: item["fresh"]["seconds"])
    runs = slowest["runs"]
    return [
        [
            "DAG parse",
            f"`airflow dags report`, slowest file ({slowest['file']})",
            f"{len(result['dags'])} DAG files, each alone",
            f"{_s(slowest['dags_report_seconds'])} ({runs})",
            "n/a",
            "",
            "< 0.3 s per file",
            _met(slowest["dags_report_seconds"] < 0.3),
        ],
        [
            "DAG parse",
            f"import in a fresh interpreter, CPU, slowest ({importing['file']})",
            "after `airflow.sdk`",
            f"{_s(importing['import']['cpu_seconds'])} ({runs})",
            "n/a",
            "",
            "< 0.3 s per file",
            _met(importing["import"]["cpu_seconds"] < 0.3),
        ],
        [
            "task start",
            f"task imports, preloaded fork ({heaviest['task']})",
            "its churnloop modules",
            f"{_s(heaviest['preloaded_fork']['seconds'])} ({heaviest['runs']})",
            "n/a",
            f"fresh interpreter: {_s(heaviest['fresh']['seconds'])}",
            "",
            "",
        ],
    ]


def simulation_rows(result: dict) -> list[Row]:
    rows = {(row["case"], row["customers"]): row for row in result["rows"]}
    ours = rows[("simulate (1 day, Parquet written)", 1_000_000)]
    naive = rows[("peer: naive per-customer Python loop", 1_000_000)]
    return [
        [
            "simulation",
            "one day (snapshots + labels, Parquet)",
            "1M customers",
            f"{_s(ours['seconds'])} ({result['runs']})",
            _mb(ours["peak_rss_growth_mb"]),
            f"naive loop: {_s(naive['seconds'])} (extrapolated)",
            "",
            "",
        ],
    ]


def drift_rows(result: dict) -> list[Row]:
    rows = {(row["case"], row["rows"]): row for row in result["rows"]}
    peer = rows[("peer: Evidently DataDriftPreset, all rows, HTML", 1_000_000)]
    verdict = rows[("verdict: compute_drift, all rows", 1_000_000)]
    whole = rows[("whole path: verdict + report (HTML on 50k sample) + save", 1_000_000)]
    shape = f"1M rows x {whole['columns']} columns a side"
    return [
        [
            "drift report",
            "verdict (all rows)",
            shape,
            f"{_s(verdict['seconds'])} ({verdict['runs']})",
            _mb(verdict["peak_rss_growth_mb"]),
            f"Evidently, all rows: {_s(peer['seconds'])} ({peer['runs']} run)",
            "",
            "",
        ],
        [
            "drift report",
            "whole path (verdict, HTML on a sample, save)",
            shape,
            f"{_s(whole['seconds'])} ({whole['runs']})",
            _mb(whole["peak_rss_growth_mb"]),
            "",
            "< 30 s",
            _met(whole["seconds"] < 30),
        ],
    ]


EXPLICIT_PEERS = {
    PEER: "mlflow models serve",
    MLSERVER_INVOCATIONS: "MLServer, /invocations",
    MLSERVER_V2: "MLServer, V2 protocol",
}
"""The serving benchmark's peers by explicit features, by the names the summary gives them."""
MIN_RPS = {
    "churnloop serve, customer_id (Redis)": 1_500,
    "churnloop serve, explicit features": 1_000,
}
"""Each headline serving row's throughput target (by customer_id: issue 29's)."""


def _serving_peers(cases: dict[str, dict]) -> dict[str, tuple[str, dict, int]]:
    """Each headline serving row's peer and how many times its req/s ours must reach: by
    explicit features the strongest peer measured, to beat; by customer_id Feast's server
    in front of MLServer, 10x (a result from before it has the explicit row's peer)."""
    strongest = max(
        (case for case in EXPLICIT_PEERS if case in cases), key=lambda case: cases[case]["rps"]
    )
    explicit = (EXPLICIT_PEERS[strongest], cases[strongest], 1)
    assembled = ("feast serve + MLServer, two hops", cases.get(ASSEMBLED_PEER), 10)
    return {
        "churnloop serve, customer_id (Redis)": assembled if assembled[1] else explicit,
        "churnloop serve, explicit features": explicit,
    }


def serving_rows(result: dict) -> list[Row]:
    cases = {row["case"]: row for row in result["rows"]}
    rows = []
    for case, (name, peer, factor) in _serving_peers(cases).items():
        row = cases[case]
        target = "beats the peer" if factor == 1 else f">= {factor}x the assembled peer's req/s"
        rows.append(
            [
                "serving",
                case.removeprefix("churnloop serve, "),
                f"{result['concurrency']} in flight, {row['requests']:,.0f} requests",
                f"p99 {row['p99_ms']:.1f} ms, {row['rps']:,.0f} req/s ({result['runs']})",
                "n/a",
                f"{name}: p99 {peer['p99_ms']:.0f} ms, {peer['rps']:,.0f} req/s",
                f"p99 < 10 ms, >= {MIN_RPS[case]:,} req/s, {target}",
                f"p99 {_met(row['p99_ms'] < 10)}, req/s {_met(row['rps'] >= MIN_RPS[case])}, "
                f"{'peer' if factor == 1 else f'{factor}x peer'} "
                f"{_met(row['rps'] >= factor * peer['rps'])}",
            ]
        )
    return rows


def canary_rows(result: dict) -> list[Row]:
    """What a canary adds to the p99 of a request over the same server's plain champion
    path in the same runs: the difference of the runs' pooled p99s, and the range of each
    run's own, which on a shared machine can be wider than the target (none in a result
    from before the canary's figures)."""
    cases = {row["case"]: row for row in result["rows"]}
    rows = []
    for row in result.get("canary", []):
        plain, each = cases[row["plain"]], row["added_p99_ms_runs"]
        rows.append(
            [
                "serving",
                f"{row['case']}: added p99",
                f"{result['concurrency']} in flight, {plain['requests']:,.0f} requests",
                f"{row['added_p99_ms']:+.2f} ms pooled "
                f"(runs {min(each):+.1f} to {max(each):+.1f}), "
                f"server CPU {row['added_cpu_ms']:+.2f} ms/req ({result['runs']})",
                "n/a",
                f"plain champion path: p99 {plain['p99_ms']:.1f} ms, {plain['rps']:,.0f} req/s",
                f"adds < {result['canary_target_ms']:g} ms to p99",
                _met(row["met"]),
            ]
        )
    return rows


def feast_rows(result: dict) -> list[Row]:
    rows = {(row["store"], row["case"], row.get("customers")): row for row in result["rows"]}
    runs = result["runs"]
    size = f"{result['customers']:,} customers x 34 features"
    lines = []
    peers = {"SQLite": "Feast's SqliteOnlineStore, store.materialize", "Redis": "store.materialize"}
    for store, peer in peers.items():
        after = rows[(store, "after: materialize_day, overlap 1 day", None)]
        before = rows[(store, "before: store.materialize (1 day)", None)]
        lines.append(
            [
                "features",
                f"materialize one day into {store}",
                size,
                f"{_s(after['seconds'])} ({runs})",
                "n/a",
                f"{peer}: {_s(before['seconds'])}",
                "",
                "",
            ]
        )
    retrieval = {row["case"]: row for row in result["retrieval"]}
    before = retrieval["before: Feast's DuckDB store"]
    after = retrieval["after: windowed DuckDB store"]
    lines.append(
        [
            "features",
            f"historical retrieval: {result['window_days']}-day training set over "
            f"{result['feature_days']} daily feature partitions",
            f"{after['rows']:,} labelled rows",
            f"{_s(after['seconds'])} ({runs})",
            "n/a",
            f"Feast's DuckDB store: {_s(before['seconds'])}",
            "",
            "",
        ]
    )
    lookup = rows[("Redis", SERVER_LOOKUP, 1)]
    frame = rows[("Redis", "OnlineFeatureReader.read (DataFrame)", 1)]
    bare = rows[("Redis", "peer: bare get_online_features + to_dict", 1)]
    lines.append(
        [
            "features",
            "online lookup, 1 customer, Redis, the model server's read",
            f"{result['lookups']:,} calls",
            f"p99 {lookup['p99_ms']:.2f} ms (1 run)",
            "n/a",
            f"as a DataFrame: p99 {frame['p99_ms']:.2f} ms; bare Feast call + to_dict: "
            f"p99 {bare['p99_ms']:.2f} ms",
            "p99 < 5 ms",
            _met(lookup["p99_ms"] < 5),
        ]
    )
    return lines


def loop_rows(result: dict) -> list[Row]:
    rows = []
    sizes = {size["customers"]: size for size in result["sizes"]}
    for customers, size in sorted(sizes.items()):
        ratio = size["loop_total_seconds"] / size["bare_total_seconds"]
        target, met = "", ""
        if customers == 100_000:
            target, met = "within 2x of the bare script", _met(ratio <= 2)
        if customers >= 1_000_000:
            target, met = "peak memory < 8 GB", _met(size["loop_peak_rss_mb"] < 8 * 1024)
        tuned = f", tuned ({size['tuning']['trials']} trials)" if "tuning" in size else ""
        rows.append(
            [
                "loop",
                "ingest to deploy, all stages"
                + (", Redis online store" if size.get("online_store") == "redis" else "")
                + tuned,
                f"{customers:,} customers, "
                f"{size['window_days']}-day window ({size['training_rows']:,} rows)",
                f"{_s(size['loop_total_seconds'])} ({size['runs']})",
                _mb(size["loop_peak_rss_mb"]),
                f"bare script: {_s(size['bare_total_seconds'])} ({ratio:.1f}x)",
                target,
                met,
            ]
        )
    return rows


def tuning_rows(result: dict) -> list[Row]:
    """Tuning alone, in the loop and in the bare script: the same search on the same rows."""
    rows = []
    for size in result["sizes"]:
        search, loop, bare = size["tuning"], _tune_stage(size, "loop"), _tune_stage(size, "bare")
        aucs = {side: _best_cv_auc(search[side]) for side in ("loop", "bare")}
        rows.append(
            [
                "loop",
                f"tuning at {size['customers'] // 1000:,}k: loop vs bare (Optuna TPE, "
                f"{search['trials']} trials x {search['cv_folds']} day folds)",
                f"{size['customers']:,} customers, "
                f"{size['window_days'] - size['holdout_days']} training days "
                f"({size['customers'] * (size['window_days'] - size['holdout_days']):,} rows)",
                f"{_s(loop['seconds'])} ({loop['runs']})",
                _mb(loop["peak_rss_mb"]),
                f"bare script: {_s(bare['seconds'])} ({loop['seconds'] / bare['seconds']:.1f}x); "
                f"best CV ROC AUC {aucs['loop']} vs {aucs['bare']}",
                "",
                "",
            ]
        )
    return rows


def _tune_stage(size: dict, side: str) -> dict:
    return next(row for row in size[side] if row["stage"] == TUNE_STAGE)


def _best_cv_auc(runs: list[dict]) -> str:
    """The runs' best CV ROC AUC: one figure when every run found the same (it is seeded)."""
    values = sorted({round(run["best_cv_auc"], 4) for run in runs})
    return f"{values[0]:.4f}" if len(values) == 1 else f"{values[0]:.4f}-{values[-1]:.4f}"


DAILY_STAGES = ("ingest", "validate (GX)", "build features", "materialize (Feast, SQLite)")
"""The loop's stages that see every customer whatever the training window."""


def _cpu(size: dict, side: str, stages: tuple[str, ...] | None = None) -> float:
    return sum(row["cpu_seconds"] for row in size[side] if stages is None or row["stage"] in stages)


def growth_rows(sizes: list[dict]) -> list[Row]:
    """How the loop's CPU time grows from each size to the next (target: linear).

    CPU rather than wall time: a single run at 1M on a shared machine says more in CPU.
    The whole loop is compared only between sizes with the same training window.
    """
    rows = []
    ordered = sorted(sizes, key=lambda size: size["customers"])
    for small, large in zip(ordered, ordered[1:], strict=False):
        factor = large["customers"] / small["customers"]
        daily = _cpu(large, "loop", DAILY_STAGES) / _cpu(small, "loop", DAILY_STAGES)
        figures = f"CPU: daily stages {daily:.1f}x"
        linear = daily <= factor * 1.2
        peer = ""
        if large["window_days"] == small["window_days"]:
            whole = _cpu(large, "loop") / _cpu(small, "loop")
            figures += f", whole loop {whole:.1f}x"
            peer = f"bare script {_cpu(large, 'bare') / _cpu(small, 'bare'):.1f}x"
            linear = linear and whole <= factor * 1.2
        rows.append(
            [
                "loop",
                f"growth of time, {small['customers']:,} to {large['customers']:,} customers",
                f"{factor:.0f}x customers",
                figures,
                "",
                peer,
                "linear in customers",
                _met(linear),
            ]
        )
    return rows


def retrain_rows(result: dict) -> list[Row]:
    size = f"{result['customers']:,} customers"
    runs = result["runs"]
    return [
        [
            "retraining",
            "drift day landed to new champion serving",
            size,
            f"{_s(result['to_serving_seconds'])} ({runs})",
            _mb(result["peak_rss_mb"]),
            "",
            "< 10 min",
            _met(result["to_serving_seconds"] < 600),
        ],
        [
            "retraining",
            "rollback: alias moved + `/admin/reload`",
            size,
            f"{_s(result['rollback_reload_seconds'])} ({len(result['rollback_reload_all'])})",
            "n/a",
            "",
            "< 30 s",
            _met(result["rollback_reload_seconds"] < 30),
        ],
        [
            "retraining",
            f"rollback: `churnloop rollback`, server polls ({result['poll_seconds']:g} s)",
            size,
            f"{_s(result['rollback_command_seconds'])} ({len(result['rollback_command_all'])})",
            "n/a",
            "",
            "< 30 s",
            _met(result["rollback_command_seconds"] < 30),
        ],
    ]


SUMMARY: dict[str, Callable[[dict], list[Row]]] = {
    "dag_parse": dag_parse_rows,
    "loop": loop_rows,
    "loop_1m": loop_rows,
    "loop_redis": loop_rows,
    "loop_tuned": lambda result: loop_rows(result) + tuning_rows(result),
    "retrain": retrain_rows,
    "drift": drift_rows,
    "serving": lambda result: serving_rows(result) + canary_rows(result),
    "feast": feast_rows,
    "simulation": simulation_rows,
}
HEADER = ["area", "what", "data size", "median (runs)", "peak memory", "peer", "target", "met?"]


def _table(header: list[str], rows: list[Row], numeric_from: int | None = None) -> str:
    """A Markdown table; columns from ``numeric_from`` on are right-aligned."""
    rule = [
        "---:" if numeric_from is not None and index >= numeric_from else "---"
        for index in range(len(header))
    ]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def summary_block(run: dict[str, Any]) -> str:
    """The header (``run``: the last ``make bench``, from ``results/run_all.json``) and table."""
    rows, dates, sizes = [], {}, []
    for name, render in SUMMARY.items():
        result = _load(name)
        if result is not None:
            dates[name] = result["measured_at"]
            rows += render(result)
            sizes += result.get("sizes", [])
        if name == "loop_1m":  # after both loop results: growth from size to size
            rows += growth_rows(sizes)
    start, end = run["start"], run["machine"]
    lines = [
        f"Last `make bench`: {run['started_at'][:16].replace('T', ' ')} UTC, "
        f"{sum(run['took'].values()) / 60:.0f} minutes, on {start['cores']} cores, "
        f"{start['memory_gb']} GB RAM ({start['platform']}, Python {start['python']}), commit "
        f"{run['commit']}. Load average (1, 5, 15 min) {_load_average(start)} at the start, "
        f"{_load_average(end)} at the end: the machine is shared, so read each figure against "
        "its peer, measured in the same run.",
    ]
    spent = ", ".join(f"{name} {seconds / 60:.1f}" for name, seconds in run["took"].items())
    lines.append(f"Minutes per benchmark: {spent}.")
    return " ".join(lines + _not_from(run, dates)) + "\n\n" + _table(HEADER, rows)


def _not_from(run: dict[str, Any], dates: dict[str, str]) -> list[str]:
    """Which results ``run`` did not measure: older ones, and ones run alone after it."""
    notes = []
    stale = {name: date for name, date in dates.items() if date < run["started_at"]}
    if stale:
        listed = ", ".join(f"{name} ({date[:10]})" for name, date in stale.items())
        notes.append(f"Not re-run by it, figures from earlier runs: {listed}.")
    finished = dt.datetime.fromisoformat(run["started_at"]) + dt.timedelta(
        seconds=sum(run["took"].values()) + 60
    )
    later = {
        name: date for name, date in dates.items() if dt.datetime.fromisoformat(date) > finished
    }
    if later:
        listed = ", ".join(
            f"{name} ({date[:16].replace('T', ' ')} UTC)" for name, date in later.items()
        )
        notes.append(f"Run alone since, on their own dates: {listed}.")
    return notes


def _load_average(figures: dict[str, Any]) -> str:
    return "/".join(f"{value:.1f}" for value in figures["load_average"])


# -- detailed tables ---------------------------------------------------------------------------


def dag_parse_block(result: dict) -> str:
    dags = [
        [
            item["file"],
            f"{item['dags_report_seconds']:.3f}",
            f"{item['import']['seconds']:.3f}",
            f"{item['import']['cpu_seconds']:.3f}",
        ]
        for item in result["dags"]
    ]
    tasks = [
        [
            item["task"],
            ", ".join(f"`{m}`" for m in item["modules"]),
            f"{item['fresh']['seconds']:.2f} ({item['fresh']['cpu_seconds']:.2f})",
            f"{item['preloaded_fork']['seconds']:.3f} "
            f"({item['preloaded_fork']['cpu_seconds']:.3f})",
        ]
        for item in result["task_imports"]
    ]
    runs = result["dags"][0]["runs"]
    return "\n\n".join(
        [
            f"{_measured(result)}, median of {runs} runs, load average "
            f"{_load_average(result['machine'])} at the end.",
            _table(
                ["DAG file", "`dags report` (s)", "import, wall (s)", "import, CPU (s)"], dags, 1
            ),
            _table(
                [
                    "task",
                    "imports",
                    "fresh interpreter, wall (CPU) s",
                    "preloaded fork, wall (CPU) s",
                ],
                tasks,
                numeric_from=2,
            ),
        ]
    )


def _measured(result: dict) -> str:
    return f"Measured {result['measured_at'][:16].replace('T', ' ')} UTC"


def _stage_rows(stages: list[dict], prefix: str = "") -> list[Row]:
    return [
        [
            f"{prefix}{row['stage']}",
            f"{row['seconds']:.2f}",
            f"{row['cpu_seconds']:.2f}",
            f"{row['peak_rss_mb']:,.0f}",
        ]
        for row in stages
    ]


def loop_block(result: dict) -> str:
    parts = [f"{_measured(result)}, load average {_load_average(result['machine'])} at the end."]
    header = ["stage", "wall, median (s)", "CPU, median (s)", "peak RSS (MB)"]
    for size in result["sizes"]:
        rows = _stage_rows(size["loop"])
        rows.append(
            [
                "**loop total**",
                f"**{size['loop_total_seconds']:.2f}**",
                "",
                f"{size['loop_peak_rss_mb']:,.0f}",
            ]
        )
        rows += _stage_rows(size["bare"], "bare script: ")
        rows.append(
            [
                "**bare script total**",
                f"**{size['bare_total_seconds']:.2f}**",
                "",
                f"{size['bare_peak_rss_mb']:,.0f}",
            ]
        )
        forced = size["runs"] - sum(size["gate_blessed"])
        runs = f"median of {size['runs']} runs" if size["runs"] > 1 else "1 run"
        gate = (
            f"; the gate rejected {forced} challenger(s), promoted by force (the same path)"
            if forced
            else "; the gate blessed every challenger"
        )
        parts.append(
            f"{size['customers']:,} customers, {size['window_days']}-day window "
            f"({size['holdout_days']} held out; {size['training_rows']:,} labelled rows), "
            f"{runs}{gate}:"
        )
        parts.append(_table(header, rows, numeric_from=1))
    return "\n\n".join(parts)


def loop_tuned_block(result: dict) -> str:
    """The loop's tables with tuning's stage, then what each side's search tried and chose."""
    parts = [loop_block(result)]
    for size in result["sizes"]:
        search = size["tuning"]
        trials = {
            side: ", ".join(f"{auc:.4f}" for auc in search[side][0]["trial_cv_aucs"])
            for side in ("loop", "bare")
        }
        chosen = search["loop"][0]["best_params"]
        same = all(
            run["best_params"] == chosen for side in ("loop", "bare") for run in search[side]
        )
        own = statistics.median(run["package_seconds"] for run in search["loop"])
        parts.append(
            f"Tuning at {size['customers']:,} customers: {search['trials']} trials of Optuna's TPE "
            f"(seed {search['seed']}, the first from the base parameters), each scored on "
            f"{search['cv_folds']} expanding day folds of the training split; the loop's time "
            f"budget {search['loop_timeout_seconds']:,} s, so the trial count stopped both "
            f"searches. Mean CV ROC AUC per trial, first run: loop {trials['loop']}; bare "
            f"script {trials['bare']}. Both sides chose "
            + (
                "the same parameters in every run: "
                if same
                else "different ones; the loop's first: "
            )
            + ", ".join(f"{key} {_param(value)}" for key, value in sorted(chosen.items()))
            + f". The package's own count of its search (`TuningResult.seconds`), median: "
            f"{own:.2f} s."
        )
    return "\n\n".join(parts)


def _param(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def retrain_block(result: dict) -> str:
    rows = _stage_rows(result["stages"])
    rows.append(
        [
            "**drift day landed to new champion serving**",
            f"**{result['to_serving_seconds']:.2f}**",
            "",
            f"{result['peak_rss_mb']:,.0f}",
        ]
    )
    reload = ", ".join(f"{value:.2f}" for value in result["rollback_reload_all"])
    command = ", ".join(f"{value:.2f}" for value in result["rollback_command_all"])
    return "\n\n".join(
        [
            f"{_measured(result)}, {result['customers']:,} customers, "
            f"median of {result['runs']} runs (each: "
            f"{', '.join(map(str, result['to_serving_all']))} s), load average "
            f"{_load_average(result['machine'])} at the end. Drift reasons: "
            f"{'; '.join(result['drift_reasons'])}.",
            _table(["stage", "wall, median (s)", "CPU, median (s)", "peak RSS (MB)"], rows, 1),
            f"Rollback with `/admin/reload`: {reload} s; by `churnloop rollback` and the server's "
            f"{result['poll_seconds']:g}-second poll: {command} s.",
        ]
    )


BLOCKS: dict[str, tuple[str, Callable[[dict], str]]] = {
    "dag_parse": ("dag_parse", dag_parse_block),
    "loop": ("loop", loop_block),
    "loop_1m": ("loop_1m", loop_block),
    "loop_redis": ("loop_redis", loop_block),
    "loop_tuned": ("loop_tuned", loop_tuned_block),
    "retrain": ("retrain", retrain_block),
}


def replace_block(text: str, name: str, body: str) -> str:
    """Replace what lies between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``."""
    pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(<!-- /bench:{name} -->)", re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{DOC} has no block <!-- bench:{name} --> ... <!-- /bench:{name} -->")
    return pattern.sub(lambda match: f"{match.group(1)}{body}\n{match.group(2)}", text)


def write_doc() -> None:
    run = _load("run_all")
    if run is None:
        raise SystemExit(f"no {RESULTS_DIR}/run_all.json yet: run the benchmarks first")
    text = replace_block(DOC.read_text(), "summary", summary_block(run))
    for block, (name, render) in BLOCKS.items():
        result = _load(name)
        if result is not None:
            text = replace_block(text, block, render(result))
    DOC.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes that fit ~30 min (make bench)")
    parser.add_argument("--only", nargs="+", choices=list(FULL), help="run only these")
    parser.add_argument(
        "--doc-only", action="store_true", help="rewrite the doc from the stored results"
    )
    args = parser.parse_args()
    if not args.doc_only:
        start, started_at = machine(), dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        took = run_benchmarks(args.only or list(FULL), args.quick)
        write_results(
            "run_all",
            {
                "started_at": started_at,
                "start": start,
                "took": took,
                "quick": args.quick,
                "commit": commit(),
            },
        )
    write_doc()
    print(f"\nwrote {DOC} (figures in {RESULTS_DIR}/)")


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    main()
