"""``make demo``: the loop on the embedded default, from simulated drops to a summary.

The demo simulates upstream (healthy days, one broken drop, then covariate drift), runs
the project's real DAGs with ``dag.test()`` on a real Airflow metadata DB (SQLite), serves
the champion from a real model server, and ends with what happened and where to look.

What ``dag.test()`` cannot do is deliver asset events: where the scheduler would start
``continuous_training`` from a ``churn_drift`` event, the demo starts that run itself,
the next day, and says so. ``make airflow`` runs the same DAGs on a real scheduler.
Airflow's own output goes to a log file, so the terminal shows one line per step.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from churnloop import schema, storage
from churnloop.airflow_env import prepare_airflow
from churnloop.settings import Settings, get_settings

STATE_DIRS = ("landing", "lake", "mlflow", "feast", "great_expectations")
"""What a demo run starts afresh; Airflow's own DB is kept, so earlier runs stay visible."""

DEMO_SETTINGS = {"CHURNLOOP_DRIFT_SHARE_THRESHOLD": "0.8"}
"""The simulated history is short: 30- and 90-day windows are still filling, so about half
the features drift by construction. The demo judges drift by its important columns
(settings.drift_important_columns) and only an overwhelming share of the rest."""


@dataclass(frozen=True)
class DemoPlan:
    """The simulated story; indexes are days from ``start``."""

    start: dt.date = dt.date(2026, 1, 1)
    days: int = 50
    customers: int = 2_000
    broken_day: int = 20
    breakage: str = "out_of_range"
    first_training_day: int = 42
    drift_day: int = 44
    training_window_days: int = 30
    seed: int = 42

    def day(self, index: int) -> dt.date:
        return self.start + dt.timedelta(days=index)


@dataclass
class DemoSummary:
    validated: list[dt.date] = field(default_factory=list)
    quarantined: list[dt.date] = field(default_factory=list)
    failed_runs: dict[dt.date, str] = field(default_factory=dict)
    trainings: list[str] = field(default_factory=list)
    drift_days: list[str] = field(default_factory=list)
    champion_history: list[str] = field(default_factory=list)
    served_version: int | None = None
    log_file: Path | None = None


def run_demo(plan: DemoPlan, say: Callable[[str], None] = print) -> DemoSummary:
    """Run the whole story; returns what the summary prints."""
    from churnloop.simulation import Scenario, simulate

    for name, value in DEMO_SETTINGS.items():
        os.environ.setdefault(name, value)
    settings = get_settings()
    _reset_state(settings, say)
    log_file = settings.home / "demo.log"
    scenario = Scenario(
        "covariate_drift",
        drift_start=plan.day(plan.drift_day),
        ramp_days=3,
        breaks={plan.day(plan.broken_day): plan.breakage},
    )
    say(f"Simulating {plan.days} days of {plan.customers:,} customers from {plan.start}: "
        f"{plan.breakage} on {plan.day(plan.broken_day)}, ages drifting from "
        f"{plan.day(plan.drift_day)}")  # fmt: skip
    simulate(settings, plan.start, plan.days, plan.customers, scenario, seed=plan.seed,
             progress=lambda line: None)  # fmt: skip

    summary = DemoSummary(log_file=log_file)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as log:
        prepare_airflow(settings, log)
    with _airflow_output_to(log_file):
        dags = {name: _load_dag(settings, name) for name in _DAGS}
    with _model_server() as server_url:
        settings = get_settings()
        _run_story(plan, dags, summary, log_file, say)
        summary.served_version = _served_version(server_url)
    _collect(settings, summary)
    return summary


_DAGS = ("customer_data", "continuous_training", "drift_report")


def _run_story(plan: DemoPlan, dags: dict, summary: DemoSummary, log_file: Path, say) -> None:
    """Day by day: customer_data; the first weekly training; then daily drift reports,
    each emitted ``churn_drift`` followed by the training run the scheduler would start."""
    params = {"training_window_days": plan.training_window_days}
    for index in range(plan.days):
        day = plan.day(index)
        states = _run(dags["customer_data"], day, log_file)
        failed = sorted(task for task, (state, _) in states.items() if state == "failed")
        say(f"  customer_data {day}: " + (f"FAILED at {', '.join(failed)}" if failed else "ok"))
        if failed:
            summary.failed_runs[day] = ", ".join(failed)
        as_of = day + dt.timedelta(days=1)
        if index + 1 == plan.first_training_day:
            summary.trainings.append(_train(dags, as_of, params, "weekly", log_file, say))
        elif index + 1 > plan.first_training_day and _drift(dags, day, summary, log_file, say):
            why = "churn_drift, started by the demo"
            summary.trainings.append(_train(dags, as_of, params, why, log_file, say))


def _train(dags, as_of: dt.date, params: dict, why: str, log_file: Path, say) -> str:
    states = _run(dags["continuous_training"], as_of, log_file, hour=3, conf=params)
    promoted = states["promote_challenger"][1] or {}
    version = promoted.get("version", "?")
    outcome = promoted.get("reason", states["promote_challenger"][0])
    deployed = states["deploy_champion"][0]
    line = f"continuous_training as of {as_of} ({why}): v{version}: {outcome}; deploy {deployed}"
    say(f"  {line}")
    return line


def _drift(dags, day: dt.date, summary: DemoSummary, log_file: Path, say) -> bool:
    states = _run(dags["drift_report"], day, log_file, hour=2)
    report = states["check_drift"][1] or {}
    emitted = states["emit_churn_drift"][0] == "success"
    drifted = ", ".join(report.get("drifted_columns", [])[:4]) or "none"
    reasons = len(report.get("reasons", []))
    action = "churn_drift emitted" if emitted else f"not emitted ({report.get('suppressed')})"
    line = f"drift_report {day}: {reasons} reason(s), drifted: {drifted}... -> {action}"
    summary.drift_days.append(line)
    say(f"  {line}")
    return emitted


def _run(dag, day: dt.date, log_file: Path, hour: int = 0, conf: dict | None = None):
    """Run ``dag`` for ``day``; {task_id: (state, return value)}."""
    logical = dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)
    with _airflow_output_to(log_file):
        run = dag.test(logical_date=logical, run_conf=conf)
        return {
            ti.task_id: (str(ti.state or "no_status"), ti.xcom_pull(ti.task_id))
            for ti in run.get_task_instances()
        }


def _collect(settings: Settings, summary: DemoSummary) -> None:
    from churnloop.registry import champion_history

    lake = storage.lake(settings)
    summary.validated = lake.partitions(schema.validated_dataset(schema.SNAPSHOTS))
    summary.quarantined = lake.partitions(schema.quarantine_dataset(schema.SNAPSHOTS))
    summary.champion_history = [entry.as_line() for entry in champion_history(settings)]


def render_summary(summary: DemoSummary) -> str:
    from churnloop.links import report_url

    settings = get_settings()
    lake = storage.lake(settings)
    quarantined = ", ".join(map(str, summary.quarantined)) or "none"
    lines = [
        "",
        "What happened",
        f"  days validated:   {len(summary.validated)}",
        f"  days quarantined: {len(summary.quarantined)} ({quarantined})",
        *(f"  failed run {day}: {tasks}" for day, tasks in sorted(summary.failed_runs.items())),
        "  models trained:",
        *(f"    {line}" for line in summary.trainings),
        "  champion history:",
        *(f"    {line}" for line in summary.champion_history),
        "  drift days:",
        *(f"    {line}" for line in summary.drift_days),
        f"  served by the model server: v{summary.served_version}",
        "",
        "Where to look",
        f"  validated data:  {lake.uri_of(schema.validated_dataset(schema.SNAPSHOTS))}",
        f"  quarantine:      {lake.uri_of(schema.quarantine_dataset(schema.SNAPSHOTS))}",
        f"  Data Docs:       {lake.uri_of('reports/data_docs/index.html')}",
        f"  drift reports:   {lake.uri_of('reports/drift')}",
        f"  MLflow UI:       .venv/bin/mlflow ui --backend-store-uri {settings.mlflow_tracking_uri}"
        " (model cards: each version's run, artifact model_card.md)",
        f"  Airflow UI:      make airflow, then {settings.airflow_api_url}; reports at "
        f"{report_url(settings, 'reports/data_docs/index.html')}",
        "  model server:    make serve (serves @champion)",
        f"  Airflow output:  {summary.log_file}",
    ]
    return "\n".join(lines)


def _reset_state(settings: Settings, say: Callable[[str], None]) -> None:
    for name in STATE_DIRS:
        shutil.rmtree(settings.home / name, ignore_errors=True)
    say(f"Demo state in {settings.home} (landing, lake, MLflow, Feast and GX state reset)")


def _load_dag(settings: Settings, dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.dags_dir / f"{dag_id}.py"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag.dags[dag_id]


@contextmanager
def _model_server() -> Iterator[str]:
    """The demo's own model server on a free loopback port, stopped at the end.

    Deploy tasks find it through the settings (port and admin token set here).
    """
    from churnloop.serving import create_app, serve_in_background

    os.environ.setdefault("CHURNLOOP_SERVING_ADMIN_TOKEN", secrets.token_urlsafe(24))
    with serve_in_background(create_app(get_settings())) as url:
        os.environ["CHURNLOOP_SERVING_PORT"] = url.rsplit(":", 1)[1]
        yield url


def _served_version(url: str) -> int | None:
    import httpx

    return httpx.get(f"{url}/model", timeout=10).json().get("version")


@contextmanager
def _airflow_output_to(log_file: Path) -> Iterator[None]:
    """Send everything written to fd 1 and 2 (Airflow logs a lot) to ``log_file``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log_file.open("a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
