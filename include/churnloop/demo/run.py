"""``make demo``: the loop on the embedded default, from simulated drops to a summary.

`run_demo` simulates upstream up to yesterday and runs the project's DAGs on a real Airflow
(`churnloop.demo.airflow_stack`) beside a model server; `render_summary` says what happened
and where to look. Airflow's output goes to log files.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from churnloop import schema, storage
from churnloop.settings import Settings, get_settings

if TYPE_CHECKING:
    from churnloop.demo.simulation import Scenario

STATE_DIRS = ("landing", "lake", "mlflow", "feast", "great_expectations", "airflow", "logs")
"""What a demo run starts afresh, Airflow's metadata DB included (its run ids are days)."""

DEMO_SETTINGS = {
    "CHURNLOOP_TRAINING_CRON": "null",
    "CHURNLOOP_CUSTOMER_DATA_MAX_ACTIVE_RUNS": "4",
    "CHURNLOOP_TUNING_TRIALS": "3",
    "CHURNLOOP_TUNING_TIMEOUT_SECONDS": "60",
    "CHURNLOOP_CANARY_BAKE_SECONDS": "20",
    "CHURNLOOP_CANARY_POKE_SECONDS": "10",
    "CHURNLOOP_CANARY_MIN_REQUESTS": "100",
    "CHURNLOOP_CANARY_SHADOW_FRACTION": "1",
}
"""The weekly schedule is off because the simulated days are not the wall clock's (the demo
triggers the weekly run itself when no drift asks for one). Tuning runs three trials within
a minute, to show them in MLflow at demo cost. The canary walks its default steps in
seconds: 20 s bakes on the demo's live traffic (`TRAFFIC_RATE`), each request scored by
both models, a look every 10 s (at 5 s the busy scheduler met Airflow's reschedule race,
docs/canary.md, which costs a retry)."""

TRAFFIC_RATE = 60.0
"""Requests a second by customer_id from the first champion on: a 10% step's 100 candidate
requests in about 17 s, and the ~800 champion requests that bound its p99."""

DAG_IDS = ("customer_data", "continuous_training", "drift_report")


@dataclass(frozen=True)
class DemoPlan:
    """The simulated story, ending yesterday (UTC); indexes are days from its start.

    The first training runs as of ``days - 8``; ages drift from three days later and
    ``drift_report`` covers every day after the training. A drifted day retrains only when
    the champion's ROC AUC estimated from its scores has dropped beyond
    ``drift_max_estimated_auc_drop`` (and past the cooldown); when none did, the demo runs
    the weekly training as of the last day itself. Either way a second version is judged,
    and a blessed one walks a canary on the demo's live traffic. 4,000 customers give the
    gate intervals narrow enough to bless both trainings; the broken day falls outside the
    first model's holdout (its days are the drift report's reference).
    """

    days: int = 60
    customers: int = 4_000
    broken_day: int = 25
    breakage: str = "out_of_range"
    training_window_days: int = 30
    seed: int = 42
    last: dt.date = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    )

    def __post_init__(self) -> None:
        if self.days < 50:
            raise ValueError(
                f"the demo needs at least 50 days (labels mature in 30), got {self.days}"
            )

    @property
    def start(self) -> dt.date:
        return self.day(0)

    @property
    def training_day(self) -> int:
        return self.days - 8

    @property
    def drift_day(self) -> int:
        return self.training_day + 3

    def day(self, index: int) -> dt.date:
        return self.last - dt.timedelta(days=self.days - 1 - index)

    def scenario(self) -> Scenario:
        """Ages drift from ``drift_day`` over three days; one day of drops breaks."""
        from churnloop.demo.simulation import Scenario

        return Scenario(
            "covariate_drift",
            drift_start=self.day(self.drift_day),
            ramp_days=3,
            breaks={self.day(self.broken_day): self.breakage},
        )


@dataclass
class DemoSummary:
    validated: list[dt.date] = field(default_factory=list)
    quarantined: list[dt.date] = field(default_factory=list)
    failed_runs: dict[dt.date, str] = field(default_factory=dict)
    trainings: list[str] = field(default_factory=list)
    drift_days: list[str] = field(default_factory=list)
    champion_history: list[str] = field(default_factory=list)
    traffic: str = ""
    served_version: int | None = None
    log_dir: Path | None = None


def run_demo(plan: DemoPlan, say: Callable[[str], None] = print) -> DemoSummary:
    """Run the whole story; returns what the summary prints."""
    from churnloop.demo.airflow_stack import airflow_stack
    from churnloop.demo.simulation import simulate

    for name, value in DEMO_SETTINGS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("CHURNLOOP_SCHEDULE_START", plan.start.isoformat())
    os.environ.setdefault("CHURNLOOP_TRAINING_WINDOW_DAYS", str(plan.training_window_days))
    settings = get_settings()
    _reset_state(settings, say)
    scenario = plan.scenario()
    say(
        f"Simulating {plan.days} days of {plan.customers:,} customers, {plan.start} to "
        f"{plan.last}: {plan.breakage} on {plan.day(plan.broken_day)}, ages drifting from "
        f"{plan.day(plan.drift_day)}"
    )
    simulate(
        settings,
        plan.start,
        plan.days,
        plan.customers,
        scenario,
        seed=plan.seed,
        progress=lambda line: None,
    )
    summary = DemoSummary(log_dir=settings.home / "logs")
    with (
        _model_server() as server_url,
        airflow_stack(get_settings(), summary.log_dir, say=say) as airflow,
    ):
        _run_story(plan, airflow, server_url, summary, say)
        summary.served_version = _served_version(server_url)
    _collect(get_settings(), summary)
    return summary


def _run_story(plan: DemoPlan, airflow, server_url: str, summary: DemoSummary, say) -> None:
    """Backfill the history; train as of the training day; backfill the drift reports and
    let the scheduler start the training that ``churn_drift`` asks for, while customers are
    scored live (the second model's canary judges those requests)."""
    from churnloop.demo.traffic import live_traffic

    airflow.wait_for_dags(DAG_IDS)
    say(f"customer_data: backfill {plan.start}..{plan.last} (Airflow backfill, 4 days at once)")
    airflow.backfill("customer_data", plan.start, plan.last, max_active_runs=4)
    airflow.unpause("customer_data")
    for run in airflow.wait_for_runs("customer_data", plan.days, 3600, _progress(say)):
        if run["state"] == "failed":
            failed = airflow.failed_tasks("customer_data", run["dag_run_id"])
            summary.failed_runs[_logical_day(run)] = ", ".join(failed)

    as_of = plan.day(plan.training_day)
    say(f"continuous_training: a run as of {as_of}, triggered through the REST API")
    airflow.unpause("continuous_training")
    airflow.trigger("continuous_training", dt.datetime.combine(as_of, dt.time(3), tzinfo=dt.UTC))
    airflow.wait_for_runs("continuous_training", 1, 1800, _progress(say))

    say(f"live traffic: {TRAFFIC_RATE:g} requests a second by customer_id to {server_url}")
    customers = range(1, plan.customers + 1)
    with live_traffic(server_url, customers, TRAFFIC_RATE) as traffic:
        _judge_the_second_model(plan, airflow, summary, say)
    summary.traffic = traffic.describe()
    hand_over(airflow, say)


def _judge_the_second_model(plan: DemoPlan, airflow, summary: DemoSummary, say) -> None:
    first, reports = plan.day(plan.training_day + 1), plan.days - plan.training_day - 1
    say(f"drift_report: backfill {first}..{plan.last}; churn_drift starts training by itself")
    airflow.backfill("drift_report", first, plan.last, max_active_runs=1)
    airflow.unpause("drift_report")
    emitted = 0
    for run in sorted(
        airflow.wait_for_runs("drift_report", reports, 1800, _progress(say)), key=_logical_day
    ):
        line, triggered = _drift_line(airflow, run)
        summary.drift_days.append(line)
        emitted += triggered
    if not emitted:
        say(
            f"continuous_training: no drift hurt the champion; the weekly run as of "
            f"{plan.last}, triggered through the REST API"
        )
        airflow.trigger(
            "continuous_training", dt.datetime.combine(plan.last, dt.time(3), tzinfo=dt.UTC)
        )
    trainings = airflow.wait_for_runs("continuous_training", 2, 1800, _progress(say))
    summary.trainings = [_training_line(airflow, run) for run in trainings]


def hand_over(airflow, say: Callable[[str], None]) -> None:
    """Pause every DAG again, so that ``make airflow`` afterwards shows the demo's runs and
    starts none: the wall clock's schedules (weekly training) are not the simulated days'."""
    for dag_id in DAG_IDS:
        airflow.pause(dag_id)
    say(f"paused {', '.join(DAG_IDS)}: make airflow opens them as the demo left them")


def _progress(say: Callable[[str], None]) -> Callable[[str], None]:
    return lambda line: say(f"  {line}")


def _logical_day(run: dict) -> dt.date:
    return dt.datetime.fromisoformat(run["logical_date"] or run["run_after"]).date()


def _drift_line(airflow, run: dict) -> tuple[str, bool]:
    states = airflow.task_states("drift_report", run["dag_run_id"])
    day = _logical_day(run)
    if states.get("check_drift") != "success":
        return f"drift_report {day}: check_drift {states.get('check_drift')}", False
    report = airflow.xcom("drift_report", run["dag_run_id"], "check_drift")
    emitted = states.get("emit_churn_drift") == "success"
    drifted = ", ".join(report["drifted_columns"][:4]) or "none"
    action = "churn_drift emitted" if emitted else f"not emitted ({report['suppressed']})"
    return (
        f"drift_report {day}: {len(report['reasons'])} reason(s), drifted: {drifted} -> {action}"
        f"\n      {performance_line(report)}",
        emitted,
    )


def performance_line(report: dict) -> str:
    """The champion's ROC AUC estimated on the day, beside the realized one of the day whose
    labels matured on it (30 days earlier)."""
    estimate = report["estimated_performance"]
    if estimate["estimate"] is None:
        line = f"ROC AUC not estimated ({estimate['not_judged_reason']})"
    else:
        interval = estimate["estimate"]
        line = (
            f"estimated ROC AUC {interval['estimate']:.3f} [{interval['low']:.3f}, "
            f"{interval['high']:.3f}] vs {estimate['reference_auc']:.3f} on the reference"
        )
    realized = report.get("realized_performance") or {}
    if realized.get("auc") is not None:
        line += f"; realized {realized['auc']:.3f} on the labels that matured that day"
    return line


def _training_line(airflow, run: dict) -> str:
    run_id = run["dag_run_id"]
    states = airflow.task_states("continuous_training", run_id)
    plan = airflow.xcom("continuous_training", run_id, "plan")
    drift = plan["trigger"] == "drift"
    head = f"continuous_training as of {plan['as_of']} "
    head += "(churn_drift, started by the scheduler)" if drift else f"({run['run_type']})"
    if states.get("promote_challenger") != "success":
        return f"{head}: failed at {', '.join(airflow.failed_tasks('continuous_training', run_id))}"
    promoted = airflow.xcom("continuous_training", run_id, "promote_challenger")
    decision = airflow.xcom("continuous_training", run_id, "evaluate_challenger")
    outcome = f"v{promoted['version']}: {promoted['reason']}"
    evidence = "; ".join(gate_evidence(decision))
    steps = f"canary {states.get('canary')}; deploy {states.get('deploy_champion')}"
    return f"{head}: {outcome}; {steps}\n      {evidence}"


def gate_evidence(decision: dict) -> list[str]:
    """The gate's comparison with the champion and the baseline it beat, with intervals."""
    from churnloop.training.decision_text import evidence_lines
    from churnloop.training.gate import Decision

    judged = Decision.from_dict(decision)
    return [f"vs champion: {judged.comparison}", *evidence_lines(judged)]


def _collect(settings: Settings, summary: DemoSummary) -> None:
    from churnloop.champion import history_events

    lake = storage.lake(settings)
    summary.validated = lake.partitions(schema.validated_dataset(schema.SNAPSHOTS))
    summary.quarantined = lake.partitions(schema.quarantine_dataset(schema.SNAPSHOTS))
    summary.champion_history = [
        without_readings(entry.describe()) for entry in history_events(settings)
    ]


def without_readings(line: str) -> str:
    """A history line with each guardrail's verdict but not its numbers (``churnloop
    champion-history`` shows them)."""
    from churnloop.canary.guardrails import GUARDRAILS

    head, *verdicts = re.split(rf"; (?=(?:{'|'.join(GUARDRAILS)}) )", line)
    return "; ".join([head, *(verdict.split(":", 1)[0] for verdict in verdicts)])


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
        "  champion history (canary steps included):",
        *(f"    {line}" for line in summary.champion_history),
        "  drift days:",
        *(f"    {line}" for line in summary.drift_days),
        f"  live traffic: {summary.traffic}",
        f"  served by the model server: v{summary.served_version}",
        "",
        "Where to look",
        f"  validated data:  {lake.uri_of(schema.validated_dataset(schema.SNAPSHOTS))}",
        f"  quarantine:      {lake.uri_of(schema.quarantine_dataset(schema.SNAPSHOTS))}",
        f"  Data Docs:       {lake.uri_of('reports/data_docs/index.html')}",
        f"  drift reports:   {lake.uri_of('reports/drift')}",
        "  MLflow UI:       make mlflow, then http://127.0.0.1:5000"
        " (model cards: each version's run, artifact model_card.md)",
        f"  Airflow UI:      make airflow (the demo's runs are in its DB), then "
        f"{settings.airflow_api_url}, no sign-in (every user is an admin); reports at "
        f"{report_url(settings, 'reports/data_docs/index.html')}",
        "  model server:    make serve (serves @champion)",
        f"  Airflow logs:    {summary.log_dir} (components) and "
        f"{settings.home / 'airflow' / 'logs'} (tasks)",
    ]
    return "\n".join(lines)


def _reset_state(settings: Settings, say: Callable[[str], None]) -> None:
    for name in STATE_DIRS:
        shutil.rmtree(settings.home / name, ignore_errors=True)
    say(f"Demo state in {settings.home} (landing, lake, MLflow, Feast, GX and Airflow reset)")


@contextmanager
def _model_server() -> Iterator[str]:
    """The demo's own model server (``churnloop serve``) on a free loopback port.

    Deploy tasks find it through the settings (port and admin token set here).
    """
    from churnloop.demo.airflow_stack import free_port
    from churnloop.serving.process import running_model_server

    os.environ.setdefault("CHURNLOOP_SERVING_ADMIN_TOKEN", secrets.token_urlsafe(24))
    os.environ["CHURNLOOP_SERVING_PORT"] = str(free_port())
    with running_model_server(get_settings()) as url:
        yield url


def _served_version(url: str) -> int | None:
    import httpx

    return httpx.get(f"{url}/model", timeout=10).json().get("version")
