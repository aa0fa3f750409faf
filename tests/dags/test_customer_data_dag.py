"""The customer_data DAG run for real (``dag.test()``) on simulated days."""

from __future__ import annotations

import datetime as dt
from urllib.parse import unquote

import pytest

from churnloop import schema, storage
from churnloop.demo.simulation import Scenario, simulate
from churnloop.features import definition

pytestmark = pytest.mark.airflow

START = dt.date(2026, 1, 1)
CUSTOMERS = 300


def run_day(dag, day: dt.date, instances: dict | None = None):
    """Run the DAG for one logical day; returns {task_id: state}, fills ``instances``."""
    run = dag.test(logical_date=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
    tis = run.get_task_instances()
    if instances is not None:
        instances.update({ti.task_id: ti for ti in tis})
    return {ti.task_id: ti.state for ti in tis}


def read(settings, dataset: str, day: dt.date):
    return storage.lake(settings).read_table(dataset, day)


def test_days_are_published_and_reruns_are_identical(customer_data_dag, settings):
    simulate(settings, START, days=2, customers=CUSTOMERS, scenario=Scenario())
    events_before = _customer_features_events()
    for day in (START, START + dt.timedelta(days=1)):
        states = run_day(customer_data_dag, day)
        assert set(states.values()) == {"success"}, states
    validated = schema.validated_dataset(schema.SNAPSHOTS)
    lake = storage.lake(settings)
    assert lake.partitions(validated) == [START, START + dt.timedelta(days=1)]
    first = read(settings, validated, START)
    assert first.num_rows == CUSTOMERS

    assert lake.partitions(definition.DATASET) == [START, START + dt.timedelta(days=1)]
    emitted = _customer_features_events()[len(events_before) :]
    assert [event["day"] for event in emitted] == [str(START), str(START + dt.timedelta(days=1))]
    assert all(event["rows_written"] == CUSTOMERS for event in emitted), emitted
    from churnloop.features.online import online_features

    online = online_features(settings, [1, 2])
    assert len(online) == 2 and online["plan"].notna().all(), "materialized to the online store"

    assert set(run_day(customer_data_dag, START).values()) == {"success"}
    assert read(settings, validated, START).equals(first)
    assert len(list(lake.list_files(f"{validated}/dt={START}"))) == 1, "re-run duplicated"
    assert read(settings, definition.DATASET, START).num_rows == CUSTOMERS


def _customer_features_events() -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = (
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "customer_features")
            .order_by(AssetEvent.id)
        )
        return list(session.scalars(query))


VALIDATION_BREAKS = [
    "renamed_column",
    "missing_column",
    "extra_column",
    "wrong_type",
    "null_keys",
    "out_of_range",
    "duplicate_rows",
]
INGEST_BREAKS = {
    "empty_file": "is empty (0 rows)",
    "corrupt_file": "is corrupt",
    "missing_day": "no landing drop for customer_snapshots dt=2026-01-01: expected ",
}
"""A missing day: the landing sensor gave up (no wait in these tests) and ingest names the
path the drop was expected at."""


@pytest.mark.parametrize("kind", VALIDATION_BREAKS)
def test_broken_drop_is_quarantined_and_stops_the_day(customer_data_dag, settings, kind, capfd):
    simulate(settings, START, 1, CUSTOMERS, Scenario(breaks={START: kind}))
    rows_in = storage.landing(settings).read_table(schema.SNAPSHOTS, START).num_rows

    instances = {}
    states = run_day(customer_data_dag, START, instances)

    assert states["ingest_snapshots"] == "success"
    assert states["validate_snapshots"] == "failed", states
    assert states["validate_labels"] == "success", "labels of the day are independent"
    assert states["build_features"] == states["materialize_features"] == "upstream_failed"
    lake = storage.lake(settings)
    assert lake.partitions(schema.validated_dataset(schema.SNAPSHOTS)) == []
    assert lake.partitions(definition.DATASET) == [], "quarantined data reached features"
    quarantined = read(settings, schema.quarantine_dataset(schema.SNAPSHOTS), START)
    assert quarantined.num_rows == rows_in, "rows in = rows validated + rows quarantined"
    quarantine_dir = f"{schema.quarantine_dataset(schema.SNAPSHOTS)}/dt={START}"
    assert any(name.endswith(".json") for name in lake.list_files(quarantine_dir))
    assert "validation failed for customer_snapshots dt=2026-01-01" in capfd.readouterr().out
    link = report_link(instances["validate_snapshots"])
    assert link.startswith("/churnloop/reports/data_docs/"), "resolves on the UI showing it"
    docs = unquote(link.split("/churnloop/", 1)[1])
    assert lake.exists(docs), "the failed task links its Data Docs page"


def report_link(ti) -> str:
    """What the plugin's Report extra link shows on a task instance."""
    from churnloop_plugin import ReportLink

    return ReportLink().get_link(None, ti_key=ti.key)


@pytest.mark.parametrize("kind", sorted(INGEST_BREAKS))
def test_unreadable_drop_fails_ingest_without_retry(customer_data_dag, settings, kind, capfd):
    simulate(settings, START, 1, CUSTOMERS, Scenario(breaks={START: kind}))

    states = run_day(customer_data_dag, START)

    assert states["ingest_snapshots"] == "failed", states
    assert states["validate_snapshots"] == "upstream_failed"
    assert INGEST_BREAKS[kind] in capfd.readouterr().out
    assert states["wait_for_snapshots"] == ("skipped" if kind == "missing_day" else "success")
    assert storage.lake(settings).partitions(schema.validated_dataset(schema.SNAPSHOTS)) == []
