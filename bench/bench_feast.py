"""Feast: materialization throughput and online lookup latency, SQLite and Redis.

At ``--customers`` (default 100k) customers x the 34 features of ``churn_model_v1``:

- before: ``FeatureStore.materialize`` of one day with Feast's own online stores and
  their default settings (the offline store, DuckDB, reads and deduplicates the whole
  source, here ``--feature-days`` daily partitions, then writes the online store and the
  registry); for SQLite, Feast's ``SqliteOnlineStore`` (a row per value), not the
  embedded profile's row-per-customer store (``churnloop.features.feast_extensions.online_store``);
- after: ``materialize_day`` of the same day (the built partition
  straight to the online store: ``write_arrow`` into SQLite,
  ``RedisArrowWriter.write_arrow`` into Redis), with no overlap and with the default
  overlap of one day (the day before is re-sent; its customers are all superseded);
- online lookups through ``OnlineFeatureReader.read`` (a typed DataFrame) and, as the
  peer, Feast's bare ``get_online_features`` + ``to_dict`` on the reader's store, for 1
  and for 100 random customers: p50 and p99 over ``--lookups`` calls after a warm-up.

Every materialization starts from an empty online store (teardown, then apply), so
Redis's own duplicate check cannot skip rows on a second run. Times are the median of
``--runs`` runs, wall clock and this process's CPU time (the machine is shared, so
wall time also measures the neighbours; CPU time is the steadier comparison). Also
timed: ``build_feature_partition`` of a day with 90 days of history, and historical
retrieval (a training set's ``get_historical_features``) of ``--window-days`` days of
every customer over the ``--feature-days`` partitions: Feast's DuckDB offline store
(before) against the windowed one (``feast_extensions.offline_store``, after). Needs Redis
(``--redis``, default 127.0.0.1:6379); uses a throwaway home and Feast project,
removed at the end.

Run: ``.venv/bin/python bench/bench_feast.py`` (figures also to bench/results/feast.json).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from harness import percentile, write_results

DAY = dt.date(2026, 4, 1)
SERVER_LOOKUP = "OnlineRows.rows (the model server's read)"


def _median_seconds(
    action: Callable[[], object], reset: Callable[[], None], runs: int
) -> tuple[float, float]:
    """Median wall and CPU seconds (this process, all threads) of ``runs`` runs."""
    wall, cpu = [], []
    for _ in range(runs):
        reset()
        started, started_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(wall), statistics.median(cpu)


def _latency_ms(action: Callable[[], object], calls: int) -> tuple[float, float]:
    for _ in range(20):
        action()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 0.50), percentile(times, 0.99)


def _lookups(
    reader, server_rows, loop, ids: list[int], batch: int
) -> dict[str, Callable[[], object]]:
    def served() -> object:
        return loop.run_until_complete(server_rows.rows(random.sample(ids, batch)))

    def read() -> object:
        return reader.read(random.sample(ids, batch))

    def bare() -> object:
        rows = {"customer_id": random.sample(ids, batch)}
        return reader.store.get_online_features(features=reader.service, entity_rows=rows).to_dict()

    return {
        SERVER_LOOKUP: served,
        "OnlineFeatureReader.read (DataFrame)": read,
        "peer: bare get_online_features + to_dict": bare,
    }


def _write_history(settings, customers: int, days: int) -> None:
    from churnloop import schema, storage
    from churnloop.demo import simulation

    lake = storage.lake(settings)
    for offset in range(days):
        day = DAY - dt.timedelta(days=offset)
        table = simulation.generate_snapshots(day, customers)
        lake.write_table(schema.validated_dataset(schema.SNAPSHOTS), day, table)


def bench_retrieval(customers: int, window_days: int, runs: int) -> list[dict]:
    """Median seconds of one training set's retrieval, with each offline store."""
    import pandas as pd
    from feast import FeatureStore, RepoConfig

    from churnloop.features.definition import FEATURE_SERVICE
    from churnloop.features.feast_config import feast_config
    from churnloop.schema import ENTITY, TIMESTAMP
    from churnloop.settings import get_settings

    settings = get_settings()
    repo = settings.feature_repo_dir
    days = pd.date_range(end=str(DAY), periods=window_days, tz="UTC")
    labels = pd.DataFrame(
        {
            ENTITY: list(range(1, customers + 1)) * window_days,
            TIMESTAMP: days.repeat(customers),
        }
    )
    figures = []
    config = feast_config(settings)
    for case, offline in (
        ("before: Feast's DuckDB store", {"type": "duckdb"}),
        ("after: windowed DuckDB store", config["offline_store"]),
    ):
        with_store = RepoConfig(**{**config, "offline_store": offline}, repo_path=repo)
        store = FeatureStore(repo_path=str(repo), config=with_store)
        service = store.get_feature_service(FEATURE_SERVICE)

        def retrieve(store=store, service=service) -> None:
            store.get_historical_features(entity_df=labels, features=service).to_df()

        wall, cpu = _median_seconds(retrieve, lambda: None, runs)
        figures.append({"case": case, "rows": len(labels), "seconds": wall, "cpu_seconds": cpu})
    return figures


def bench_backend(
    name: str, customers: int, runs: int, lookups: int
) -> tuple[list[str], list[dict]]:
    from feast import FeatureStore, RepoConfig

    from churnloop.features import feast_config, materialize
    from churnloop.features.definition import FEATURE_VIEW
    from churnloop.features.online import OnlineFeatureReader
    from churnloop.settings import get_settings

    settings = get_settings()
    rows: list[str] = []
    figures: list[dict] = []

    config = feast_config.feast_config(settings)
    feasts_sqlite = Path(settings.feast_sqlite_path).with_suffix(".feast-sqlite.db")
    if settings.feast_redis:
        config["online_store"].pop("skip_dedup", None)  # Feast's default Redis writes
    else:  # Feast's own SQLite store (a row per value), not the row-per-customer one
        config["online_store"] = {"type": "sqlite", "path": str(feasts_sqlite)}
    repo = settings.feature_repo_dir
    plain_store: FeatureStore | None = None

    def reset() -> None:
        nonlocal plain_store
        feast_config.feature_store(settings).teardown()
        feast_config.apply_definitions(settings)
        feasts_sqlite.unlink(missing_ok=True)
        plain_store = FeatureStore(repo_path=str(repo), config=RepoConfig(**config, repo_path=repo))
        plain_store.apply(list(feast_config.load_definitions(settings)))  # its online tables

    def plain() -> None:
        start = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
        plain_store.materialize(start, start + dt.timedelta(hours=1), feature_views=[FEATURE_VIEW])

    cases = {
        "before: store.materialize (1 day)": plain,
        "after: materialize_day, no overlap": lambda: materialize.materialize_day(
            settings, DAY, overlap_days=0
        ),
        "after: materialize_day, overlap 1 day": lambda: materialize.materialize_day(
            settings, DAY, overlap_days=1
        ),
    }
    for case, action in cases.items():
        wall, cpu = _median_seconds(action, reset, runs)
        rows.append(
            f"| {name} | {case} | {customers:,} | {wall:.1f} | {cpu:.1f} "
            f"| {customers / wall:,.0f} |"
        )
        figures.append(
            {"store": name, "case": case, "rows": customers, "seconds": wall, "cpu_seconds": cpu}
        )

    reader = OnlineFeatureReader(settings)
    server_rows = OnlineFeatureReader(settings)
    loop = asyncio.new_event_loop()
    ids = list(range(1, customers + 1))
    for batch in (1, 100):
        for case, action in _lookups(reader, server_rows, loop, ids, batch).items():
            p50, p99 = _latency_ms(action, lookups)
            rows.append(f"| {name} | {case} | {batch} | {p50:.2f} | {p99:.2f} |")
            figures.append(
                {"store": name, "case": case, "customers": batch, "p50_ms": p50, "p99_ms": p99}
            )
    loop.close()
    feast_config.feature_store(settings).teardown()
    return rows, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--feature-days", type=int, default=30, help="feature partitions in the offline source"
    )
    parser.add_argument(
        "--window-days", type=int, default=7, help="labelled days of the retrieval case"
    )
    parser.add_argument("--lookups", type=int, default=1_000)
    parser.add_argument("--redis", default="127.0.0.1:6379")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-feast-") as home:
        os.environ["CHURNLOOP_HOME"] = home
        os.environ["CHURNLOOP_FEAST_PROJECT"] = f"bench_{uuid.uuid4().hex[:8]}"
        from churnloop.features.build import build_feature_partition
        from churnloop.features.definition import LOOKBACK_DAYS
        from churnloop.features.feast_config import apply_definitions
        from churnloop.settings import get_settings

        settings = get_settings()
        _write_history(settings, args.customers, LOOKBACK_DAYS + args.feature_days - 1)
        apply_definitions(settings)
        for offset in range(args.feature_days - 1, 0, -1):
            build_feature_partition(settings, DAY - dt.timedelta(days=offset))
        build_times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            build_feature_partition(settings, DAY)
            build_times.append(time.perf_counter() - started)
        retrieval = bench_retrieval(args.customers, args.window_days, args.runs)

        materialize_rows, lookup_rows, figures = [], [], []
        for name, redis in (("SQLite", None), ("Redis", args.redis)):
            if redis:
                os.environ["CHURNLOOP_FEAST_REDIS"] = redis
            rows, measured = bench_backend(name, args.customers, args.runs, args.lookups)
            figures += measured
            materialize_rows += [row for row in rows if "materialize" in row]
            lookup_rows += [row for row in rows if "materialize" not in row]

    print(
        f"build_feature_partition, {args.customers:,} customers x {LOOKBACK_DAYS} days of "
        f"history: median {statistics.median(build_times):.1f} s of {args.runs}"
    )
    print(f"offline source: {args.feature_days} daily feature partitions\n")
    print(f"| historical retrieval ({args.window_days} days) | rows | wall (s) | CPU (s) |")
    print("| --- | ---: | ---: | ---: |")
    for row in retrieval:
        seconds = f"{row['seconds']:.2f} | {row['cpu_seconds']:.2f}"
        print(f"| {row['case']} | {row['rows']:,} | {seconds} |")
    print()
    print(f"| online store | path | rows | wall, median of {args.runs} (s) | CPU (s) | rows/s |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    print("\n".join(materialize_rows))
    print(f"\n| online store | lookup ({args.lookups} calls) | customers | p50 (ms) | p99 (ms) |")
    print("| --- | --- | ---: | ---: | ---: |")
    print("\n".join(lookup_rows))
    write_results(
        "feast",
        {
            "customers": args.customers,
            "feature_days": args.feature_days,
            "runs": args.runs,
            "lookups": args.lookups,
            "build_feature_partition_seconds": statistics.median(build_times),
            "window_days": args.window_days,
            "retrieval": retrieval,
            "rows": figures,
        },
    )


if __name__ == "__main__":
    main()
