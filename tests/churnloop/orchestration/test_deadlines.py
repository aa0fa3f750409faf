"""Deadline Alerts: which runs a deadline judges, and what on-call reads when one is missed.

The scheduler and triggerer delivering a missed deadline for real are in
tests/integration/test_late_data.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import pytest

from churnloop.orchestration import deadlines
from churnloop.orchestration.alerts import as_html, as_slack, as_text
from churnloop.orchestration.deadlines import (
    ScheduledDayEnd,
    customer_data_deadline,
    deadline_missed,
    missed_deadline,
    training_budget,
)
from churnloop.settings import get_settings

DAY = dt.datetime(2026, 3, 4, tzinfo=dt.UTC)
PASSWORD = "pl4nted-pw"


def run_context(dag_run_id: str = "scheduled__2026-03-04T00:00:00+00:00", **run) -> dict:
    """The context Airflow gives a deadline's callback: the run as the REST API shows it."""
    return {
        "dag_run": {
            "dag_id": "customer_data",
            "dag_run_id": dag_run_id,
            "logical_date": DAY.isoformat(),
            "queued_at": (DAY + dt.timedelta(days=1)).isoformat(),
            "state": "running",
            **run,
        },
        "deadline": {"id": "0", "deadline_time": DAY + dt.timedelta(days=1, hours=8)},
    }


@pytest.mark.airflow
@pytest.mark.parametrize(
    ("run_type", "ended_hours_ago", "judged"),
    [
        ("scheduled", 2, True),
        ("scheduled", 72, False),  # a catch-up of old days: a first deploy, an outage
        ("backfill", 2, False),
        ("manual", 2, False),
    ],
)
def test_only_a_day_scheduled_on_time_is_judged_by_its_end(
    airflow_db, run_type, ended_hours_ago, judged
):
    """A backfill of last month, or a catch-up of it, is not late by last month's clock:
    judged by its day, every such run would alert at once."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=ended_hours_ago)
    run_id = f"{run_type}__{ended_hours_ago}h-deadline-test"
    with create_session() as session:
        session.add(
            DagRun(
                dag_id="deadline_reference_test",
                run_id=run_id,
                run_type=run_type,
                logical_date=end - dt.timedelta(days=1),
                data_interval=(end - dt.timedelta(days=1), end),
                state="queued",
            )
        )
        session.flush()
        reference = ScheduledDayEnd()._evaluate_with(
            session=session, dag_id="deadline_reference_test", run_id=run_id
        )
        session.rollback()

    assert reference == (end if judged else None)


def test_the_deadlines_come_from_the_settings(settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_LANDING_WAIT_SECONDS", "60")
    monkeypatch.setenv("CHURNLOOP_CUSTOMER_DATA_DEADLINE", "PT90S")
    monkeypatch.setenv("CHURNLOOP_TRAINING_RUN_BUDGET", "3600")

    day_done = customer_data_deadline(get_settings())
    budget = training_budget(get_settings())

    assert day_done.interval == dt.timedelta(seconds=90)
    assert isinstance(day_done.reference, ScheduledDayEnd)
    assert budget.interval == dt.timedelta(hours=1)
    assert budget.callback.path == "churnloop.orchestration.deadlines.deadline_missed"
    assert "not finished 1:00:00 after it was queued" in budget.callback.kwargs["promise"]


def test_a_deadline_inside_the_landing_wait_is_refused(settings, monkeypatch):
    """A day still waiting for its drop would be reported late."""
    monkeypatch.setenv("CHURNLOOP_LANDING_WAIT_SECONDS", "3600")
    monkeypatch.setenv("CHURNLOOP_CUSTOMER_DATA_DEADLINE", "PT30M")

    with pytest.raises(ValueError, match="must exceed CHURNLOOP_LANDING_WAIT_SECONDS"):
        get_settings()


def test_a_missed_deadline_names_the_run_the_promise_and_links_the_run(settings):
    message = missed_deadline("not finished 8:00:00 after its day ended", run_context(), settings)

    text = as_text(message)
    assert message.headline == (
        "customer_data for 2026-03-04 missed its deadline: not finished 8:00:00 after its day ended"
    )
    assert "State: running" in text and "Deadline: 2026-03-05 08:00:00+00:00" in text
    run_page = "/dags/customer_data/runs/scheduled__2026-03-04T00%3A00%3A00%2B00%3A00"
    assert f"Run: {settings.airflow_api_url.rstrip('/')}{run_page}" in text


def test_a_missed_deadline_is_escaped_and_masked(settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_AIRFLOW_API_URL", f"http://admin:{PASSWORD}@airflow.example.com")
    context = run_context(dag_run_id="manual__<script>alert(1)</script>")

    message = missed_deadline("late", context, get_settings())

    for rendered in (as_text(message), as_html(message), as_slack(message)):
        assert PASSWORD not in rendered
    assert "<script>" not in as_html(message) and "<script>" not in as_slack(message)


def test_the_callback_delivers_off_the_triggerers_event_loop(settings, monkeypatch):
    """The triggerer awaits the callback: delivery (blocking SMTP, HTTP) runs in a thread,
    never on the loop every trigger of the triggerer shares."""
    delivered: list[tuple[str, bool]] = []

    def deliver(settings, message):
        delivered.append((message.headline, threading.current_thread() is loop_thread))

    monkeypatch.setattr(deadlines, "deliver", deliver)
    loop_thread = threading.current_thread()  # asyncio.run runs the loop on this thread

    asyncio.run(deadline_missed(promise="not finished 2:00:00", context=run_context()))

    assert delivered == [
        ("customer_data for 2026-03-04 missed its deadline: not finished 2:00:00", False)
    ]


def test_a_failed_run_is_not_alerted_twice(settings, monkeypatch):
    """Its failed task alerted already; the deadline passing later says nothing new."""
    delivered: list[str] = []
    monkeypatch.setattr(deadlines, "deliver", lambda settings, message: delivered.append("x"))

    asyncio.run(deadline_missed(promise="late", context=run_context(state="failed")))
    asyncio.run(deadline_missed(promise="late", context=run_context(state="running")))

    assert delivered == ["x"]


def test_a_run_without_a_logical_date_says_what_kind_it_is(settings):
    context = run_context(logical_date=None, run_type="asset_triggered")

    message = missed_deadline("late", context, settings)

    assert message.headline.startswith("customer_data for none (asset_triggered run) missed")


def test_the_training_budget_must_be_positive(settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_TRAINING_RUN_BUDGET", "0")

    with pytest.raises(ValueError, match="training_run_budget"):
        get_settings()


def test_the_stand_in_context_has_the_fields_airflow_sends():
    """Airflow sends the run as its REST model (``dag_run_id``, not ``run_id``)."""
    from airflow.api_fastapi.core_api.datamodels.dag_run import DAGRunResponse

    assert set(run_context()["dag_run"]) <= set(DAGRunResponse.model_fields)
