"""The customer_data DAG run for real (``dag.test()``) on simulated days."""

from __future__ import annotations

import datetime as dt

import pytest

from churnloop import schema, storage
from churnloop.simulation import Scenario, simulate

pytestmark = pytest.mark.airflow

START = dt.date(2026, 1, 1)
CUSTOMERS = 300


@pytest.fixture
def dag(airflow_db, settings):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.dags_dir / "customer_data.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["customer_data"]


def run_day(dag, day: dt.date):
    """Run the DAG for one logical day; returns {task_id: state}."""
    run = dag.test(logical_date=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def read(settings, dataset: str, day: dt.date):
    return storage.lake(settings).read_table(dataset, day)


def test_days_are_published_and_reruns_are_identical(dag, settings):
    simulate(settings, START, days=2, customers=CUSTOMERS, scenario=Scenario())
    for day in (START, START + dt.timedelta(days=1)):
        states = run_day(dag, day)
        assert set(states.values()) == {"success"}, states
    validated = schema.validated_dataset(schema.SNAPSHOTS)
    lake = storage.lake(settings)
    assert lake.partitions(validated) == [START, START + dt.timedelta(days=1)]
    first = read(settings, validated, START)
    assert first.num_rows == CUSTOMERS

    assert set(run_day(dag, START).values()) == {"success"}
    assert read(settings, validated, START).equals(first)
    assert len(list(lake.list_files(f"{validated}/dt={START}"))) == 1, "re-run duplicated"


VALIDATION_BREAKS = ["renamed_column", "missing_column", "extra_column", "wrong_type",
                     "null_keys", "out_of_range", "duplicate_rows"]  # fmt: skip
INGEST_BREAKS = {
    "empty_file": "is empty (0 rows)",
    "corrupt_file": "is corrupt",
    "missing_day": "no landing drop",
}


@pytest.mark.parametrize("kind", VALIDATION_BREAKS)
def test_broken_drop_is_quarantined_and_stops_the_day(dag, settings, kind, capfd):
    simulate(settings, START, 1, CUSTOMERS, Scenario(breaks={START: kind}))
    rows_in = storage.landing(settings).read_table(schema.SNAPSHOTS, START).num_rows

    states = run_day(dag, START)

    assert states["ingest_snapshots"] == "success"
    assert states["validate_snapshots"] == "failed", states
    assert states["validate_labels"] == "success", "labels of the day are independent"
    lake = storage.lake(settings)
    assert lake.partitions(schema.validated_dataset(schema.SNAPSHOTS)) == []
    quarantined = read(settings, schema.quarantine_dataset(schema.SNAPSHOTS), START)
    assert quarantined.num_rows == rows_in, "rows in = rows validated + rows quarantined"
    quarantine_dir = f"{schema.quarantine_dataset(schema.SNAPSHOTS)}/dt={START}"
    assert any(name.endswith(".json") for name in lake.list_files(quarantine_dir))
    assert "validation failed for customer_snapshots dt=2026-01-01" in capfd.readouterr().out


@pytest.mark.parametrize("kind", sorted(INGEST_BREAKS))
def test_unreadable_drop_fails_ingest_without_retry(dag, settings, kind, capfd):
    simulate(settings, START, 1, CUSTOMERS, Scenario(breaks={START: kind}))

    states = run_day(dag, START)

    assert states["ingest_snapshots"] == "failed", states
    assert states["validate_snapshots"] == "upstream_failed"
    assert INGEST_BREAKS[kind] in capfd.readouterr().out
    assert storage.lake(settings).partitions(schema.validated_dataset(schema.SNAPSHOTS)) == []
