"""From a drift day's data landing to the new champion serving, and a rollback, at demo scale.

The state before the day: ``--customers`` (default 2,000: the demo's size until its
canary doubled it) simulated customers whose ages drift (``covariate_drift``, as in
``make demo``) from a few days after the champion's training run, and the demo's settings
(30-day training window, ``churnloop.demo.run.DEMO_SETTINGS``, without its canary);
validated snapshots, labels and features of the 60
days before, a ``@champion`` trained as of ``--champion-days`` days before the drift
day (past the drift cooldown), and the model server, a process of its own as in
production, serving it.

Timed from the drift day's drops landing, through the package functions the tasks call,
one after the other (the critical path of the three DAGs, without Airflow's own
scheduling): customer_data's ingest, validate, build features and materialize;
drift_report's check (the report and the decision to trigger, which must say yes);
continuous_training's plan (as of the day after the drift), training set, validation,
train, evaluate, promote and deploy, which ends when the server's ``/model`` reports the
new version. Median of ``--runs`` runs, each in a fresh child process on a fresh copy of
the state.

Rollback, after each run, on the state it leaves (``@champion`` new,
``@previous-champion`` old), once each way, each flipping the champion back:

- ``champion.rollback`` then ``POST /admin/reload`` (what an operator with the admin
  token does), until ``/model`` shows the version;
- ``churnloop rollback --reason ...`` as a command (a fresh interpreter), then the
  server's alias poller (``serving_poll_seconds``, default 10 s) finds the move.

Run: ``.venv/bin/python bench/bench_retrain.py`` (figures to bench/results/retrain.json).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_loop import (
    ADMIN_TOKEN,
    FORCE_REASON,
    daily_stages,
    import_task_libraries,
    model_server,
    training_stages,
)
from harness import StageClock, summarize, write_results

DRIFT_DAY = dt.date(2026, 4, 1)
HISTORY_DAYS = 60


def _environment(home: Path) -> dict[str, str]:
    from churnloop.demo.run import DEMO_SETTINGS, DemoPlan

    return {
        **DEMO_SETTINGS,
        "CHURNLOOP_DRIFT_MAX_ESTIMATED_AUC_DROP": "null",  # times the drift trigger's path
        "CHURNLOOP_CANARY_STEPS": "[]",  # promoted at once: a canary's bakes wait on traffic
        "CHURNLOOP_HOME": str(home),
        "CHURNLOOP_TRAINING_WINDOW_DAYS": str(DemoPlan.training_window_days),
        "CHURNLOOP_SERVING_ADMIN_TOKEN": ADMIN_TOKEN,
        "CHURNLOOP_DEPLOY_START_SERVER": "false",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def _scenario(champion_days: int):
    from churnloop.demo.simulation import Scenario

    drift_start = DRIFT_DAY - dt.timedelta(days=champion_days - 3)
    return Scenario("covariate_drift", drift_start=drift_start, ramp_days=3)


def prepare(home: Path, customers: int, champion_days: int) -> None:
    """The lake, registry and Feast as the days before the drift day left them (not timed)."""
    os.environ.update(_environment(home))
    from churnloop import registry, schema, storage
    from churnloop.demo.simulation import generate_labels, generate_snapshots, simulate
    from churnloop.features.build import build_feature_partition
    from churnloop.features.feast_config import apply_definitions
    from churnloop.settings import get_settings
    from churnloop.training import steps
    from churnloop.training.plan import plan_training_run

    settings = get_settings()
    lake = storage.lake(settings)
    scenario = _scenario(champion_days)
    start = DRIFT_DAY - dt.timedelta(days=HISTORY_DAYS)
    days = [start + dt.timedelta(days=offset) for offset in range(HISTORY_DAYS)]
    for day in days:
        snapshots = generate_snapshots(day, customers, scenario=scenario)
        lake.write_table(schema.validated_dataset(schema.SNAPSHOTS), day, snapshots)
        labelled = day - dt.timedelta(days=schema.LABEL_DELAY_DAYS)
        if labelled >= start:
            labels = generate_labels(labelled, customers, scenario=scenario)
            lake.write_table(schema.validated_dataset(schema.LABELS), day, labels)
        build_feature_partition(settings, day)
    simulate(
        settings, DRIFT_DAY, 1, customers, scenario, progress=lambda line: None, history_start=start
    )
    apply_definitions(settings)
    as_of = DRIFT_DAY - dt.timedelta(days=champion_days)
    plan = plan_training_run(settings, as_of=as_of, params={}, trigger="bench")
    with contextlib.redirect_stdout(io.StringIO()):
        steps.build_training_set(settings, plan.to_dict())
        steps.validate_training_set(settings, plan.to_dict())
        trained = steps.train_challenger(settings, plan.to_dict(), {"dag_id": "bench"})
    registry.connect(settings).set_registered_model_alias(
        settings.model_name, registry.CHAMPION, str(trained["version"])
    )


def _served_version(url: str) -> int | None:
    import httpx

    return httpx.get(f"{url}/model", timeout=10).json().get("version")


def _wait_for_version(url: str, version: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while _served_version(url) != version:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server at {url} does not serve v{version}")
        time.sleep(0.05)


def drift_to_serving(settings, clock: StageClock, url: str) -> dict:
    """The drift day's work from landing to the new champion serving, each step timed."""
    from churnloop.monitoring.daily_check import check_day, suppression
    from churnloop.training.plan import as_of_day, plan_training_run

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the task logs' prints
        daily_stages(settings, clock, DRIFT_DAY)
        with clock.stage("drift check (report + trigger decision)"):
            report = check_day(settings, DRIFT_DAY)
            suppressed = suppression(settings, report, active_training_runs=0)
        if suppressed:
            raise RuntimeError(f"the drift day did not trigger training: {suppressed}")
        event = {"day": DRIFT_DAY.isoformat(), "reasons": report.reasons}
        as_of = as_of_day(None, dt.datetime.now(dt.UTC), [event])
        plan = plan_training_run(
            settings, as_of=as_of, params={}, trigger="drift", drift_events=[event]
        )
        promotion = training_stages(settings, clock, plan, force_reason=FORCE_REASON)
    _wait_for_version(url, promotion["version"])
    return {
        "to_serving_seconds": time.perf_counter() - started,
        "blessed": promotion["blessed"],
        "reasons": report.reasons,
    }


def rollback_by_reload(settings, url: str) -> float:
    """``champion.rollback`` and ``POST /admin/reload`` until the server serves the version."""
    import httpx

    from churnloop import champion

    started = time.perf_counter()
    entry = champion.rollback(settings, None, "bench: rollback with a reload")
    httpx.post(
        f"{url}/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
    ).raise_for_status()
    _wait_for_version(url, entry.version)
    return time.perf_counter() - started


def rollback_by_command(settings, url: str) -> float:
    """``churnloop rollback`` (a fresh interpreter), then the server's alias poller."""
    from churnloop import registry

    target = registry.aliases(settings)[registry.PREVIOUS_CHAMPION]
    command = [str(Path(sys.executable).parent / "churnloop"), "rollback", "--reason", "bench"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    _wait_for_version(url, target)
    return time.perf_counter() - started


def run(prepared: Path, home: Path) -> dict:
    """One drift-to-serving run, then one rollback each way (in a child process)."""
    os.environ.update(_environment(home))
    import_task_libraries()
    from churnloop import registry
    from churnloop.settings import get_settings

    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(prepared, home)
    settings = get_settings()
    clock = StageClock()
    with model_server(registry.aliases(settings)[registry.CHAMPION]) as url:
        settings = get_settings()  # the server's port is set now
        figures = drift_to_serving(settings, clock, url)
        reload_seconds = rollback_by_reload(settings, url)
        command_seconds = rollback_by_command(settings, url)
    return {
        **figures,
        "stages": clock.as_dicts(),
        "rollback_reload_seconds": [reload_seconds],
        "rollback_command_seconds": [command_seconds],
        "poll_seconds": settings.serving_poll_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--champion-days", type=int, default=9)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as folder:
        prepared, home = Path(folder) / "prepared", Path(folder) / "home"
        print(f"preparing {args.customers:,} customers, {HISTORY_DAYS} days ...", flush=True)
        with context.Pool(1) as pool:
            pool.apply(prepare, (home, args.customers, args.champion_days))
        home.rename(prepared)
        runs = []
        for index in range(args.runs):
            with context.Pool(1) as pool:
                runs.append(pool.apply(run, (prepared, home)))
            print(
                f"  run {index + 1}: drift day to serving {runs[-1]['to_serving_seconds']:.1f} s, "
                f"rollback {runs[-1]['rollback_reload_seconds'][0]:.2f} s (reload), "
                f"{runs[-1]['rollback_command_seconds'][0]:.2f} s (command + poll)",
                flush=True,
            )
    reload = [seconds for run in runs for seconds in run["rollback_reload_seconds"]]
    command = [seconds for run in runs for seconds in run["rollback_command_seconds"]]
    result = {
        "customers": args.customers,
        "runs": args.runs,
        "stages": summarize([run["stages"] for run in runs]),
        "to_serving_seconds": statistics.median(run["to_serving_seconds"] for run in runs),
        "to_serving_all": [round(run["to_serving_seconds"], 2) for run in runs],
        "peak_rss_mb": max(s["peak_rss_mb"] for run in runs for s in run["stages"]),
        "gate_blessed": [run["blessed"] for run in runs],
        "drift_reasons": runs[0]["reasons"],
        "rollback_reload_seconds": statistics.median(reload),
        "rollback_reload_all": [round(value, 3) for value in reload],
        "rollback_command_seconds": statistics.median(command),
        "rollback_command_all": [round(value, 3) for value in command],
        "poll_seconds": runs[0]["poll_seconds"],
    }
    print("| stage | wall (s) | CPU (s) | peak RSS (MB) |")
    print("| --- | ---: | ---: | ---: |")
    for row in result["stages"]:
        print(
            f"| {row['stage']} | {row['seconds']:.2f} | {row['cpu_seconds']:.2f} "
            f"| {row['peak_rss_mb']:,.0f} |"
        )
    print(
        f"drift day to serving: median {result['to_serving_seconds']:.1f} s; rollback: "
        f"{result['rollback_reload_seconds']:.2f} s (reload), "
        f"{result['rollback_command_seconds']:.2f} s (command + poll)"
    )
    write_results("retrain", result)


if __name__ == "__main__":
    main()
