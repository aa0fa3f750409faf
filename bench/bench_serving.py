"""Latency and throughput of the model server, and of the same model under `mlflow models serve`.

Set-up (in a temporary home): simulated snapshots of ``--customers`` customers over 8 days,
their features, a model trained by ``churnloop.training.challenger`` with the default parameters
(200 trees, 31 leaves), registered as ``@champion``; a Feast project of its own
(``bench_<random>``) whose online store is the local Redis (127.0.0.1:6379), holding
the last day. The Feast project's keys are removed at the end.

Servers, each a separate process on a free loopback port, one uvicorn worker:

- ``churnloop serve``, scored by ``customer_id`` (features from Redis through Feast);
- ``churnloop serve``, scored by explicit ``features`` (no online store);
- peer: ``mlflow models serve --env-manager local`` of the same registered version,
  ``/invocations`` with one ``dataframe_split`` row.

Load comes from a separate process (this file with ``load``): ``--concurrency`` requests
in flight over keep-alive connections (aiohttp if installed, else httpx), ``--requests``
single-instance requests after a warm-up, capped at ``--max-seconds``. A row of the
table is the median of ``--runs`` runs of p50, p99 and requests per second.

Run: ``.venv/bin/python bench/bench_serving.py`` (needs Redis on 127.0.0.1:6379; figures
also to bench/results/serving.json).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from harness import percentile, write_results

from churnloop.demo.airflow_stack import free_port
from churnloop.processes import process_stats, stop_process_group

REDIS = "127.0.0.1:6379"
FIRST_DAY = dt.date(2026, 3, 1)
DAYS = 8
WARM_UP_REQUESTS = 300
"""Sent one at a time before each measured run, not measured."""


# -- load generation (runs in its own process) ----------------------------------------------


def _client(concurrency: int) -> tuple[Callable[[str, Any], Awaitable[int]], Any]:
    """``post(url, body) -> status`` and the session to close: aiohttp if installed, else httpx."""
    try:
        import aiohttp
    except ImportError:
        import httpx

        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency))

        async def post_httpx(url: str, body: Any) -> int:
            return (await client.post(url, json=body)).status_code

        return post_httpx, client.aclose

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))

    async def post_aiohttp(url: str, body: Any) -> int:
        async with session.post(url, json=body) as response:
            await response.read()
            return response.status

    return post_aiohttp, session.close


async def _load(
    url: str, payloads: list[Any], concurrency: int, requests: int, max_seconds: float
) -> dict[str, float]:
    """Send ``requests`` POSTs with ``concurrency`` in flight; latencies in ms and req/s."""
    post, close = _client(concurrency)
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))

    async def worker(deadline: float) -> None:
        nonlocal errors
        for index in counter:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            status = await post(url, payloads[index % len(payloads)])
            latencies.append((time.perf_counter() - started) * 1000)
            errors += status != 200

    for body in payloads[:WARM_UP_REQUESTS]:
        await post(url, body)
    started = time.perf_counter()
    await asyncio.gather(*(worker(started + max_seconds) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await close()
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "rps": len(latencies) / elapsed,
    }


def load_main(args: argparse.Namespace) -> None:
    payloads = json.loads(Path(args.payloads).read_text())
    result = asyncio.run(
        _load(args.url, payloads, args.concurrency, args.requests, args.max_seconds)
    )
    print(json.dumps(result))


# -- set-up ---------------------------------------------------------------------------------


def wait_until_ready(url: str, process: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {seconds} s:\n{log.read_text()[-3000:]}")


def build_world(home: Path, customers: int) -> tuple[dict[str, str], list[int], list[dict]]:
    """Train and register a champion, fill Redis; returns the env, ids and feature rows."""
    import pandas as pd
    import pyarrow as pa

    from churnloop import registry, storage
    from churnloop.demo.simulation import generate_labels, generate_snapshots
    from churnloop.features import definition
    from churnloop.features.feast_config import apply_definitions
    from churnloop.features.materialize import materialize_day
    from churnloop.schema import ENTITY, TIMESTAMP
    from churnloop.serving.deploy import json_rows
    from churnloop.settings import Settings
    from churnloop.training.challenger import train_and_register
    from churnloop.training.split import split_by_time

    environment = {
        "CHURNLOOP_HOME": str(home),
        "CHURNLOOP_FEAST_REDIS": REDIS,
        "CHURNLOOP_FEAST_PROJECT": f"bench_{uuid.uuid4().hex[:8]}",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    os.environ.update(environment)
    settings = Settings()
    lake = storage.lake(settings)
    days = [FIRST_DAY + dt.timedelta(days=offset) for offset in range(DAYS)]
    history = pd.concat([generate_snapshots(day, customers).to_pandas() for day in days])
    frames = []
    for day in days:
        rows = definition.build_features(history, day)
        table = pa.Table.from_pandas(rows, schema=definition.TABLE_SCHEMA, preserve_index=False)
        lake.write_table(definition.DATASET, day, table)
        labels = generate_labels(day, customers).to_pandas()
        frames.append(rows.merge(labels, on=[ENTITY, TIMESTAMP]))
    train, holdout = split_by_time(pd.concat(frames, ignore_index=True), holdout_days=2)
    names = list(definition.FEATURE_SCHEMA.names)
    trained = train_and_register(
        settings,
        train,
        holdout,
        feature_names=names,
        feature_service=definition.FEATURE_SERVICE,
        lineage={"dag_id": "bench"},
    )
    registry.connect(settings).set_registered_model_alias(
        settings.model_name, registry.CHAMPION, str(trained.version)
    )
    apply_definitions(settings)
    materialize_day(settings, days[-1], overlap_days=0)
    last = frames[-1]
    rows = json_rows(last, names)
    return environment, last[ENTITY].tolist(), rows


def remove_feast_project(environment: dict[str, str]) -> None:
    from churnloop.features.feast_config import feature_store
    from churnloop.settings import Settings

    os.environ.update(environment)
    feature_store(Settings()).teardown()


# -- the runs ---------------------------------------------------------------------------------


def cpu_seconds(session: int) -> float:
    """CPU time (user + system) of every process in ``session`` (a server and its workers)."""
    ticks = sum(
        int(fields[11]) + int(fields[12])
        for _, fields in process_stats()
        if int(fields[3]) == session
    )
    return ticks / os.sysconf("SC_CLK_TCK")


def run_load(
    url: str, payloads: list[Any], args: argparse.Namespace, folder: Path, server: int
) -> dict:
    path = folder / f"payloads-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(payloads))
    cpu_before = cpu_seconds(server)
    command = [
        sys.executable,
        __file__,
        "load",
        "--url",
        url,
        "--payloads",
        str(path),
        "--concurrency",
        str(args.concurrency),
        "--requests",
        str(args.requests),
        "--max-seconds",
        str(args.max_seconds),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    served = result["requests"] + min(WARM_UP_REQUESTS, len(payloads))
    result["cpu_ms"] = (cpu_seconds(server) - cpu_before) * 1000 / served
    return result


def start(command: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as sink:
        return subprocess.Popen(
            command,
            env={**os.environ, **environment},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def bench_main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="churnloop-bench-serving-") as folder:
        home = Path(folder) / "home"
        print(f"setting up: {args.customers:,} customers, {DAYS} days ...", file=sys.stderr)
        environment, customers, rows = build_world(home, args.customers)
        rng = random.Random(7)
        by_id = [{"customer_id": int(rng.choice(customers))} for _ in range(args.requests)]
        by_features = [{"features": rng.choice(rows)} for _ in range(args.requests)]
        columns = list(rows[0])
        split = [
            {"dataframe_split": {"columns": columns, "data": [list(row.values())]}}
            for row in (rng.choice(rows) for _ in range(args.requests))
        ]
        ours_port, peer_port = free_port(), free_port()
        ours = start(
            [sys.executable, "-m", "churnloop.cli", "serve"],
            {**environment, "CHURNLOOP_SERVING_PORT": str(ours_port)},
            Path(folder) / "churnloop-serve.log",
        )
        peer = start(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "models",
                "serve",
                "-m",
                "models:/churn-model@champion",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(peer_port),
            ],
            {
                **environment,
                "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
                "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
                "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            },
            Path(folder) / "mlflow-serve.log",
        )
        try:
            ours_url, peer_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{peer_port}"
            wait_until_ready(f"{ours_url}/ready", ours, Path(folder) / "churnloop-serve.log")
            wait_until_ready(f"{peer_url}/ping", peer, Path(folder) / "mlflow-serve.log")
            cases = [
                (
                    "churnloop serve, customer_id (Feast + Redis)",
                    f"{ours_url}/predict",
                    by_id,
                    ours.pid,
                ),
                (
                    "churnloop serve, explicit features",
                    f"{ours_url}/predict",
                    by_features,
                    ours.pid,
                ),
                (
                    "peer: mlflow models serve, explicit features",
                    f"{peer_url}/invocations",
                    split,
                    peer.pid,
                ),
            ]
            results: dict[str, list[dict]] = {name: [] for name, *_ in cases}
            for _ in range(args.runs):  # interleaved, so load changes hit every case alike
                for name, url, payloads, pid in cases:
                    results[name].append(run_load(url, payloads, args, Path(folder), pid))
        finally:
            stop_process_group(ours, grace=20)
            stop_process_group(peer, grace=20)
            remove_feast_project(environment)
    header = [
        "what",
        "concurrency",
        "requests/run",
        "p50 (ms)",
        "p99 (ms)",
        "req/s",
        "server CPU (ms/req)",
        "errors",
    ]
    print("\n| " + " | ".join(header) + " |")
    print("| --- |" + " ---: |" * (len(header) - 1))
    figures = []
    for name, runs in results.items():
        median = {
            key: statistics.median(run[key] for run in runs)
            for key in ("requests", "p50_ms", "p99_ms", "rps", "cpu_ms")
        }
        errors = sum(run["errors"] for run in runs)
        cells = [
            name,
            str(args.concurrency),
            f"{median['requests']:,.0f}",
            f"{median['p50_ms']:.2f}",
            f"{median['p99_ms']:.2f}",
            f"{median['rps']:,.0f}",
            f"{median['cpu_ms']:.2f}",
            str(errors),
        ]
        print("| " + " | ".join(cells) + " |")
        figures.append({"case": name, **median, "errors": errors})
    write_results(
        "serving",
        {
            "customers": args.customers,
            "concurrency": args.concurrency,
            "requests": args.requests,
            "max_seconds": args.max_seconds,
            "runs": args.runs,
            "rows": figures,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    load = commands.add_parser("load", help="(internal) the load generator process")
    load.add_argument("--url", required=True)
    load.add_argument("--payloads", required=True)
    for target in (parser, load):
        target.add_argument("--concurrency", type=int, default=8)
        target.add_argument("--requests", type=int, default=5_000)
        target.add_argument("--max-seconds", type=float, default=60)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    load_main(args) if args.command == "load" else bench_main(args)


if __name__ == "__main__":
    main()
