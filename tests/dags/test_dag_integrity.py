"""The project's policies for every DAG file, checked on a real DagBag.

Failures name the DAG and the file, so a data engineer adding a DAG or task sees which
policy they broke and where.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
HEAVY_MODULES = ("mlflow", "feast", "lightgbm", "evidently", "great_expectations", "sklearn")
EXPECTED_DAGS = {"customer_data", "continuous_training", "drift_report"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_no_import_errors(dagbag):
    problems = "\n".join(f"{file}:\n{error}" for file, error in dagbag.import_errors.items())
    assert not dagbag.import_errors, f"DAG import errors:\n{problems}"


def test_expected_dags_are_present(dagbag):
    missing = EXPECTED_DAGS - set(dagbag.dag_ids)
    assert not missing, f"DAGs missing from {DAGS_DIR}: {sorted(missing)}"


def test_every_dag_has_tags_owner_and_docs(dagbag):
    for dag_id, dag in dagbag.dags.items():
        where = f"DAG {dag_id} ({dag.fileloc})"
        assert dag.tags, f"{where} has no tags"
        assert dag.doc_md and len(dag.doc_md) > 200, f"{where} needs doc_md for on-call"
        owners = {task.owner for task in dag.tasks}
        assert "airflow" not in owners, f"{where} has tasks without a real owner: {owners}"
        for task in dag.tasks:
            assert task.doc_md, f"{where} task {task.task_id} has no doc_md"


def test_the_dag_list_says_what_each_dag_does_and_when_it_runs(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.description and len(dag.description) <= 100, f"DAG {dag_id}: description"
    training = dagbag.dags["continuous_training"].description
    assert "cron 0 3 * * 1 UTC" in training and "churn_drift" in training, training


def test_task_docs_are_their_functions_docstrings(dagbag):
    """``@task`` shows the function's docstring as the task's docs (``doc_md``) unless a
    ``doc*`` argument replaces it: the docs stay with the code they describe."""
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            where = f"DAG {dag_id} task {task.task_id} ({dag.fileloc})"
            docstring = task.python_callable.__doc__
            assert docstring, f"{where}: its function has no docstring"
            assert task.doc_md == docstring, f"{where}: give the docs as a docstring, not doc_md="


def test_every_task_masks_the_credentials_before_it_runs(dagbag):
    from churnloop.orchestration.task_support import mask_credentials

    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            callbacks = task.on_execute_callback or []
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert mask_credentials in callbacks, f"DAG {dag_id} task {task.task_id}"


def test_every_param_has_a_title_a_section_and_says_what_empty_means(dagbag):
    """The trigger form shows titles in sections; a field that may be left empty says what
    that does (before, an empty threshold read as 0 or as an error to a user)."""
    for dag_id, dag in dagbag.dags.items():
        for name in dag.params:
            schema = dag.params.get_param(name).schema
            where = f"DAG {dag_id} Param {name}"
            assert schema.get("title") and schema.get("section"), f"{where}: title, section"
            assert dag.params.get_param(name).description, f"{where}: description"
            if "null" in schema.get("type", ()):
                assert "Empty" in dag.params.get_param(name).description, where


def test_tasks_log_their_decisions_not_their_return_values(dagbag):
    """A returned dict of full-precision floats was the only visible line of a task's log.
    (Sensors return no value to log: they have no such switch.)"""
    from airflow.sdk import BaseSensorOperator

    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if not isinstance(task, BaseSensorOperator):
                assert task.show_return_value_in_logs is False, f"{dag.dag_id}.{task.task_id}"


def test_infrastructure_tasks_retry_and_validation_tasks_do_not(dagbag):
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            where = f"DAG {dag_id} task {task.task_id} ({dag.fileloc})"
            if task.task_id.startswith("validate_"):
                assert task.retries == 0, f"{where} validates data: a retry cannot fix data"
            else:
                assert task.retries >= 1, f"{where} touches infrastructure: it must retry"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_is_light_and_fast_to_parse(dag_file):
    """Import the file in a fresh interpreter (after Airflow itself) and watch what it pulls in.

    CPU time, not wall time: the DAG processor's cost, unaffected by a busy machine.
    """
    probe = (
        "import importlib.util, json, sys, time\n"
        "import airflow.sdk\n"
        f"spec = importlib.util.spec_from_file_location('probe', {str(dag_file)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "start = time.process_time()\n"
        "spec.loader.exec_module(module)\n"
        "elapsed = time.process_time() - start\n"
        "print(json.dumps({'seconds': elapsed, 'modules': sorted(sys.modules)}))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, f"{dag_file.name} failed to import:\n{result.stderr[-2000:]}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    heavy = sorted({m.split(".")[0] for m in report["modules"]} & set(HEAVY_MODULES))
    assert not heavy, f"{dag_file.name} imports {heavy} at parse time: import inside tasks"
    assert report["seconds"] < 1.0, f"{dag_file.name} took {report['seconds']:.2f} s to parse"
