"""Scored rows against the data contract: the bounds come from the committed snapshot suite,
the categories from the model's encoder, and the server's count of a batch equals the count
of the same rows read back from the prediction log."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnloop import schema
from churnloop.serving.contract import (
    ABOVE_MAX,
    BELOW_MIN,
    MISSING,
    SNAPSHOT_SUITE,
    UNSEEN_CATEGORY,
    Bounds,
    InputContract,
    suite_bounds,
)
from churnloop.serving.model import ModelInfo, ServedModel
from churnloop.serving.prediction_log import FEATURES_KEY, records_table
from churnloop.training.pipeline import fit_pipeline

FEATURES = ["age", "monthly_charges", "days_since_last_login", "logins_7d", "plan"]


@pytest.fixture(scope="module")
def model() -> ServedModel:
    """A real fitted pipeline whose ``plan`` encoder never saw the contract's 'premium'."""
    rng = np.random.default_rng(3)
    size = 400
    frame = pd.DataFrame(
        {
            schema.TIMESTAMP: pd.Timestamp("2026-03-01", tz="UTC"),
            "age": rng.integers(18, 90, size).astype("int32"),
            "monthly_charges": rng.uniform(10, 200, size),
            "days_since_last_login": rng.integers(0, 30, size).astype("int32"),
            "logins_7d": rng.integers(0, 20, size),
            "plan": rng.choice(["basic", "standard"], size),
            schema.LABEL: rng.integers(0, 2, size),
        }
    )
    pipeline = fit_pipeline(frame, FEATURES, {"n_estimators": 10, "n_jobs": 1}, seed=1)
    info = ModelInfo("churn-model", 1, "champion", "run", {}, dt.datetime.now(dt.UTC))
    return ServedModel(pipeline, info)


def _row(**changes) -> dict:
    row = {
        "age": 40,
        "monthly_charges": 50.0,
        "days_since_last_login": 3,
        "logins_7d": 5,
        "plan": "basic",
    }
    return row | changes


def _with_age_rule(settings, tmp_path, **rule) -> Path:
    """A copy of the GX folder whose snapshot suite bounds ``age`` by ``rule``."""
    copy = tmp_path / "great_expectations"
    shutil.copytree(settings.great_expectations_dir, copy)
    suite = json.loads((copy / SNAPSHOT_SUITE).read_text())
    for expectation in suite["expectations"]:
        if expectation["kwargs"].get("column") == "age" and "min_value" in expectation["kwargs"]:
            expectation["kwargs"].update(rule)
    (copy / SNAPSHOT_SUITE).write_text(json.dumps(suite))
    return copy


def test_numeric_bounds_are_read_from_the_committed_snapshot_suite(settings, tmp_path):
    committed = suite_bounds(settings.great_expectations_dir)

    edited = suite_bounds(_with_age_rule(settings, tmp_path, min_value=21, max_value=90))

    assert committed["age"] == Bounds(18.0, 100.0)
    assert committed["monthly_charges"] == Bounds(0.0, 1000.0)
    assert committed["logins"] == Bounds(low=0.0), "a bound the suite leaves open is finiteness"
    assert schema.TIMESTAMP not in committed, "the day's $PARAMETER bounds are no value rule"
    assert edited["age"] == Bounds(21.0, 90.0)
    assert {name: rule for name, rule in edited.items() if name != "age"} == {
        name: rule for name, rule in committed.items() if name != "age"
    }


def test_a_suite_edit_moves_what_the_server_counts(model, settings, tmp_path):
    edited = _with_age_rule(settings, tmp_path, min_value=21, strict_min=True)
    rows = [_row(age=21), _row(age=20), _row(age=22)]
    matrix = model.encode(rows)

    as_committed = InputContract(model.columns, suite_bounds(settings.great_expectations_dir))
    as_edited = InputContract(model.columns, suite_bounds(edited))

    assert as_committed.count_encoded(matrix, rows) == {}
    assert as_edited.count_encoded(matrix, rows) == {("age", BELOW_MIN): 2}


def test_server_batch_and_logged_rows_are_counted_alike(model, settings):
    """Each kind of problem once, on its own row; the same rows as the prediction log
    stores them (numbers as doubles, categories as text) count the same."""
    rows = [
        _row(),
        _row(age=101),
        _row(age=17),
        _row(monthly_charges=None),
        _row(days_since_last_login=-1),
        _row(plan="premium"),
        _row(plan=None),
        _row(logins_7d=-3),
        _row(age=None, plan="gold"),
    ]
    contract = InputContract(model.columns, suite_bounds(settings.great_expectations_dir))
    logged = records_table([{FEATURES_KEY: row} for row in rows]).to_pandas()

    served = contract.count_encoded(model.encode(rows), rows)

    assert served == {
        ("age", ABOVE_MAX): 1,
        ("age", BELOW_MIN): 1,
        ("age", MISSING): 1,
        ("monthly_charges", MISSING): 1,
        ("days_since_last_login", BELOW_MIN): 1,
        ("plan", UNSEEN_CATEGORY): 2,
        ("plan", MISSING): 1,
    }, "logins_7d is derived: the suite bounds no such column, -3 is finite"
    assert contract.count_frame(logged) == served


def test_a_contract_category_the_model_was_not_fitted_on_is_unseen(model, settings):
    contract = InputContract(model.columns, suite_bounds(settings.great_expectations_dir))
    rows = [_row(plan=plan) for plan in schema.PLANS]

    counts = contract.count_encoded(model.encode(rows), rows)

    assert counts == {("plan", UNSEEN_CATEGORY): 1}
    assert "premium" in schema.PLANS and "premium" not in contract.categories["plan"]


def test_without_the_suite_file_numbers_are_held_to_being_finite(model, tmp_path):
    contract = InputContract(model.columns, suite_bounds(tmp_path / "no-such-folder"))
    rows = [_row(age=500), _row(monthly_charges=math.inf), _row(logins_7d=-math.inf)]

    counts = contract.count_encoded(model.encode(rows), rows)

    assert counts == {("monthly_charges", ABOVE_MAX): 1, ("logins_7d", BELOW_MIN): 1}
