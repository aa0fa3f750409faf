"""The gate's decision table on real LightGBM pipelines trained on simulated churn data."""

import dataclasses
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from churnloop.errors import DataError
from churnloop.schema import LABEL
from churnloop.training.gate import FAILED, PASSED, SKIPPED, GateConfig, evaluate
from churnloop.training.pipeline import fit_pipeline
from churnloop.training.split import split_by_time
from tests.churnloop.training_support import FAST_PARAMS, FEATURES, labelled_days

GATE = GateConfig(
    min_roc_auc=0.65,
    max_auc_drop_abs=0.01,
    max_auc_drop_rel=None,
    slice_columns=("plan", "region"),
    min_slice_rows=200,
    max_slice_drop=0.05,
)


@pytest.fixture(scope="module")
def data():
    return split_by_time(labelled_days(dt.date(2026, 1, 1), days=10, customers=800), 3)


@pytest.fixture(scope="module")
def models(data):
    """Pipelines of known relative quality on the same holdout."""
    train, _ = data
    rng = np.random.default_rng(7)
    basic_shuffled = train.copy()
    basic = basic_shuffled["plan"] == "basic"
    basic_shuffled.loc[basic, LABEL] = rng.permutation(basic_shuffled.loc[basic, LABEL].to_numpy())
    without_tenure = [name for name in FEATURES if name != "tenure_months"]
    noise = train.assign(**{LABEL: rng.permutation(train[LABEL].to_numpy())})
    return {
        "good": fit_pipeline(train, FEATURES, FAST_PARAMS, seed=1),
        "no_tenure": fit_pipeline(train, without_tenure, FAST_PARAMS, seed=1),
        "noise": fit_pipeline(noise, FEATURES, FAST_PARAMS, seed=1),
        "basic_broken": fit_pipeline(basic_shuffled, FEATURES, FAST_PARAMS, seed=1),
    }


def statuses(decision):
    return {check.name: check.status for check in decision.checks}


def test_bootstrap_blesses_on_the_value_threshold_and_skips_change_checks(data, models):
    decision = evaluate(None, models["good"], data[1], GATE)

    assert decision.blessed
    assert statuses(decision)["min_roc_auc"] == PASSED
    skipped = [check for check in decision.checks if check.name != "min_roc_auc"]
    assert all(check.status == SKIPPED for check in skipped)
    assert "bootstrap" in next(c for c in skipped if c.name == "max_auc_drop_abs").message
    assert decision.champion_metrics is None


def test_bootstrap_rejects_a_model_below_the_value_threshold(data, models):
    decision = evaluate(None, models["noise"], data[1], GATE)

    assert not decision.blessed
    assert [check.name for check in decision.failed_checks] == ["min_roc_auc"]


def test_better_challenger_is_blessed(data, models):
    decision = evaluate(models["no_tenure"], models["good"], data[1], GATE)

    assert decision.blessed
    assert decision.challenger_metrics["roc_auc"] > decision.champion_metrics["roc_auc"]
    assert statuses(decision)["max_auc_drop_abs"] == PASSED


def test_worse_challenger_is_rejected_with_the_reason(data, models):
    decision = evaluate(models["good"], models["no_tenure"], data[1], GATE)

    assert not decision.blessed
    failed = {check.name: check for check in decision.failed_checks}
    assert "min_roc_auc" not in failed
    assert "max_auc_drop_abs" in failed
    assert "drop" in failed["max_auc_drop_abs"].message
    assert failed["max_auc_drop_abs"].observed > GATE.max_auc_drop_abs


@pytest.mark.parametrize("margin, blessed", [(0.002, True), (-0.002, False)])
@pytest.mark.parametrize("field", ["max_auc_drop_abs", "max_auc_drop_rel"])
def test_a_drop_within_the_tolerance_passes_and_beyond_it_fails(
    data, models, field, margin, blessed
):
    observed = next(
        c.observed
        for c in evaluate(models["good"], models["no_tenure"], data[1], GATE).checks
        if c.name == field
    )
    only_this_check = {"max_auc_drop_abs": None, "max_slice_drop": None, field: observed + margin}
    gate = dataclasses.replace(GATE, **only_this_check)

    decision = evaluate(models["good"], models["no_tenure"], data[1], gate)

    assert observed > 0
    assert decision.blessed is blessed
    assert statuses(decision)[field] == (PASSED if blessed else FAILED)


def test_one_slice_worse_is_rejected_even_when_the_average_holds(data, models):
    gate = dataclasses.replace(GATE, max_auc_drop_abs=None)

    decision = evaluate(models["good"], models["basic_broken"], data[1], gate)

    assert not decision.blessed
    assert statuses(decision)["slice.plan.basic"] == FAILED
    assert statuses(decision)["slice.plan.standard"] == PASSED
    basic = next(s for s in decision.slices if (s.column, s.value) == ("plan", "basic"))
    assert basic.judged and basic.champion_auc - basic.challenger_auc > gate.max_slice_drop


def test_small_slice_is_reported_not_judged(data, models):
    holdout = data[1]
    few_basic = holdout[holdout["plan"] == "basic"].head(GATE.min_slice_rows - 1)
    holdout = pd.concat([holdout[holdout["plan"] != "basic"], few_basic])
    gate = dataclasses.replace(GATE, max_auc_drop_abs=None)

    decision = evaluate(models["good"], models["basic_broken"], holdout, gate)

    basic = next(s for s in decision.slices if (s.column, s.value) == ("plan", "basic"))
    assert basic.rows == GATE.min_slice_rows - 1 and not basic.judged
    assert basic.challenger_auc is not None
    check = next(c for c in decision.checks if c.name == "slice.plan.basic")
    assert check.status == SKIPPED and "not judged" in check.message


def test_decision_is_readable_as_tags_table_and_json(data, models):
    decision = evaluate(models["good"], models["no_tenure"], data[1], GATE)

    tags = decision.to_tags()
    assert tags["gate.decision"] == "rejected"
    assert set(tags) == {"gate.decision"} | {f"gate.{c.name}" for c in decision.checks}
    assert tags["gate.max_auc_drop_abs"].startswith("failed: ")
    table = decision.describe()
    assert "REJECTED" in table and "slice.region.north" in table and "region=north" in table
    assert type(decision).from_dict(json.loads(json.dumps(decision.to_dict()))) == decision


def test_model_needing_a_column_the_holdout_lacks_is_a_data_error(data, models):
    holdout = data[1].drop(columns=["contract"])

    with pytest.raises(DataError, match=r"challenger needs column\(s\) the data lacks: contract"):
        evaluate(models["no_tenure"], models["good"], holdout, GATE)


def test_holdout_with_one_class_is_a_data_error(data, models):
    holdout = data[1][data[1][LABEL] == 0]

    with pytest.raises(DataError, match="ROC AUC is undefined"):
        evaluate(None, models["good"], holdout, GATE)


def test_gate_defaults_come_from_settings_and_params_override_them(settings):
    gate = GateConfig.from_settings(settings, min_roc_auc=0.9)

    assert gate.min_roc_auc == 0.9
    assert gate.max_auc_drop_abs == settings.gate_max_auc_drop_abs
    assert gate.slice_columns == tuple(settings.gate_slice_columns)
