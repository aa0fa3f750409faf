"""Time-based split, a reproducible pipeline, and the challenger's MLflow record."""

import datetime as dt
import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from churnloop import registry
from churnloop.errors import DataError
from churnloop.schema import ENTITY, LABEL, TIMESTAMP
from churnloop.training.challenger import (
    PREDICTION,
    SCHEMA_SAMPLE_ROWS,
    _dataset_record,
    fit_pipeline,
    reference_data,
    split_by_time,
)
from tests.churnloop.training_support import (
    FAST_PARAMS,
    FEATURE_SERVICE,
    FEATURES,
    HOLDOUT_DAYS,
    LINEAGE,
    labelled_days,
    register_challenger,
    with_empty_mlflow,
)

FIRST_DAY = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def frame():
    return labelled_days(FIRST_DAY, days=8, customers=300)


def test_split_holds_out_the_latest_days(frame):
    shuffled = frame.sample(frac=1, random_state=0)
    original_index = shuffled.index.copy()
    train, holdout = split_by_time(shuffled, holdout_days=3)

    assert shuffled.index.equals(original_index)  # the input keeps its own numbering
    for part in (train, holdout):
        assert part.index.equals(pd.RangeIndex(len(part)))
    assert len(train) + len(holdout) == len(frame)
    assert train[TIMESTAMP].max() < holdout[TIMESTAMP].min()
    held_days = sorted(holdout[TIMESTAMP].dt.date.unique())
    assert held_days == [FIRST_DAY + dt.timedelta(days=d) for d in (5, 6, 7)]


def test_split_refuses_a_window_that_is_all_holdout(frame):
    with pytest.raises(DataError, match="falls in the 8-day holdout: widen the training window"):
        split_by_time(frame, holdout_days=8)


def test_split_refuses_naive_timestamps(frame):
    naive = frame.assign(**{TIMESTAMP: frame[TIMESTAMP].dt.tz_localize(None)})

    with pytest.raises(DataError, match="must be timezone-aware"):
        split_by_time(naive, holdout_days=2)


def test_same_inputs_give_identical_predictions_and_the_seed_matters(frame):
    train, holdout = split_by_time(frame, holdout_days=3)
    params = {**FAST_PARAMS, "subsample": 0.7, "subsample_freq": 1, "colsample_bytree": 0.7}

    first = fit_pipeline(train, FEATURES, params, seed=3).predict_proba(holdout[FEATURES])
    again = fit_pipeline(train, FEATURES, params, seed=3).predict_proba(holdout[FEATURES])
    other = fit_pipeline(train, FEATURES, params, seed=4).predict_proba(holdout[FEATURES])

    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_unseen_category_and_missing_numbers_are_scored_not_rejected(frame):
    train, holdout = split_by_time(frame, holdout_days=3)
    model = fit_pipeline(train, FEATURES, FAST_PARAMS, seed=1)
    odd = holdout.head(3).assign(plan="enterprise", monthly_charges=np.nan)

    scores = model.predict_proba(odd[FEATURES])[:, 1]

    assert np.isfinite(scores).all()


def test_missing_feature_or_label_problems_are_data_errors(frame):
    with pytest.raises(DataError, match="lacks column.*tenure_months"):
        fit_pipeline(frame.drop(columns=["tenure_months"]), FEATURES, FAST_PARAMS, seed=1)
    with pytest.raises(DataError, match="must be 0/1"):
        fit_pipeline(frame.assign(**{LABEL: 2}), FEATURES, FAST_PARAMS, seed=1)


@pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer")
def test_dataset_digest_covers_every_row():
    """MLflow's own digest reads the first 10,000 rows; a change past them must show."""
    split = labelled_days(FIRST_DAY, days=40, customers=300)
    assert len(split) > 10_000
    changed = split.copy()
    changed.loc[len(split) - 1, "monthly_charges"] += 1.0

    digest = _dataset_record(split, "split").digest
    assert _dataset_record(split.copy(), "split").digest == digest
    assert _dataset_record(changed, "split").digest != digest
    assert mlflow.data.from_pandas(changed).digest == mlflow.data.from_pandas(split).digest


@pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer")
def test_logged_dataset_schema_is_mlflows_own_though_inferred_from_a_sample(settings, frame):
    """A missing value far past the sampled rows still makes its column optional."""
    train, _ = split_by_time(frame, HOLDOUT_DAYS)
    late = frame.copy()
    late.loc[len(train) - 1, "monthly_charges"] = np.nan
    late.loc[len(train) - 2, "plan"] = None
    assert len(train) - 2 > SCHEMA_SAMPLE_ROWS

    trained, _ = register_challenger(with_empty_mlflow(settings), late)

    (logged,) = mlflow.get_run(trained.run_id).inputs.dataset_inputs
    expected = mlflow.data.from_pandas(split_by_time(late, HOLDOUT_DAYS)[0], targets=LABEL)
    assert json.loads(logged.dataset.schema)["mlflow_colspec"] == expected.schema.to_dict()
    optional = {column["name"] for column in expected.schema.to_dict() if not column["required"]}
    assert optional == {"monthly_charges", "plan"}


def test_challenger_is_logged_registered_and_reloads_identically(settings, frame):
    sampled = {"reference_max_rows": 200, "train_metrics_max_rows": 1_000}
    settings = with_empty_mlflow(settings.model_copy(update=sampled))

    trained, holdout = register_challenger(settings, frame)

    assert trained.version == 1
    assert registry.aliases(settings) == {registry.CHALLENGER: 1}
    assert trained.training_data_end == FIRST_DAY + dt.timedelta(days=7)
    version = registry.model_version(settings, 1)
    assert version.tags[registry.TRAINING_DATA_END] == "2026-01-08"
    assert version.tags["feature_service"] == FEATURE_SERVICE
    assert version.tags["airflow.dag_id"] == "continuous_training"
    assert len(version.tags["git_sha"]) in (40, len("unknown"))

    run = mlflow.get_run(trained.run_id)
    assert run.data.metrics["holdout_roc_auc"] == pytest.approx(trained.metrics["roc_auc"])
    assert {"holdout_pr_auc", "holdout_log_loss", "holdout_brier", "train_roc_auc"} <= set(
        run.data.metrics
    )
    assert run.data.params["seed"] == str(settings.training_seed)
    # Fit on every row of the split, train_* metrics from a sample of it.
    assert run.data.params["train_rows"] == str(len(frame) - len(holdout)) == "1500"
    assert run.data.metrics["train_rows"] == 1_000
    assert run.data.tags["airflow.logical_date"] == LINEAGE["logical_date"]
    assert run.data.tags["dataset_digest"] == trained.dataset_digest
    assert [d.dataset.digest for d in run.inputs.dataset_inputs] == [trained.dataset_digest]
    client = registry.connect(settings)
    plots = {item.path for item in client.list_artifacts(trained.run_id, "plots")}
    assert plots == {
        f"plots/{name}.png"
        for name in ("roc_curve", "pr_curve", "calibration", "feature_importance")
    }

    loaded = registry.load_model(settings, registry.CHALLENGER)
    np.testing.assert_array_equal(
        loaded.predict_proba(holdout[FEATURES]), trained.model.predict_proba(holdout[FEATURES])
    )

    reference = reference_data(settings, trained.version)
    assert len(reference) == 200
    assert {ENTITY, TIMESTAMP, LABEL, PREDICTION, *FEATURES} == set(reference.columns)
    assert reference[TIMESTAMP].min() >= holdout[TIMESTAMP].min()
    rescored = trained.model.predict_proba(reference[FEATURES])[:, 1]
    np.testing.assert_allclose(reference[PREDICTION], rescored)
    assert json.loads(json.dumps(trained.to_dict()))["version"] == 1
