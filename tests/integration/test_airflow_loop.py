"""The whole loop on real Airflow components and the production profile's real services.

An api-server, a scheduler (CeleryExecutor), a dag-processor, a triggerer and two Celery
workers (Redis broker, results in PostgreSQL) on a PostgreSQL metadata DB; the lake and
MLflow's artifacts in S3 (SeaweedFS); an MLflow tracking server on PostgreSQL; Feast's
online store in Redis and its registry in PostgreSQL; the model server as its own process.
Everything is driven through Airflow's REST API, and the asset-triggered training run is
started by the scheduler itself; one worker is SIGKILLed in the middle of a task on the
way (see ``loop_story``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections import Counter

import httpx
import pytest
from airflow.api_fastapi.auth.managers.base_auth_manager import (
    COOKIE_NAME_JWT_TOKEN as SESSION_COOKIE,
)

from churnloop import registry, schema, storage
from churnloop.demo.run import DAG_IDS, hand_over
from churnloop.features import definition
from churnloop.features.online import FOUND, online_features
from churnloop.links import in_this_ui
from churnloop.settings import get_settings
from tests.integration.celery_support import WORKERS
from tests.integration.loop_story import ADMIN_TOKEN, TRAINING_BUDGET_SECONDS

CELERY_EXECUTOR_LOADED = "Loaded executor: :CeleryExecutor:"
PRELOADED = "Preloaded task libraries"

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]  # the first test waits for the whole story


@pytest.fixture
def loop(airflow_loop, monkeypatch):
    """The loop, with this process's settings pointing where its components worked."""
    for name, value in airflow_loop.environment.items():
        monkeypatch.setenv(name, value)
    return airflow_loop


def by_day(runs: list[dict]) -> dict[dt.date, dict]:
    return {dt.datetime.fromisoformat(run["logical_date"]).date(): run for run in runs}


def test_backfill_ran_every_day_and_the_broken_day_stopped_at_validation(loop):
    timeline = loop.timeline
    runs = by_day(loop.runs.customer_data)
    backfilled = [timeline.day(i) for i in range(timeline.first_backfilled, timeline.days)]
    assert sorted(runs) == backfilled
    assert {run["run_type"] for run in runs.values()} == {"backfill"}
    broken = timeline.day(timeline.broken)
    assert {day for day, run in runs.items() if run["state"] == "failed"} == {broken}
    states = loop.client.task_states("customer_data", runs[broken]["dag_run_id"])
    assert states["validate_snapshots"] == "failed"
    assert states["build_features"] == states["materialize_features"] == "upstream_failed"

    lake = storage.lake(get_settings())
    assert lake.uri_of("").startswith("s3://")
    validated = set(lake.partitions(schema.validated_dataset(schema.SNAPSHOTS)))
    assert validated == {timeline.day(i) for i in range(timeline.days)} - {broken}
    assert lake.partitions(schema.quarantine_dataset(schema.SNAPSHOTS)) == [broken]
    assert broken not in lake.partitions(definition.DATASET)


def test_features_of_the_last_day_are_online_in_redis(loop):
    settings = get_settings()
    assert settings.feast_redis
    last = storage.lake(settings).read_table(definition.DATASET, loop.timeline.last)
    customers = last.column(schema.ENTITY).to_pylist()[:20]
    online = online_features(settings, customers)
    assert online[FOUND].all()


def test_backfill_survived_a_scheduler_restart(loop):
    """The scheduler was restarted (SIGTERM, as a deploy would) with runs in flight, their
    tasks going on on the workers, and every run still finished as it should (the states
    are checked above)."""
    assert loop.runs.in_flight_at_restart > 0
    scheduler_log = loop.client.components["scheduler"].log_path.read_text()
    assert scheduler_log.count(CELERY_EXECUTOR_LOADED) == 2


def test_tasks_ran_on_both_celery_workers(loop):
    """Every task instance that ran records the worker it ran on: one of the two, and both
    took their share."""
    hosts = Counter(
        ti["hostname"]
        for dag_id in DAG_IDS
        for run in loop.client.runs(dag_id)
        for ti in loop.client.task_instances(dag_id, run["dag_run_id"])
        if ti["hostname"]
    )
    assert set(hosts) == set(WORKERS), hosts


def test_a_worker_killed_mid_task_left_the_task_to_the_other(loop):
    """A SIGKILLed worker says nothing: the scheduler finds its task by the missing
    heartbeat, the retry runs on the worker left, and the run ends as if nothing happened;
    the killed worker was started again."""
    kill = loop.runs.worker_kill
    tries = {
        attempt["try_number"]: attempt
        for attempt in loop.client.task_tries(kill.dag_id, kill.dag_run_id, kill.task_id)
    }
    killed_try, last_try = tries[kill.try_number], tries[max(tries)]
    assert killed_try["hostname"] == kill.killed and killed_try["state"] != "success", tries
    assert last_try["try_number"] > kill.try_number
    assert (last_try["hostname"], last_try["state"]) == (kill.survivor, "success"), tries
    (run,) = [run for run in loop.runs.customer_data if run["dag_run_id"] == kill.dag_run_id]
    assert run["state"] == "success"
    assert loop.client.components[kill.killed].log_path.read_text().count(PRELOADED) >= 2


def test_two_triggers_at_once_ran_one_at_a_time(loop):
    manual = sorted(
        (run for run in loop.runs.training if run["run_type"] == "manual"),
        key=lambda run: run["start_date"],
    )
    assert [run["state"] for run in manual] == ["success", "success"], manual
    first, second = manual
    assert first["end_date"] <= second["start_date"], "continuous_training ran twice at once"


def test_each_training_run_over_its_budget_raised_a_deadline_alert(loop):
    """The scheduler marked each run's deadline missed and the triggerer ran the callback."""
    triggerer_log = loop.client.components["triggerer"].log_path.read_text()
    alerts = triggerer_log.split("this alert would be sent:")[1:]
    budget = dt.timedelta(seconds=TRAINING_BUDGET_SECONDS)
    missed = f"missed its deadline: not finished {budget} after it was queued"
    for run in loop.runs.training:
        run_fact = f"Run: {run['dag_run_id']}\n"
        assert any(missed in alert and run_fact in alert for alert in alerts), run["dag_run_id"]


def test_manual_training_promoted_and_deployed(loop):
    (real,) = [
        run
        for run in loop.runs.training
        if run["run_type"] == "manual" and not run["conf"].get("dry_run")
    ]
    states = loop.client.task_states("continuous_training", real["dag_run_id"])
    assert set(states.values()) == {"success"}, states
    trained = loop.client.xcom("continuous_training", real["dag_run_id"], "train_challenger")
    deployed = loop.client.xcom("continuous_training", real["dag_run_id"], "deploy_champion")
    assert deployed["version"] == trained["version"]
    version = registry.model_version(get_settings(), trained["version"])
    assert version.tags["airflow.logical_date"] == loop.timeline.day(40).isoformat()


def test_drift_day_emitted_churn_drift_and_the_scheduler_started_training(loop):
    timeline = loop.timeline
    reports = by_day(loop.runs.drift)
    first = timeline.day(timeline.first_drift_report)
    assert sorted(reports) == [timeline.day(i) for i in range(43, timeline.days)]
    assert {run["run_type"] for run in reports.values()} == {"backfill"}
    emitted = {
        day
        for day, run in reports.items()
        if loop.client.task_states("drift_report", run["dag_run_id"])["emit_churn_drift"]
        == "success"
    }
    assert emitted == {first}, "one drift day triggers; the cooldown holds the others back"
    later = loop.client.xcom("drift_report", reports[timeline.day(44)]["dag_run_id"], "check_drift")
    assert later["suppressed"], later

    assert len(loop.client.runs("continuous_training")) == 3, "two manual runs, one drift run"
    triggered = [run for run in loop.runs.training if run["run_type"] == "asset_triggered"]
    assert len(triggered) == 1 and triggered[0]["state"] == "success", loop.runs.training
    plan = loop.client.xcom("continuous_training", triggered[0]["dag_run_id"], "plan")
    assert plan["trigger"] == "drift"
    assert plan["as_of"] == (first + dt.timedelta(days=1)).isoformat()
    assert [event["day"] for event in plan["drift_events"]] == [first.isoformat()]
    trained = loop.client.xcom(
        "continuous_training", triggered[0]["dag_run_id"], "train_challenger"
    )
    version = registry.model_version(get_settings(), trained["version"])
    assert [event["day"] for event in json.loads(version.tags["airflow.drift_events"])] == [
        first.isoformat()
    ]


def main_log(client, dag_id: str, run_id: str, task_id: str) -> str:
    """What the UI shows of a task's log before its collapsed "Post Execute" group."""
    lines = client.task_log(dag_id, run_id, task_id)
    return "\n".join(lines[: lines.index("::group::Post Execute")])


def test_decisions_are_in_the_main_log_of_their_task(loop):
    """Printed lines reach Airflow on another channel than logging, and landed after the
    group marker in some runs; the returned dict is not logged over them."""
    (triggered,) = [run for run in loop.runs.training if run["run_type"] == "asset_triggered"]
    run_id = triggered["dag_run_id"]
    gate = main_log(loop.client, "continuous_training", run_id, "evaluate_challenger")
    assert "Evaluation gate: " in gate and "Returned value was" not in gate
    suppressed = by_day(loop.runs.drift)[loop.timeline.day(44)]
    skipped = main_log(loop.client, "drift_report", suppressed["dag_run_id"], "emit_churn_drift")
    assert "skipped: churn_drift not emitted: " in skipped


def test_the_emitting_days_report_opens_with_its_decision(loop):
    """On-call follows the event's link: the page's first words are the decision."""
    (emitting,) = [
        run
        for run in loop.runs.drift
        if loop.client.task_states("drift_report", run["dag_run_id"])["emit_churn_drift"]
        == "success"
    ]
    event = loop.client.xcom("drift_report", emitting["dag_run_id"], "emit_churn_drift")
    page = httpx.get(
        loop.client.login.base_url + in_this_ui(event["report_url"]),
        headers={"Authorization": f"Bearer {loop.client.token()}"},
        timeout=30,
    )
    assert page.status_code == 200, page.text[:300]
    verdict = page.text[page.text.index('id="churnloop-drift-verdict"') :]
    first = verdict[verdict.index("<h1>") : verdict.index("</p>")]
    assert "Decision: retrain: churn_drift emitted (" in first, first


def test_the_model_server_serves_the_champion(loop):
    settings = get_settings()
    champion = registry.champion_version(settings)
    served = httpx.get(f"{loop.server_url}/model", timeout=10).json()
    assert served["version"] == int(champion.version)
    last = storage.lake(settings).read_table(definition.DATASET, loop.timeline.last)
    customer = last.column(schema.ENTITY)[0].as_py()
    answer = httpx.post(f"{loop.server_url}/predict", json={"customer_id": customer}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == int(champion.version)
    assert ADMIN_TOKEN not in answer.text


def test_tasks_forked_from_workers_that_preloaded_the_task_libraries(loop):
    """The scheduler hands tasks to Celery, and each worker imported GX, Feast, MLflow...
    once, before forking its pool (``churnloop.orchestration.celery_config``)."""
    scheduler_log = loop.client.components["scheduler"].log_path.read_text()
    assert CELERY_EXECUTOR_LOADED in scheduler_log
    for name in WORKERS:
        assert PRELOADED in loop.client.components[name].log_path.read_text(), name


def test_reports_are_served_to_signed_in_users_only(loop):
    """The plugin's report pages hold data (Data Docs show failing values)."""
    page = f"{loop.client.login.base_url}/churnloop/reports/data_docs/index.html"
    anonymous = httpx.get(page, timeout=30)
    assert anonymous.status_code == 401 and "Data Docs" not in anonymous.text
    forged = httpx.get(page, cookies={SESSION_COOKIE: uuid.uuid4().hex}, timeout=30)
    assert forged.status_code == 403
    for credentials in (
        {"headers": {"Authorization": f"Bearer {loop.client.token()}"}},
        {"cookies": {SESSION_COOKIE: loop.client.token()}},  # what the UI's extra link sends
    ):
        signed_in = httpx.get(page, timeout=30, **credentials)
        assert signed_in.status_code == 200, signed_in.text[:300]
        assert "customer_snapshots" in signed_in.text


def test_the_demo_hands_over_a_stack_that_starts_nothing_by_itself(loop):
    """``make demo`` ends with `hand_over`; ``make airflow`` then must change nothing."""
    client = loop.client
    before = {dag_id: len(client.runs(dag_id)) for dag_id in DAG_IDS}

    hand_over(client, say=lambda line: None)
    client.restart("scheduler")  # as make airflow starts one afresh
    time.sleep(30)

    assert all(client.is_paused(dag_id) for dag_id in DAG_IDS)
    assert {dag_id: len(client.runs(dag_id)) for dag_id in DAG_IDS} == before
