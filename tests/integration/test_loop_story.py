"""The integration story's calendar against the DAGs' real timetables."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.serialization.decoders import decode_timetable
from airflow.serialization.encoders import encode_timetable
from airflow.timetables.base import TimeRestriction

from tests.dags.dag_support import parsed_dag
from tests.integration.loop_story import Timeline

pytestmark = pytest.mark.airflow


def _run_after(dag, day: dt.date) -> dt.datetime:
    """When the scheduled run of ``dag`` whose data interval starts on ``day`` is due, by
    the scheduler's own timetable (the DAG's, as serialized for it)."""
    timetable = decode_timetable(encode_timetable(dag.timetable))
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    restriction = TimeRestriction(earliest=midnight, latest=None, catchup=True)
    info = timetable.next_dagrun_info_v2(last_dagrun_info=None, restriction=restriction)
    assert info.data_interval.start.date() == day
    return info.run_after


@pytest.mark.parametrize("hour", range(24))
def test_the_story_ends_on_the_last_day_whose_runs_are_due(settings, hour):
    now = dt.datetime(2026, 12, 4, hour, 30, tzinfo=dt.UTC)
    last = Timeline.ending_with_due_runs(now).last
    for dag_id in ("customer_data", "drift_report"):
        assert _run_after(parsed_dag(settings, dag_id), last) <= now, dag_id
    drift = parsed_dag(settings, "drift_report")
    assert _run_after(drift, last + dt.timedelta(days=1)) > now, "the latest due day"
