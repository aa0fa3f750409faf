"""The loop from ingest to deploy, stage by stage, beside a bare script doing the same data work.

One day's drops land (the day's snapshots and the labels maturing that day, which
complete the training window); the loop then runs every step the DAGs run, through the
package functions the tasks call (no Airflow):

ingest (both drops) -> validate (GX, both) -> build features -> materialize (Feast,
SQLite online store, with the definitions applied as the task does) -> training set
(Feast point-in-time, saved to the lake) -> validate training set (GX) -> train + log
(LightGBM, MLflow) -> evaluate (champion vs challenger) -> promote (+ model card) ->
deploy (the model server, a process of its own as in production, reloads, smoke test,
skew check).

The lake already holds what earlier days left: validated snapshots from the day before
the window to the day before the drops, the feature partitions of the window, the labels
matured so far, a registered ``@champion`` (trained on the window one day earlier) and
Feast's registry. The training window is ``--window-days`` days (``--holdout-days``
held out), ending 30 days before the as-of day; so the day's features are built from
the window and the 30 days after it, not from a full 90-day history.

The peer is a bare script doing the same data work with pandas, scikit-learn and
LightGBM only (no Airflow, GX, Feast or MLflow): read the day's drop, its history, the
window's features and labels; build the day's features (``churnloop.features.definition``' pure
function); join labels to same-day features; fit the same pipeline with the same
parameters; predict the holdout and the day's customers.

Each loop run is a child forked from a process that imported the task libraries once (as
``churnloop.orchestration.executor`` forks Airflow's task processes), on a fresh copy of the
prepared state; each bare run is a freshly spawned process that imports only its own
libraries (not timed). Loop and bare runs alternate, so load changes hit both alike. Per
stage: median wall and CPU seconds of ``--runs`` runs and the largest peak RSS (the
process's high-water mark over that stage, libraries included; the model server's
process is not counted).

Online store: the embedded profile's SQLite store (a row per customer,
``feast_extensions.online_store``) by default; with ``--redis HOST:PORT``, the production
profile's Redis store (Feast's, written by ``feast_extensions.redis_online_writer``), in
database ``BENCH_REDIS_DB`` (emptied before each run); the rest stays embedded (lake
on disk, file registry, MLflow on SQLite).
Written to ``--result loop_redis`` by ``make bench``.

Sizes: ``--customers 10000 100000`` by default. At 1M customers (``--customers
1000000``) the training window is sampled in days rather than in customers (the package
trains on every labelled snapshot of its window): ``--window-days-1m`` (default 2, one
day held out), so the training set holds 2M rows, as many as 20 days at 100k.

Run: ``.venv/bin/python bench/bench_loop.py`` (figures to bench/results/loop.json).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import io
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness import StageClock, summarize, write_results

DAY = dt.date(2026, 4, 1)
"""The day whose drops land; the training run is as of the next day."""
ADMIN_TOKEN = "bench-admin-token"
MILLION = 1_000_000
BENCH_REDIS_DB = 13
"""The Redis database the loop's online store uses with ``--redis``; emptied before each run."""


def _environment(
    home: Path, window_days: int, holdout_days: int, redis: str | None
) -> dict[str, str]:
    online = {"CHURNLOOP_FEAST_REDIS": f"{redis},db={BENCH_REDIS_DB}"} if redis else {}
    return {
        **online,
        "CHURNLOOP_HOME": str(home),
        "CHURNLOOP_TRAINING_WINDOW_DAYS": str(window_days),
        "CHURNLOOP_HOLDOUT_DAYS": str(holdout_days),
        "CHURNLOOP_SERVING_ADMIN_TOKEN": ADMIN_TOKEN,
        "CHURNLOOP_DEPLOY_START_SERVER": "false",
        "CHURNLOOP_SERVING_POLL_SECONDS": "3600",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def window(window_days: int) -> tuple[dt.date, dt.date]:
    """First and last snapshot day of the window of the run as of ``DAY + 1``."""
    from churnloop.schema import LABEL_DELAY_DAYS

    end = DAY - dt.timedelta(days=LABEL_DELAY_DAYS)
    return end - dt.timedelta(days=window_days - 1), end


# -- the state earlier days left ----------------------------------------------------------


def prepare(
    home: Path, customers: int, window_days: int, holdout_days: int, redis: str | None
) -> None:
    """Write what the days before ``DAY`` left in the lake, registry and Feast (not timed)."""
    os.environ.update(_environment(home, window_days, holdout_days, redis))
    from churnloop import registry, schema, storage
    from churnloop.demo.simulation import BASELINE, generate_labels, generate_snapshots, simulate
    from churnloop.features.build import build_feature_partition
    from churnloop.features.feast_config import apply_definitions
    from churnloop.settings import get_settings
    from churnloop.training import steps
    from churnloop.training.plan import plan_training_run

    settings = get_settings()
    lake = storage.lake(settings)
    start, end = window(window_days)
    start -= dt.timedelta(days=1)  # the champion's window starts a day earlier
    history = [start + dt.timedelta(days=offset) for offset in range((DAY - start).days)]
    for day in history:
        lake.write_table(
            schema.validated_dataset(schema.SNAPSHOTS), day, generate_snapshots(day, customers)
        )
        labelled = day - dt.timedelta(days=schema.LABEL_DELAY_DAYS)
        if labelled >= start:
            labels = generate_labels(labelled, customers)
            lake.write_table(schema.validated_dataset(schema.LABELS), day, labels)
    for day in history:
        if day <= end:
            build_feature_partition(settings, day)
    simulate(settings, DAY, 1, customers, BASELINE, progress=lambda line: None, history_start=start)
    apply_definitions(settings)
    # The champion: the run of the day before, on the window one day earlier.
    plan = plan_training_run(settings, as_of=DAY, params={}, trigger="bench")
    steps.build_training_set(settings, plan.to_dict())
    steps.validate_training_set(settings, plan.to_dict())
    trained = steps.train_challenger(settings, plan.to_dict(), {"dag_id": "bench"})
    registry.connect(settings).set_registered_model_alias(
        settings.model_name, registry.CHAMPION, str(trained["version"])
    )


# -- one run of the loop ------------------------------------------------------------------


def import_task_libraries() -> None:
    """What a preloaded Airflow worker holds before it forks a task (not timed): the
    preloading executor's list, its caches warmed."""
    from churnloop.orchestration.executor import preload

    preload()


@contextlib.contextmanager
def model_server(version: int) -> Iterator[str]:
    """The model server, a process of its own as in production, once it serves ``version``.

    Not a thread of the loop's process: a thread that has run LightGBM keeps its OpenMP
    team, and libgomp, counting more threads than cores, then makes the training task's
    threads sleep between parallel regions instead of spinning (75k context switches
    and a 15-25% slower fit at 100k customers, docs/benchmarks.md).
    """
    import httpx

    from churnloop.demo.airflow_stack import free_port
    from churnloop.serving.process import running_model_server
    from churnloop.settings import get_settings

    os.environ["CHURNLOOP_SERVING_PORT"] = str(free_port())
    with running_model_server(get_settings()) as url:
        deadline = time.monotonic() + 120
        while httpx.get(f"{url}/model", timeout=10).json().get("version") != version:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the model server at {url} did not load v{version}")
            time.sleep(0.1)
        yield url


def materialize_stage(settings) -> str:
    """The materialization stage's name, which says the online store."""
    return f"materialize (Feast, {'Redis' if settings.feast_redis else 'SQLite'})"


def daily_stages(settings, clock: StageClock, day: dt.date) -> None:
    """customer_data's work for ``day``'s drops, each step timed."""
    from churnloop import schema
    from churnloop.features.build import build_feature_partition
    from churnloop.features.feast_config import apply_definitions
    from churnloop.features.materialize import materialize_day
    from churnloop.validation.ingest import ingest_day
    from churnloop.validation.partition import validate_partition

    datasets = (schema.SNAPSHOTS, schema.LABELS)
    with clock.stage("ingest"):
        for dataset in datasets:
            ingest_day(settings, dataset, day)
    with clock.stage("validate (GX)"):
        for dataset in datasets:
            validate_partition(settings, dataset, day)
    with clock.stage("build features"):
        build_feature_partition(settings, day)
    with clock.stage(materialize_stage(settings)):
        apply_definitions(settings)
        materialize_day(settings, day)


def training_stages(settings, clock: StageClock, plan, *, force_reason: str) -> dict:
    """continuous_training's work for ``plan``, each step timed; returns the promotion.

    A challenger the gate rejects is promoted with ``force_reason`` (the same code path),
    so that every run times a deployment.
    """
    from churnloop.serving.deploy import deploy
    from churnloop.training import steps

    with clock.stage("training set (Feast point-in-time)"):
        steps.build_training_set(settings, plan.to_dict())
    with clock.stage("validate training set (GX)"):
        steps.validate_training_set(settings, plan.to_dict())
    with clock.stage("train + log (MLflow)"):
        trained = steps.train_challenger(settings, plan.to_dict(), {"dag_id": "bench"})
    with clock.stage("evaluate"):
        decision = steps.evaluate_challenger(settings, plan.to_dict(), trained)
    if not decision["blessed"]:
        plan = dataclasses.replace(plan, force_reason=force_reason)
    with clock.stage("promote (+ model card)"):
        promotion = steps.promote_challenger(settings, plan.to_dict(), trained, decision)
    with clock.stage("deploy (reload, smoke, skew)"):
        deploy(settings, promotion["version"])
    return {**promotion, "blessed": decision["blessed"]}


FORCE_REASON = "bench: time the deployment whatever the gate says"


def loop_run(
    prepared: Path, home: Path, window_days: int, holdout_days: int, redis: str | None
) -> dict:
    """One timed run of the loop on a fresh copy of ``prepared`` (in a child process)."""
    os.environ.update(_environment(home, window_days, holdout_days, redis))
    if redis:
        import redis as redis_client

        host, port = redis.rsplit(":", 1)
        redis_client.Redis(host, int(port), db=BENCH_REDIS_DB).flushdb()
    import_task_libraries()
    from churnloop import registry
    from churnloop.settings import get_settings
    from churnloop.training.plan import plan_training_run

    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(prepared, home)
    champion = registry.aliases(get_settings())[registry.CHAMPION]
    clock = StageClock()
    with (
        model_server(champion),
        contextlib.redirect_stdout(io.StringIO()),  # the task logs' prints
    ):
        daily_stages(get_settings(), clock, DAY)
        plan = plan_training_run(
            get_settings(), as_of=DAY + dt.timedelta(days=1), params={}, trigger="bench"
        )
        promotion = training_stages(get_settings(), clock, plan, force_reason=FORCE_REASON)
    return {"stages": clock.as_dicts(), "blessed": promotion["blessed"]}


# -- the bare peer ------------------------------------------------------------------------


def bare_run(prepared: Path, window_days: int, holdout_days: int, params: dict) -> dict:
    """Read, build features, fit, predict: pandas, scikit-learn and LightGBM only."""
    import numpy as np
    import pandas as pd
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    from churnloop import schema
    from churnloop.features import definition
    from churnloop.settings import Settings

    def partition(dataset: str, day: dt.date) -> Path:
        return prepared / "lake" / dataset / f"dt={day.isoformat()}" / "data.parquet"

    start, end = window(window_days)
    held = [start + dt.timedelta(days=offset) for offset in range(-1, (DAY - start).days)]
    days = [d for d in held if start <= d <= end]
    label_days = [d + dt.timedelta(days=schema.LABEL_DELAY_DAYS) for d in days]
    snapshots, labels = (
        schema.validated_dataset(schema.SNAPSHOTS),
        schema.validated_dataset(schema.LABELS),
    )
    clock = StageClock()
    with clock.stage("read"):
        landing = prepared / "landing"
        today = pd.read_parquet(landing / schema.SNAPSHOTS / f"dt={DAY}" / "data.parquet")
        new_labels = pd.read_parquet(landing / schema.LABELS / f"dt={DAY}" / "data.parquet")
        history = [
            pd.read_parquet(partition(snapshots, d), columns=definition.HISTORY_COLUMNS)
            for d in held
        ]
        window_features = pd.concat(
            [pd.read_parquet(partition(definition.DATASET, d)) for d in days], ignore_index=True
        )
        matured = [pd.read_parquet(partition(labels, d)) for d in label_days if d < DAY]
        window_labels = pd.concat([*matured, new_labels], ignore_index=True)
    with clock.stage("build features"):
        day_features = definition.build_features(pd.concat([*history, today]), DAY)
        training = window_labels.merge(window_features, on=[schema.ENTITY, schema.TIMESTAMP])
    with clock.stage("fit"):
        names = list(definition.FEATURE_SCHEMA.names)
        categorical = list(schema.CATEGORICAL)
        recent = training[schema.TIMESTAMP].dt.date > end - dt.timedelta(days=holdout_days)
        train, holdout = training[~recent], training[recent]
        model = Pipeline(
            [
                (
                    "preprocess",
                    ColumnTransformer(
                        [
                            ("numeric", "passthrough", [n for n in names if n not in categorical]),
                            (
                                "categorical",
                                OrdinalEncoder(  # as churnloop.training.pipeline.build_pipeline
                                    handle_unknown="use_encoded_value",
                                    unknown_value=-1,
                                    encoded_missing_value=-1,
                                ),
                                categorical,
                            ),
                        ],
                        verbose_feature_names_out=False,
                    ).set_output(transform="pandas"),
                ),
                (
                    "classifier",
                    LGBMClassifier(
                        **params,
                        random_state=Settings().training_seed,
                        deterministic=True,
                        force_col_wise=True,
                        verbose=-1,
                    ),
                ),
            ]
        )
        model.fit(train[names], train[schema.LABEL], classifier__categorical_feature=categorical)
    with clock.stage("predict"):
        auc = roc_auc_score(holdout[schema.LABEL], model.predict_proba(holdout[names])[:, 1])
        scores = model.predict_proba(day_features[names])[:, 1]
    return {"stages": clock.as_dicts(), "holdout_roc_auc": auc, "scored": int(np.size(scores))}


# -- driver -------------------------------------------------------------------------------


def _in_child(function: Callable[..., Any], *args: Any, method: str = "fork") -> Any:
    """``function(*args)`` in a child: forked from this preloaded process, or spawned."""
    with multiprocessing.get_context(method).Pool(1) as pool:
        return pool.apply(function, args)


def bench_size(
    root: Path,
    customers: int,
    runs: int,
    window_days: int,
    holdout_days: int,
    redis: str | None,
) -> dict:
    from churnloop.settings import Settings

    params = Settings().model_params
    prepared, home = root / f"prepared-{customers}", root / "home"
    print(f"{customers:,} customers: preparing {window_days}-day window ...", flush=True)
    _in_child(prepare, home, customers, window_days, holdout_days, redis)
    shutil.rmtree(prepared, ignore_errors=True)
    home.rename(prepared)
    loop_runs, bare_runs, blessed = [], [], []
    for index in range(runs):
        loop = _in_child(loop_run, prepared, home, window_days, holdout_days, redis)
        loop_runs.append(loop["stages"])
        blessed.append(loop["blessed"])
        bare = _in_child(bare_run, prepared, window_days, holdout_days, params, method="spawn")
        bare_runs.append(bare["stages"])
        total = sum(stage["seconds"] for stage in loop["stages"])
        bare_total = sum(stage["seconds"] for stage in bare["stages"])
        print(f"  run {index + 1}: loop {total:.1f} s, bare {bare_total:.1f} s", flush=True)
    shutil.rmtree(prepared, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    return {
        "customers": customers,
        "online_store": "redis" if redis else "sqlite",
        "window_days": window_days,
        "holdout_days": holdout_days,
        "training_rows": customers * window_days,
        "runs": runs,
        "gate_blessed": blessed,
        "loop": summarize(loop_runs),
        "bare": summarize(bare_runs),
        "loop_total_seconds": _median_total(loop_runs),
        "bare_total_seconds": _median_total(bare_runs),
        "loop_peak_rss_mb": max(s["peak_rss_mb"] for run in loop_runs for s in run),
        "bare_peak_rss_mb": max(s["peak_rss_mb"] for run in bare_runs for s in run),
    }


def _median_total(runs: list[list[dict]]) -> float:
    return statistics.median(sum(stage["seconds"] for stage in run) for run in runs)


def print_table(size: dict) -> None:
    print(
        f"\n{size['customers']:,} customers, {size['window_days']}-day window "
        f"({size['training_rows']:,} labelled rows), median of {size['runs']}:"
    )
    print("| stage | wall (s) | CPU (s) | peak RSS (MB) |")
    print("| --- | ---: | ---: | ---: |")
    for side in ("loop", "bare"):
        for row in size[side]:
            name = row["stage"] if side == "loop" else f"bare: {row['stage']}"
            print(
                f"| {name} | {row['seconds']:.2f} | {row['cpu_seconds']:.2f} "
                f"| {row['peak_rss_mb']:,.0f} |"
            )
        print(
            f"| **{side} total** | {size[f'{side}_total_seconds']:.2f} | | "
            f"{size[f'{side}_peak_rss_mb']:,.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window-days", type=int, default=7)
    parser.add_argument("--holdout-days", type=int, default=2)
    parser.add_argument("--window-days-1m", type=int, default=2)
    parser.add_argument("--redis", help="HOST:PORT: Feast's Redis online store, not SQLite")
    parser.add_argument("--result", default="loop", help="name of the results file")
    args = parser.parse_args()
    import_task_libraries()  # once: the loop's runs fork from here, as Airflow's tasks would
    sizes = []
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as folder:
        for customers in args.customers:
            days, held = args.window_days, args.holdout_days
            if customers >= MILLION:
                days, held = args.window_days_1m, 1
            size = bench_size(Path(folder), customers, args.runs, days, held, args.redis)
            print_table(size)
            sizes.append(size)
    write_results(args.result, {"sizes": sizes})


if __name__ == "__main__":
    main()
