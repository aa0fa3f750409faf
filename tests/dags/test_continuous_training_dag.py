"""The continuous_training DAG run for real (``dag.test()``): real Feast, GX, MLflow and a
real model server over HTTP, on simulated days; its canary on live requests.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from churnloop import champion, registry, storage
from churnloop.demo.simulation import Scenario
from churnloop.features import definition
from churnloop.schema import ENTITY
from tests.dags.dag_support import parsed_dag
from tests.loop_support import START, publish_days

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

CONCEPT_DRIFT = Scenario("concept_drift", drift_start=START + dt.timedelta(days=14), ramp_days=1)


@pytest.fixture
def dag(airflow_db, settings):
    return parsed_dag(settings, "continuous_training")


def run(dag, as_of: dt.date, **params):
    """One run as of ``as_of``; every Param is given, since dag.test keeps a run's conf."""
    logical = dt.datetime.combine(as_of, dt.time(3), tzinfo=dt.UTC)
    conf = {
        "training_window_days": 10,
        "holdout_days": 3,
        "dry_run": False,
        "force_promote_reason": None,
        "min_roc_auc": 0.65,
        **params,
    }
    result = dag.test(logical_date=logical, run_conf=conf)
    return {ti.task_id: ti.state for ti in result.get_task_instances()}


def test_bootstrap_then_drifted_retraining_then_rollback(dag, settings, served):
    import httpx

    from churnloop.settings import get_settings

    publish_days(settings, CONCEPT_DRIFT, days=26)
    first_as_of = START + dt.timedelta(days=41)  # window: snapshots of Jan 1..Jan 10

    states = run(dag, first_as_of)

    assert set(states.values()) == {"success"}, states
    current = get_settings()
    v1 = registry.champion_version(current)
    assert v1 is not None and int(v1.version) == 1
    assert v1.tags["gate.decision"] == "blessed"
    assert v1.tags["gate.noninferiority"].startswith("skipped"), "bootstrap skips changes"
    assert v1.tags["gate.comparison"] == "bootstrap"
    assert v1.tags["airflow.logical_date"] == first_as_of.isoformat()
    assert v1.tags["airflow.drift_events"] == "[]", "a scheduled run consumed no drift event"
    assert httpx.get(f"{served}/model").json()["version"] == 1, "deploy made the server serve v1"

    second_as_of = START + dt.timedelta(days=51)  # window Jan 11..Jan 20: concept drift inside
    states = run(dag, second_as_of)

    v2 = registry.model_version(current, 2)
    decision = v2.tags["gate.decision"]
    assert decision in ("blessed", "rejected")
    assert v2.tags["promotion"], "the outcome is recorded on the version"
    champion_after_drift = int(registry.champion_version(current).version)
    if decision == "blessed":
        assert champion_after_drift == 2 and states["deploy_champion"] == "success"
        assert httpx.get(f"{served}/model").json()["version"] == 2
    else:
        assert champion_after_drift == 1 and states["deploy_champion"] == "skipped"
        assert any(
            value.startswith("failed") for key, value in v2.tags.items() if key.startswith("gate.")
        )

    forced = run(
        dag,
        second_as_of + dt.timedelta(days=1),
        min_roc_auc=0.999,
        force_promote_reason="test: force v3 past a gate it fails",
    )
    assert forced["deploy_champion"] == "success"
    assert int(registry.champion_version(current).version) == 3
    v3 = registry.model_version(current, 3)
    assert v3.tags["gate.decision"] == "rejected"
    assert v3.tags["promotion.forced_reason"] == "test: force v3 past a gate it fails"

    champion.rollback(current, to_version=None, reason="test: back to the previous champion")
    assert int(registry.champion_version(current).version) == champion_after_drift
    history = champion.champion_history(current)
    assert [entry.kind for entry in history][-2:] == ["forced", "rollback"]


def test_dry_run_and_stale_backfill_promote_nothing(dag, settings, served):
    from churnloop.settings import get_settings

    publish_days(settings, Scenario(), days=26)
    late = START + dt.timedelta(days=51)
    assert run(dag, late)["deploy_champion"] == "success"
    current = get_settings()

    dry = run(dag, late + dt.timedelta(days=1), dry_run=True)
    assert dry["promote_challenger"] == "success" and dry["deploy_champion"] == "skipped"
    assert registry.model_version(current, 2).tags["promotion"].startswith("dry run")

    backfill = run(dag, START + dt.timedelta(days=41))  # older than the champion's data
    assert backfill["deploy_champion"] == "skipped"
    assert int(registry.champion_version(current).version) == 1
    assert registry.model_version(current, 3).tags["promotion"].startswith("stale")


def test_a_blank_reason_to_force_is_refused_before_the_run_exists(dag, settings):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="force_promote_reason"):
        run(dag, START + dt.timedelta(days=41), force_promote_reason="  ")


def test_the_weekly_schedule_is_a_setting_and_null_leaves_drift_runs_only(settings, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import AssetOrTimeSchedule

    def timetable():
        bag = DagBag(dag_folder=str(settings.dags_dir / "continuous_training.py"))
        return bag.dags["continuous_training"].timetable

    weekly = timetable()
    assert isinstance(weekly, AssetOrTimeSchedule)
    assert weekly.timetable.expression == "0 3 * * 1"
    monkeypatch.setenv("CHURNLOOP_TRAINING_CRON", "null")
    drift_only = timetable()
    assert not isinstance(drift_only, AssetOrTimeSchedule)
    assert drift_only.asset_condition.name == "churn_drift"


@pytest.fixture
def quick_canary(settings, monkeypatch):
    """A canary the DAG's sensor walks in seconds (set before the DAG is parsed: the poke
    interval is the sensor's)."""
    for name, value in {
        "CHURNLOOP_CANARY_POKE_SECONDS": "1",
        "CHURNLOOP_CANARY_MIN_REQUESTS": "30",
        "CHURNLOOP_CANARY_EVIDENCE_WAIT_FACTOR": "60",
        "CHURNLOOP_CANARY_SHADOW_FRACTION": "1",
    }.items():
        monkeypatch.setenv(name, value)


def test_a_forced_challenger_passes_its_canary_on_live_traffic_then_is_deployed(
    quick_canary, dag, settings, served
):
    """The DAG is parsed before the server starts (as in the other tests): Airflow's first
    import of its models and MLflow's first registry read in the server's thread would
    wait on each other (SQLAlchemy's mapper lock and the import lock)."""
    from churnloop.features.materialize import materialize_day
    from churnloop.settings import get_settings

    publish_days(settings, Scenario(), days=26)
    as_of = START + dt.timedelta(days=41)
    assert run(dag, as_of)["deploy_champion"] == "success"  # v1: the first champion, no canary
    current = get_settings()
    last_day = START + dt.timedelta(days=25)
    materialize_day(current, last_day, overlap_days=0)
    customers = storage.lake(current).read_table(definition.DATASET, last_day, [ENTITY])

    with live_traffic(served, customers.column(ENTITY).to_pylist()):
        states = run(
            dag,
            as_of + dt.timedelta(days=1),
            force_promote_reason="test: walk v2 through a canary",
            canary_steps=[0.5, 1.0],
            canary_bake_seconds=1,
        )

    assert states["canary"] == "success" and states["deploy_champion"] == "success", states
    assert int(registry.champion_version(current).version) == 2
    kinds = [(entry.version, entry.kind) for entry in champion.history_events(current)]
    started_and_two_steps = [(2, "canary-step")] * 3
    assert kinds[-5:] == [(2, "candidate"), *started_and_two_steps, (2, "canary")]
    assert "canary passed 50% -> 100%" in champion.champion_history(current)[-1].reason


@contextmanager
def live_traffic(url: str, customers: list[int]) -> Iterator[None]:
    """Requests by customer_id to the model server from a thread, until the block ends."""
    import httpx

    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for customer in itertools.cycle(customers):
                if stop.is_set():
                    return
                client.post("/predict", json={"customer_id": customer})

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        yield
    finally:
        stop.set()
        sender.join(timeout=30)
