"""Tuning: its budget (trials and time), its seed, its folds inside the training split,
and its trials in MLflow."""

import datetime as dt
import itertools

import mlflow
import pandas as pd
import pytest

from churnloop import registry
from churnloop.errors import DataError
from churnloop.settings import Settings
from churnloop.training import tuning
from churnloop.training.split import snapshot_days
from churnloop.training.tuning import SEARCH_SPACE, ParamRange, TuningResult, log_trials, tune
from tests.churnloop.training_support import FAST_PARAMS, FEATURES, labelled_days, with_empty_mlflow

FIRST_DAY = dt.date(2026, 1, 1)
SMALL_SPACE = {**SEARCH_SPACE, "n_estimators": ParamRange(5, 40, integer=True)}
"""The production space with few trees, so a trial takes a fraction of a second."""


@pytest.fixture(scope="module")
def train():
    return labelled_days(FIRST_DAY, days=8, customers=200)


@pytest.fixture(scope="module")
def three_trials(train):
    return small_search(train, trials=3, timeout_seconds=600)


def small_search(train: pd.DataFrame, **budget) -> TuningResult:
    return tune(
        Settings(tuning_cv_folds=3),
        train,
        FEATURES,
        base_params=FAST_PARAMS,
        seed=7,
        space=SMALL_SPACE,
        **budget,
    )


def test_the_trial_count_bounds_the_search(three_trials):
    assert [trial["number"] for trial in three_trials.trials] == [0, 1, 2]
    assert {trial["state"] for trial in three_trials.trials} == {"COMPLETE"}
    assert three_trials.stopped_by == "trials"
    best = max(three_trials.trials, key=lambda trial: trial["cv_auc"])
    assert three_trials.best_cv_auc == best["cv_auc"]
    assert three_trials.best_params == {**FAST_PARAMS, **best["params"]}
    assert three_trials.best_params["n_jobs"] == FAST_PARAMS["n_jobs"]
    assert "stopped by trials" in three_trials.describe()


def test_the_first_trial_measures_the_base_parameters(three_trials):
    first = three_trials.trials[0]["params"]
    searched = first.keys() & FAST_PARAMS.keys()
    assert searched == {"n_estimators", "num_leaves", "min_child_samples"}
    assert {name: first[name] for name in searched} == {
        name: FAST_PARAMS[name] for name in searched
    }


@pytest.fixture
def fits_take_one_second(monkeypatch):
    """Each fold's fit advances tuning's clock by exactly one second."""
    ticks = itertools.count()
    now = [0.0]
    real_fit = tuning.fit_pipeline

    def fit_in_one_second(*args, **kwargs):
        now[0] = float(next(ticks) + 1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(tuning, "monotonic", lambda: now[0])
    monkeypatch.setattr(tuning, "fit_pipeline", fit_in_one_second)


@pytest.mark.usefixtures("fits_take_one_second")
def test_no_trial_starts_that_would_end_past_the_time_budget(train):
    """Three folds, three seconds a trial: after 9 s a fourth would end at 12 s > 10 s."""
    result = small_search(train, trials=1_000, timeout_seconds=10)

    assert [trial["state"] for trial in result.trials] == ["COMPLETE"] * 3
    assert result.stopped_by == "timeout"
    assert result.seconds == 9
    assert result.best_cv_auc == max(trial["cv_auc"] for trial in result.trials)


@pytest.mark.usefixtures("fits_take_one_second")
def test_a_trial_longer_than_the_budget_is_cut_between_folds(train):
    """The first trial's third fold would start at 2 s of a 2 s budget: the base wins."""
    result = small_search(train, trials=1_000, timeout_seconds=2)

    assert [trial["state"] for trial in result.trials] == ["PRUNED"]
    assert result.stopped_by == "timeout"
    assert result.seconds == 2
    assert result.best_params == FAST_PARAMS
    assert result.best_cv_auc is None


def test_a_seed_repeats_the_search_and_another_changes_it(train, three_trials):
    again = small_search(train, trials=3, timeout_seconds=600)
    other_seed = tune(
        Settings(tuning_cv_folds=3),
        train,
        FEATURES,
        base_params=FAST_PARAMS,
        seed=8,
        space=SMALL_SPACE,
        trials=3,
        timeout_seconds=600,
    )

    def searched(result):
        return [(trial["params"], trial["cv_auc"]) for trial in result.trials]

    assert searched(again) == searched(three_trials)
    assert again.best_params == three_trials.best_params
    assert [t["params"] for t in other_seed.trials[1:]] != [
        t["params"] for t in three_trials.trials[1:]
    ]


@pytest.mark.parametrize("folds", [1, 2, 3, 7])
def test_folds_validate_only_on_days_after_all_they_trained_on(train, folds):
    days = snapshot_days(train, "training split")
    cut = tuning.expanding_day_folds(days, folds)

    assert len(cut) == folds
    seen_validation_days = set()
    for fit_rows, validation_rows in cut:
        fit_days, validation_days = days.iloc[fit_rows], days.iloc[validation_rows]
        assert fit_days.max() < validation_days.min()
        assert set(fit_days) == set(days[days < validation_days.min()])
        seen_validation_days |= set(validation_days)
    assert days.min() not in seen_validation_days
    assert seen_validation_days == set(days) - set(days.iloc[cut[0][0]])


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_folds_cut_unordered_repeated_tz_aware_days_into_the_expected_rows(zone):
    day = {n: pd.Timestamp(f"2026-01-0{n + 1}", tz="UTC").tz_convert(zone) for n in range(5)}
    days = pd.Series([day[2], day[0], day[1], day[3], day[0], day[2], day[4], day[1]])

    cut = tuning.expanding_day_folds(days, 2)

    assert [(list(fit), list(validate)) for fit, validate in cut] == [
        ([1, 2, 4, 7], [0, 3, 5]),  # blocks {0, 1} | {2, 3}
        ([0, 1, 2, 3, 4, 5, 7], [6]),  # blocks {0, 1, 2, 3} | {4}
    ]


def test_too_few_days_for_the_folds_is_a_data_error(train):
    days = snapshot_days(train, "training split")
    with pytest.raises(DataError, match="at least 9 snapshot days .* got 8"):
        tuning.expanding_day_folds(days, 8)


def test_tuning_off_returns_the_base_parameters_without_a_trial(train, monkeypatch):
    monkeypatch.setattr(tuning, "fit_pipeline", pytest.fail)

    result = small_search(train, trials=0, timeout_seconds=600)

    assert result == TuningResult(best_params=FAST_PARAMS, best_cv_auc=None)
    assert (result.trials, result.stopped_by) == ([], "off")


def test_each_trial_is_a_child_run_of_the_challengers_run(settings, three_trials):
    registry.connect(with_empty_mlflow(settings))
    experiment_id = mlflow.create_experiment("tuning")

    with mlflow.start_run(experiment_id=experiment_id) as parent:
        log_trials(three_trials)

    children = mlflow.search_runs(
        [experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        order_by=["attributes.run_name"],
        output_format="list",
    )
    assert [child.info.run_name for child in children] == [f"tuning-trial-{n}" for n in range(3)]
    for child, trial in zip(children, three_trials.trials, strict=True):
        assert child.data.metrics["cv_roc_auc"] == pytest.approx(trial["cv_auc"])
        assert child.data.params == {key: str(value) for key, value in trial["params"].items()}
    logged = mlflow.get_run(parent.info.run_id).data
    assert logged.metrics["tuning_trials"] == 3
    assert logged.metrics["tuning_best_cv_roc_auc"] == pytest.approx(three_trials.best_cv_auc)
    assert "tuning_seconds" in logged.metrics
    assert logged.tags["tuning.stopped_by"] == "trials"
