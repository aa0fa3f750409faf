"""The integration story: the whole loop on real Airflow components, production profile,
tasks run by the CeleryExecutor on two workers (``celery_support``).

Simulated days end yesterday (UTC; the day before from midnight to 02:00, until the
last day's drift report is due), so the scheduler's clock and the data agree: a
catch-up or a "latest run" never reaches past the data. The days before the backfill
are seeded straight into the lake (``loop_support.publish_days``), the last two weeks
go through Airflow:

    day  0 .. 32   seeded: validated snapshots, features, matured labels
    day 33 .. 46   landing drops; ``customer_data`` backfill (REST), day 36 broken; a
                   worker is SIGKILLed in the middle of a task (the other runs its retry,
                   then the killed one starts again); the scheduler is restarted while
                   runs are in flight
    day 38 ..      ages drift (covariate drift, complete by day 41)
    as of day 40   ``continuous_training`` by hand (REST, logical date): promoted, deployed;
                   triggered at the same moment as a dry run as of day 39
    day 43 .. 46   ``drift_report`` backfill; day 43 emits ``churn_drift``, the scheduler
                   starts ``continuous_training`` as of day 44; days 44-46 fall in the
                   3-day cooldown after it, so exactly one drift-triggered run follows

Every training run overruns a 10-second budget, so the triggerer reports each missed
deadline (no alert channel is configured here: as a warning in its log).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from churnloop.demo.airflow_stack import FINISHED, AirflowClient
from churnloop.demo.simulation import Scenario, simulate
from churnloop.settings import get_settings
from tests.integration.celery_support import (
    WorkerKill,
    kill_a_worker_mid_task,
    wait_for_workers,
)
from tests.loop_support import (
    DRIFT_ALONE_TRIGGERS,
    FAST_MODEL,
    LOOP_GATE_ENV,
    NO_CANARY_ENV,
    publish_days,
)

DAG_IDS = ("customer_data", "continuous_training", "drift_report")
CUSTOMERS = 400
ADMIN_TOKEN = "integration-admin-token"
TRAINING_BUDGET_SECONDS = 10
"""Shorter than any training run of the story (~20 s on preloaded workers): each one misses
its Deadline Alert."""
DRIFT_REPORT_HOUR = 2
"""The UTC hour of ``drift_report``'s cron (``0 2 * * *``); a test holds the two together."""
KILLABLE_TASKS = frozenset({"ingest_snapshots", "ingest_labels", "build_features"})
"""``customer_data`` tasks that retry and do work (the sensors only look; validate_* never
retry; a killed materialize_features would hold the Feast pool's one slot until detected)."""


@dataclass(frozen=True)
class Timeline:
    last: dt.date
    days: int = 47
    first_backfilled: int = 33
    broken: int = 36
    drift_start: int = 38
    training_as_of: int = 40
    first_drift_report: int = 43
    cooldown_days: int = 3

    def day(self, index: int) -> dt.date:
        return self.last - dt.timedelta(days=self.days - 1 - index)

    @classmethod
    def ending_with_due_runs(cls, now: dt.datetime | None = None) -> Timeline:
        """Ending on the last day whose ``drift_report`` run is due by ``now``: that run's
        data interval ends at 02:00 UTC the next day, so before 02:00 it is the day before
        yesterday (a backfill creates no run that is not due yet)."""
        now = now or dt.datetime.now(dt.UTC)
        due_day = (now - dt.timedelta(hours=DRIFT_REPORT_HOUR)).date()
        return cls(last=due_day - dt.timedelta(days=1))


def story_environment(timeline: Timeline, serving_port: int) -> dict[str, str]:
    """Settings of the story (on top of the production profile's variables)."""
    return {
        "CHURNLOOP_SCHEDULE_START": timeline.day(timeline.first_backfilled).isoformat(),
        "CHURNLOOP_TRAINING_CRON": "null",  # real time is not the data's time here
        "CHURNLOOP_DRIFT_COOLDOWN_DAYS": str(timeline.cooldown_days),
        "CHURNLOOP_CUSTOMER_DATA_MAX_ACTIVE_RUNS": "4",
        "CHURNLOOP_TRAINING_WINDOW_DAYS": "10",
        "CHURNLOOP_HOLDOUT_DAYS": "3",
        "CHURNLOOP_GATE_MIN_ROC_AUC": "0.6",
        "CHURNLOOP_MODEL_PARAMS": FAST_MODEL,
        **LOOP_GATE_ENV,
        **NO_CANARY_ENV,
        **DRIFT_ALONE_TRIGGERS,
        "CHURNLOOP_SERVING_PORT": str(serving_port),
        "CHURNLOOP_SERVING_ADMIN_TOKEN": ADMIN_TOKEN,
        "CHURNLOOP_DEPLOY_START_SERVER": "false",
        "CHURNLOOP_TRAINING_RUN_BUDGET": str(TRAINING_BUDGET_SECONDS),
    }


@dataclass
class StoryRuns:
    customer_data: list[dict] = field(default_factory=list)
    training: list[dict] = field(default_factory=list)
    drift: list[dict] = field(default_factory=list)
    in_flight_at_restart: int = 0
    worker_kill: WorkerKill | None = None


def run_story(
    client: AirflowClient, timeline: Timeline, say: Callable[[str], None] = print
) -> StoryRuns:
    settings = get_settings()
    day = timeline.day
    scenario = Scenario(
        "covariate_drift",
        drift_start=day(timeline.drift_start),
        ramp_days=3,
        breaks={day(timeline.broken): "out_of_range"},
    )
    seeded = timeline.first_backfilled
    say(f"seeding days {day(0)}..{day(seeded - 1)} into the lake")
    publish_days(
        settings,
        scenario,
        seeded,
        start=day(0),
        customers=CUSTOMERS,
        labels_through=day(seeded - 1),
    )
    simulate(
        settings,
        day(timeline.first_backfilled),
        timeline.days - timeline.first_backfilled,
        CUSTOMERS,
        scenario,
        history_start=day(0),
        progress=lambda line: None,
    )
    client.wait_for_dags(DAG_IDS)
    wait_for_workers(client)
    runs = StoryRuns()

    client.backfill(
        "customer_data", day(timeline.first_backfilled), day(timeline.days - 1), max_active_runs=4
    )
    client.unpause("customer_data")
    broken = day(timeline.broken).isoformat()
    runs.worker_kill = kill_a_worker_mid_task(
        client,
        lambda ti: ti["task_id"] in KILLABLE_TASKS and not ti["logical_date"].startswith(broken),
        say,
    )
    backfilled = timeline.days - timeline.first_backfilled
    client.wait_for_runs("customer_data", 3, 1200, say)
    runs.in_flight_at_restart = sum(
        run["state"] not in FINISHED for run in client.runs("customer_data")
    )
    say(f"restarting the scheduler with {runs.in_flight_at_restart} runs in flight")
    client.restart("scheduler")
    runs.customer_data = client.wait_for_runs("customer_data", backfilled, 1200, say)

    client.unpause("continuous_training")
    triggers = [  # at once: max_active_runs=1 must run them one after the other
        (day(timeline.training_as_of), {}),
        (day(timeline.training_as_of - 1), {"dry_run": True}),
    ]
    with ThreadPoolExecutor(len(triggers)) as pool:
        list(
            pool.map(
                lambda trigger: client.trigger(
                    "continuous_training", _at_3(trigger[0]), trigger[1]
                ),
                triggers,
            )
        )
    client.wait_for_runs("continuous_training", len(triggers), 900, say)

    client.backfill(
        "drift_report", day(timeline.first_drift_report), day(timeline.days - 1), max_active_runs=1
    )
    client.unpause("drift_report")
    drift_reports = timeline.days - timeline.first_drift_report
    runs.drift = client.wait_for_runs("drift_report", drift_reports, 900, say)
    runs.training = client.wait_for_runs("continuous_training", len(triggers) + 1, 900, say)
    return runs


def _at_3(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(3), tzinfo=dt.UTC)
