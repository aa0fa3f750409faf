"""Late data and a missed deadline on real Airflow components (embedded profile).

Yesterday's snapshot drop is withheld: the scheduler starts yesterday's scheduled run of
``customer_data``, whose sensor waits in reschedule mode; the day's deadline (a short
``customer_data_deadline`` after the day ended) passes, the scheduler marks it missed and the
triggerer e-mails on-call through a real SMTP server. Then the drop lands and the run
finishes with no one touching it.
"""

from __future__ import annotations

import datetime as dt
import json
from email.message import EmailMessage

import pytest

from churnloop import schema, storage
from churnloop.demo.airflow_stack import AirflowClient, airflow_stack
from churnloop.demo.simulation import Scenario, simulate
from churnloop.settings import get_settings
from tests.alert_sinks import Inbox, smtp_connection, smtp_sink
from tests.polling import wait_for

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

CUSTOMERS = 200
SMTP_CONN = "churnloop_late_data_smtp"
WAIT_SECONDS = 900
DEADLINE_SECONDS = WAIT_SECONDS + 1
"""The shortest deadline the settings accept: yesterday ended hours ago, so it has passed."""


@pytest.fixture
def late_day(settings, tmp_path, monkeypatch):
    """Yesterday's drops simulated, the snapshot drop taken away; yields (day, its bytes)."""
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    simulate(settings, day, 1, CUSTOMERS, Scenario(), progress=lambda line: None)
    landing = storage.landing(settings)
    drop = landing.local_path(landing.data_file(schema.landing_dataset(schema.SNAPSHOTS), day))
    withheld = drop.read_bytes()
    drop.unlink()
    airflow_home = tmp_path / "airflow"
    for name, value in {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "CHURNLOOP_SCHEDULE_START": day.isoformat(),
        "CHURNLOOP_TRAINING_CRON": "null",
        "CHURNLOOP_LANDING_POKE_SECONDS": "3",
        "CHURNLOOP_LANDING_WAIT_SECONDS": str(WAIT_SECONDS),
        "CHURNLOOP_CUSTOMER_DATA_DEADLINE": str(DEADLINE_SECONDS),
    }.items():
        monkeypatch.setenv(name, value)
    return day, withheld


def test_a_late_drop_is_picked_up_and_the_missed_deadline_alerts(
    settings, late_day, tmp_path, monkeypatch
):
    day, withheld = late_day
    with smtp_sink() as (inbox, port):
        monkeypatch.setenv(f"AIRFLOW_CONN_{SMTP_CONN.upper()}", json.dumps(smtp_connection(port)))
        monkeypatch.setenv("CHURNLOOP_ALERT_SMTP_CONN_ID", SMTP_CONN)
        monkeypatch.setenv("CHURNLOOP_ALERT_EMAIL_TO", "oncall@example.com")
        monkeypatch.setenv("CHURNLOOP_ALERT_EMAIL_FROM", "churnloop@example.com")
        with airflow_stack(get_settings(), tmp_path / "logs", say=print) as client:
            client.wait_for_dags(["customer_data"])
            client.unpause("customer_data")
            run_id = _scheduled_run(client)
            _wait_for_state(client, run_id, "wait_for_snapshots", "up_for_reschedule")
            alert = _wait_for_mail(inbox, "missed its deadline")

            landing = storage.landing(get_settings())
            landing.write_data_file(schema.landing_dataset(schema.SNAPSHOTS), day, withheld)
            [run] = client.wait_for_runs("customer_data", 1, timeout=600, progress=print)
            states = client.task_states("customer_data", run_id)

    assert run["dag_run_id"] == run_id and run["state"] == "success", states
    assert set(states.values()) == {"success"}, states
    assert alert["Subject"] == (
        f"[churnloop] customer_data for {day} missed its deadline: "
        f"not finished 0:15:01 after its day ended"
    )
    body = alert.get_body(("html",)).get_content()
    assert "State</th><td>running" in body, "the run was still waiting for its drop"
    assert "/dags/customer_data/runs/scheduled__" in body
    assert [m["Subject"] for m in inbox.messages] == [alert["Subject"]], "nothing failed"


def _scheduled_run(client: AirflowClient, timeout: float = 180) -> str:
    """The run id of the scheduler's run of ``customer_data`` (catching up on yesterday)."""

    def run_id() -> str | None:
        client.check_alive()
        runs = [run for run in client.runs("customer_data") if run["run_type"] == "scheduled"]
        return runs[0]["dag_run_id"] if runs else None

    return wait_for(run_id, timeout, "a scheduled run of customer_data", interval=2)


def _wait_for_state(
    client: AirflowClient, run_id: str, task_id: str, state: str, timeout: float = 300
) -> None:
    def reached() -> bool:
        client.check_alive()
        return client.task_states("customer_data", run_id).get(task_id) == state

    try:
        wait_for(reached, timeout, f"{task_id} to be {state}", interval=2)
    except AssertionError as error:
        states = client.task_states("customer_data", run_id)
        raise AssertionError(f"{error}; task states: {states}") from None


def _wait_for_mail(inbox: Inbox, subject_part: str, timeout: float = 180) -> EmailMessage:
    def mail() -> EmailMessage | None:
        matching = (message for message in inbox.messages if subject_part in message["Subject"])
        return next(matching, None)

    return wait_for(mail, timeout, f"an e-mail with {subject_part!r}", interval=1)
