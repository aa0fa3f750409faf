"""``make demo``: the loop on the embedded default, from simulated drops to a summary.

The demo simulates upstream (a run of healthy days, one broken drop, then drift), runs
the project's real DAGs on a real Airflow metadata DB (SQLite) with ``dag.test()``, and
ends with what happened and where to look. Airflow's own output goes to a log file so the
terminal shows one line per step.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from churnloop import schema, storage
from churnloop.airflow_env import prepare_airflow
from churnloop.settings import Settings

STATE_DIRS = ("landing", "lake", "mlflow", "feast")
"""What a demo run starts afresh; Airflow's own DB is kept, so earlier runs stay visible."""


@dataclass(frozen=True)
class DemoPlan:
    start: dt.date = dt.date(2026, 1, 1)
    days: int = 10
    customers: int = 2_000
    broken_day: int = 6
    breakage: str = "out_of_range"
    seed: int = 42

    def day(self, index: int) -> dt.date:
        return self.start + dt.timedelta(days=index)


@dataclass
class DemoSummary:
    validated: list[dt.date] = field(default_factory=list)
    quarantined: list[dt.date] = field(default_factory=list)
    failed_runs: dict[dt.date, str] = field(default_factory=dict)
    log_file: Path | None = None


def run_demo(settings: Settings, plan: DemoPlan, say: Callable[[str], None] = print) -> DemoSummary:
    """Run the whole demo; returns what the summary prints."""
    from churnloop.simulation import Scenario, simulate

    _reset_state(settings, say)
    log_file = settings.home / "demo.log"
    say(f"Simulating {plan.days} days of {plan.customers:,} customers from {plan.start} "
        f"({plan.breakage} on {plan.day(plan.broken_day)})")  # fmt: skip
    scenario = Scenario(breaks={plan.day(plan.broken_day): plan.breakage})
    simulate(settings, plan.start, plan.days, plan.customers, scenario, seed=plan.seed,
             progress=lambda line: None)  # fmt: skip

    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as log:
        prepare_airflow(settings, log)
    summary = DemoSummary(log_file=log_file)
    with _airflow_output_to(log_file):
        dag = _load_dag(settings, "customer_data")
    for index in range(plan.days):
        day = plan.day(index)
        began = time.perf_counter()
        with _airflow_output_to(log_file):
            states = _run_day(dag, day)
        failed = sorted(task for task, state in states.items() if state != "success")
        verdict = "ok" if not failed else f"FAILED at {', '.join(failed)}"
        say(f"  customer_data {day}: {verdict} ({time.perf_counter() - began:.1f} s)")
        if failed:
            summary.failed_runs[day] = ", ".join(failed)
    lake = storage.lake(settings)
    summary.validated = lake.partitions(schema.validated_dataset(schema.SNAPSHOTS))
    summary.quarantined = lake.partitions(schema.quarantine_dataset(schema.SNAPSHOTS))
    return summary


def render_summary(settings: Settings, summary: DemoSummary) -> str:
    from churnloop.links import report_url

    lake = storage.lake(settings)
    quarantine = schema.quarantine_dataset(schema.SNAPSHOTS)
    lines = [
        "",
        "What happened",
        f"  days validated:   {len(summary.validated)}",
        f"  days quarantined: {len(summary.quarantined)} "
        f"({', '.join(map(str, summary.quarantined)) or 'none'})",
    ]
    for day, tasks in sorted(summary.failed_runs.items()):
        lines.append(f"  failed run {day}: {tasks}")
    lines += [
        "",
        "Where to look",
        f"  validated data:  {lake.uri_of(schema.validated_dataset(schema.SNAPSHOTS))}",
        f"  quarantine:      {lake.uri_of(quarantine)} (data + validation result per day)",
        f"  Data Docs:       {lake.uri_of('reports/data_docs/index.html')}",
        f"                   {report_url(settings, 'reports/data_docs/index.html')}"
        " (with `make airflow`)",
        "  Airflow UI:      make airflow, then "
        f"{settings.airflow_api_url} (runs of customer_data, Report links on tasks)",
        f"  Airflow output:  {summary.log_file}",
    ]
    return "\n".join(lines)


def _reset_state(settings: Settings, say: Callable[[str], None]) -> None:
    for name in STATE_DIRS:
        shutil.rmtree(settings.home / name, ignore_errors=True)
    say(f"Demo state in {settings.home} (landing, lake, MLflow and Feast reset)")


def _load_dag(settings: Settings, dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.dags_dir))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag.dags[dag_id]


def _run_day(dag, day: dt.date) -> dict[str, str]:
    run = dag.test(logical_date=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    return {task: state.value if state else "no_status" for task, state in states.items()}


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
