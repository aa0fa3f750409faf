"""Helpers of the DAG tests."""

from __future__ import annotations


def parsed_dag(settings, dag_id: str):
    """``dag_id`` parsed from dags/ for ``dag.test()``, without its Deadline Alerts.

    ``dag.test()`` keeps a DAG's deadlines serialized where the scheduler holds their ids, so
    Airflow 3.3 fails when a run succeeds and prunes them ('dict' object has no attribute
    'hex'). Deadlines on a real scheduler: tests/integration/test_late_data.py."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.dags_dir / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[dag_id]
    dag.deadline = None
    return dag
