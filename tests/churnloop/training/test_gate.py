"""The gate on real LightGBM pipelines trained on simulated churn data: known truths
(equal models, a lost feature, a model no better than a baseline, a broken slice) and the
decision's records."""

import dataclasses
import datetime as dt
import itertools
import json

import numpy as np
import pandas as pd
import pytest

from churnloop.errors import DataError
from churnloop.schema import LABEL
from churnloop.training.baselines import LOGISTIC, fit_baselines
from churnloop.training.gate import (
    BOOTSTRAP,
    FAILED,
    INFERIOR,
    PASSED,
    SKIPPED,
    SUPERIOR,
    GateConfig,
    evaluate,
)
from churnloop.training.pipeline import fit_pipeline
from churnloop.training.split import split_by_time
from tests.churnloop.training_support import FAST_PARAMS, FEATURES, labelled_days

GATE = GateConfig(
    confidence=0.95,
    min_holdout_positives=100,
    min_holdout_negatives=100,
    min_roc_auc=0.65,
    noninferiority_margin=0.01,
    superiority_margin=0.005,
    min_gain_over_baseline=None,
    slice_columns=("plan", "region", "age_band", "tenure_bucket"),
    min_slice_positives=30,
    min_slice_negatives=30,
    max_slice_drop=0.05,
    min_slice_auc=0.6,
    max_slice_gap=0.15,
)
SEEDED_PARAMS = {**FAST_PARAMS, "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8}
SEEDS = 20


@pytest.fixture(scope="module")
def data():
    return split_by_time(labelled_days(dt.date(2026, 1, 1), days=10, customers=800), 3)


@pytest.fixture(scope="module")
def larger_data():
    """A holdout of 10,000 rows: the DeLong interval of a paired change is about +-0.004."""
    return split_by_time(labelled_days(dt.date(2026, 1, 1), days=12, customers=2000), 5)


@pytest.fixture(scope="module")
def models(data):
    """Pipelines of known relative quality on the same holdout."""
    train, _ = data
    rng = np.random.default_rng(7)
    basic_shuffled = train.copy()
    basic = basic_shuffled["plan"] == "basic"
    basic_shuffled.loc[basic, LABEL] = rng.permutation(basic_shuffled.loc[basic, LABEL].to_numpy())
    noise = train.assign(**{LABEL: rng.permutation(train[LABEL].to_numpy())})
    good = fit_pipeline(train, FEATURES, FAST_PARAMS, seed=1)
    top = _most_important_feature(good)
    top_shuffled = train.assign(**{top: rng.permutation(train[top].to_numpy())})
    return {
        "good": good,
        "top_shuffled": fit_pipeline(top_shuffled, FEATURES, FAST_PARAMS, seed=1),
        "noise": fit_pipeline(noise, FEATURES, FAST_PARAMS, seed=1),
        "basic_broken": fit_pipeline(basic_shuffled, FEATURES, FAST_PARAMS, seed=1),
        "stump": fit_pipeline(train, FEATURES, {"n_estimators": 2, "num_leaves": 2}, seed=1),
    }


def _most_important_feature(model) -> str:
    classifier = model.named_steps["classifier"]
    gains = classifier.booster_.feature_importance(importance_type="gain")
    return classifier.booster_.feature_name()[int(np.argmax(gains))]


def statuses(decision):
    return {check.name: check.status for check in decision.checks}


def test_bootstrap_blesses_on_the_value_interval_and_skips_the_champion_check(data, models):
    decision = evaluate(None, models["good"], data[1], GATE)

    assert decision.blessed and decision.comparison == BOOTSTRAP
    value = next(c for c in decision.checks if c.name == "min_roc_auc")
    assert value.status == PASSED and value.interval[0] >= GATE.min_roc_auc
    assert statuses(decision)["noninferiority"] == SKIPPED
    assert decision.champion_metrics is None and decision.change is None


def test_bootstrap_rejects_a_model_whose_interval_misses_the_value_threshold(data, models):
    decision = evaluate(None, models["noise"], data[1], GATE)

    assert not decision.blessed
    assert "min_roc_auc" in [check.name for check in decision.failed_checks]


class ScoredOnce:
    """A fitted model that scores the one holdout it is shown once: each of the 20 models
    takes part in 38 comparisons of that holdout."""

    def __init__(self, model) -> None:
        self.model = model
        self.feature_names_in_ = model.feature_names_in_
        self._scores = None

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self._scores is None:
            self._scores = self.model.predict_proba(frame)
        assert len(self._scores) == len(frame), "shown a second frame"
        return self._scores


def test_same_specification_with_twenty_seeds_is_never_rejected_nor_called_superior(
    larger_data,
):
    """Known truth: equal models. 380 ordered comparisons, none rejected or superior."""
    train, holdout = larger_data
    seeded = [
        ScoredOnce(fit_pipeline(train, FEATURES, SEEDED_PARAMS, seed=s)) for s in range(SEEDS)
    ]

    comparisons = [
        evaluate(champion, challenger, holdout, GATE)
        for champion, challenger in itertools.permutations(seeded, 2)
    ]

    assert len(comparisons) == SEEDS * (SEEDS - 1)
    assert len({round(d.challenger_metrics["roc_auc"], 6) for d in comparisons}) > 1
    assert [d for d in comparisons if not d.blessed] == []
    assert [d for d in comparisons if d.comparison == SUPERIOR] == []


def test_a_holdout_with_too_few_churners_fails_naming_the_counts(data, models):
    holdout = data[1]
    few = pd.concat([holdout[holdout[LABEL] == 0], holdout[holdout[LABEL] == 1].head(99)])

    decision = evaluate(None, models["good"], few, GATE)

    failed = {check.name: check for check in decision.failed_checks}
    assert not decision.blessed
    assert "99 positives" in failed["holdout_size"].message
    assert "widen holdout_days" in failed["holdout_size"].message


def test_losing_the_most_important_feature_is_rejected_with_the_interval(data, models):
    decision = evaluate(models["good"], models["top_shuffled"], data[1], GATE)

    assert not decision.blessed and decision.comparison == INFERIOR
    failed = {check.name: check for check in decision.failed_checks}
    assert decision.change.high < 0
    low, high = failed["noninferiority"].interval
    assert (low, high) == (decision.change.low, decision.change.high)
    assert decision.change.describe() in failed["noninferiority"].message


def test_a_better_challenger_is_superior_and_blessed(data, models):
    decision = evaluate(models["top_shuffled"], models["good"], data[1], GATE)

    assert decision.blessed and decision.comparison == SUPERIOR
    assert decision.change.low > GATE.superiority_margin
    assert statuses(decision)["noninferiority"] == PASSED


def test_a_challenger_no_better_than_the_logistic_baseline_is_rejected(data, models):
    train, holdout = data
    baselines = fit_baselines(train, FEATURES, seed=1, max_rows=100_000)
    gate = dataclasses.replace(GATE, min_gain_over_baseline=0.0)

    decision = evaluate(None, models["stump"], holdout, gate, baselines)

    assert not decision.blessed
    failed = {check.name: check for check in decision.failed_checks}
    assert decision.best_baseline == LOGISTIC
    assert decision.baseline_gain.low <= 0
    assert LOGISTIC in failed["beats_baselines"].message
    assert decision.baseline_gain.describe() in failed["beats_baselines"].message
    assert set(decision.baseline_metrics) == set(baselines)


def test_one_slice_worse_is_rejected_even_when_the_average_holds(data, models):
    gate = dataclasses.replace(GATE, noninferiority_margin=None, min_slice_auc=None)
    gate = dataclasses.replace(gate, max_slice_gap=None)

    decision = evaluate(models["good"], models["basic_broken"], data[1], gate)

    assert not decision.blessed
    assert statuses(decision)["slice.plan.basic"] == FAILED
    assert statuses(decision)["slice.plan.standard"] == PASSED
    basic = next(s for s in decision.slices if (s.column, s.value) == ("plan", "basic"))
    assert basic.judged and basic.change.high < -gate.max_slice_drop


def test_inclusion_floor_and_gap_hold_at_bootstrap(data, models):
    decision = evaluate(None, models["basic_broken"], data[1], GATE)

    assert not decision.blessed
    failed = {check.name for check in decision.failed_checks}
    assert {"slice.plan.basic", "gap.plan"} <= failed
    assert "floor" in next(c for c in decision.checks if c.name == "slice.plan.basic").message


def test_slice_with_fewer_positives_than_the_minimum_is_reported_not_judged(data, models):
    holdout = data[1]
    basic = holdout["plan"] == "basic"
    churners = holdout[basic & (holdout[LABEL] == 1)].head(GATE.min_slice_positives - 1)
    holdout = pd.concat([holdout[~basic], holdout[basic & (holdout[LABEL] == 0)], churners])

    decision = evaluate(models["good"], models["basic_broken"], holdout, GATE)

    item = next(s for s in decision.slices if (s.column, s.value) == ("plan", "basic"))
    assert item.positives == GATE.min_slice_positives - 1 and not item.judged
    assert item.challenger_auc is None and item.change is None
    check = next(c for c in decision.checks if c.name == "slice.plan.basic")
    assert check.status == SKIPPED and "not judged" in check.message
    assert f"{GATE.min_slice_positives - 1} positives" in check.message


def test_age_bands_and_tenure_buckets_are_slices(data, models):
    decision = evaluate(None, models["good"], data[1], GATE)

    columns = {item.column for item in decision.slices}
    assert {"age_band", "tenure_bucket"} <= columns
    bands = {item.value for item in decision.slices if item.column == "age_band"}
    assert bands <= {"<30", "30-44", "45-59", "60+"} and len(bands) > 1


def test_decision_is_readable_as_tags_table_and_json(data, models):
    train, holdout = data
    baselines = fit_baselines(train, FEATURES, seed=1, max_rows=100_000)
    decision = evaluate(models["good"], models["top_shuffled"], holdout, GATE, baselines)

    tags = decision.to_tags()
    assert tags["gate.decision"] == "rejected"
    assert tags["gate.change_vs_champion"] == decision.change.describe()
    assert tags["gate.baseline"].startswith(f"{decision.best_baseline}: gain ")
    assert tags["gate.noninferiority"].startswith("failed: ")
    table = decision.describe()
    assert "REJECTED" in table and "region=north" in table and LOGISTIC in table
    assert decision.to_dict() == json.loads(json.dumps(decision.to_dict())), "JSON types only"
    assert type(decision).from_dict(json.loads(json.dumps(decision.to_dict()))) == decision


def test_model_needing_a_column_the_holdout_lacks_is_a_data_error(data, models):
    holdout = data[1].drop(columns=["contract"])

    with pytest.raises(DataError, match=r"challenger needs column\(s\) the data lacks: contract"):
        evaluate(None, models["good"], holdout, GATE)


def test_holdout_lacking_a_slice_column_is_a_data_error(data, models):
    with pytest.raises(DataError, match="slice column 'age'"):
        evaluate(None, models["good"], data[1].drop(columns=["age"]), GATE)


def test_holdout_with_one_class_is_a_data_error(data, models):
    holdout = data[1][data[1][LABEL] == 0]

    with pytest.raises(DataError, match="ROC AUC is undefined"):
        evaluate(None, models["good"], holdout, GATE)


def test_gate_defaults_come_from_settings_and_params_override_them(settings):
    gate = GateConfig.from_settings(settings, min_roc_auc=0.9)

    assert gate.min_roc_auc == 0.9
    assert gate.noninferiority_margin == settings.gate_noninferiority_margin
    assert gate.slice_columns == tuple(settings.gate_slice_columns)
