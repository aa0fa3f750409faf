"""The challenger's MLflow record: its run, dataset, registered version and drift reference."""

import datetime as dt
import json

import mlflow
import numpy as np
import pytest

from churnloop import registry
from churnloop.errors import DataError
from churnloop.schema import ENTITY, LABEL, PREDICTION, TIMESTAMP
from churnloop.settings import get_settings
from churnloop.training.calibration import METHODS
from churnloop.training.challenger import (
    SCHEMA_SAMPLE_ROWS,
    _dataset_record,
    base_params,
    git_sha,
    provenance,
    reference_data,
)
from churnloop.training.split import split_by_time
from churnloop.training.tuning import ParamRange, tune
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
    assert version.tags[registry.TRAINING_DATA_END_TAG] == "2026-01-08"
    assert version.tags["feature_service"] == FEATURE_SERVICE
    assert version.tags["airflow.dag_id"] == "continuous_training"
    assert len(version.tags["git_sha"]) in (40, len("unknown"))

    run = mlflow.get_run(trained.run_id)
    assert run.data.metrics["holdout_roc_auc"] == pytest.approx(trained.metrics["roc_auc"])
    assert {
        "holdout_pr_auc",
        "holdout_log_loss",
        "holdout_brier",
        "holdout_ece",
        "train_roc_auc",
    } <= set(run.data.metrics)
    assert run.data.params["seed"] == str(settings.training_seed)
    assert run.info.run_name == "train on data up to 2026-01-08"
    assert run.data.tags["mlflow.source.type"] == "LOCAL"
    assert run.data.tags["mlflow.source.name"].endswith("challenger.train_and_register")
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


def test_a_calibrated_challenger_records_its_calibration_and_reloads_identically(settings, frame):
    """A model that overpredicts churn, judged on the split's last day (lower minimums)."""
    calibrating = {"calibration_min_positives": 10, "calibration_min_negatives": 10}
    settings = with_empty_mlflow(settings.model_copy(update=calibrating))
    overweighted = {**FAST_PARAMS, "scale_pos_weight": 4}

    trained, holdout = register_challenger(settings, frame, params=overweighted)

    run = mlflow.get_run(trained.run_id)
    method = run.data.params["calibration"]
    assert method in METHODS, run.data.tags[registry.CALIBRATION_REASON_TAG]
    assert run.data.params["calibration_days"] == "1"
    metrics = run.data.metrics
    assert metrics["calibration_brier_after"] < metrics["calibration_brier_before"]
    assert metrics["calibration_ece_after"] < metrics["calibration_ece_before"]
    tags = registry.model_version(settings, trained.version).tags
    assert tags[registry.CALIBRATION_TAG] == method
    assert tags[registry.CALIBRATION_REASON_TAG].startswith(f"{method} lowers Brier")
    loaded = registry.load_model(settings, registry.CHALLENGER)
    np.testing.assert_array_equal(
        loaded.predict_proba(holdout[FEATURES]), trained.model.predict_proba(holdout[FEATURES])
    )
    client = registry.connect(settings)
    client.set_registered_model_alias(settings.model_name, registry.CHAMPION, "1")
    params, source = base_params(settings)
    assert source == "champion v1"
    assert params["n_estimators"] == FAST_PARAMS["n_estimators"]


def test_a_version_records_its_commit_state_and_where_its_parameters_came_from(settings, frame):
    settings = with_empty_mlflow(settings)

    trained, _ = register_challenger(settings, frame)

    tags = registry.model_version(settings, trained.version).tags
    assert tags[registry.GIT_SHA_TAG] == git_sha(settings.project_root) != "unknown"
    assert tags[registry.GIT_DIRTY_TAG] in {"true", "false"}
    assert tags[registry.PARAMS_SOURCE_TAG] == "settings"


def test_parameters_set_by_a_person_are_an_override(settings, monkeypatch):
    assert base_params(with_empty_mlflow(settings)) == (settings.model_params, "settings")

    monkeypatch.setenv("CHURNLOOP_MODEL_PARAMS", json.dumps(FAST_PARAMS))

    assert base_params(get_settings()) == (FAST_PARAMS, "override")


def test_the_image_commit_wins_and_an_unknown_one_is_refused_where_required(
    settings, frame, monkeypatch
):
    monkeypatch.setenv("CHURNLOOP_GIT_SHA", "0123abc")
    assert provenance(get_settings())[registry.GIT_SHA_TAG] == "0123abc"

    monkeypatch.setenv("CHURNLOOP_GIT_SHA", "unknown")
    monkeypatch.setenv("CHURNLOOP_REQUIRE_KNOWN_COMMIT", "true")
    settings = with_empty_mlflow(get_settings())
    with pytest.raises(DataError, match="commit is unknown: build the image with"):
        register_challenger(settings, frame)
    assert registry.connect(settings).search_registered_models() == []


def test_tuning_trials_are_child_runs_of_the_challengers_run(settings, frame):
    settings = with_empty_mlflow(settings)
    train, _ = split_by_time(frame, HOLDOUT_DAYS)
    small = {"n_estimators": ParamRange(5, 20, integer=True)}
    tuning = tune(
        settings,
        train,
        FEATURES,
        base_params=FAST_PARAMS,
        trials=2,
        timeout_seconds=600,
        seed=1,
        space=small,
    )

    trained, _ = register_challenger(
        settings, frame, params=tuning.best_params, params_source="tuned", tuning=tuning
    )

    children = mlflow.search_runs(
        experiment_ids=[mlflow.get_run(trained.run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{trained.run_id}'",
    )
    assert len(children) == 2
    assert mlflow.get_run(trained.run_id).data.metrics["tuning_trials"] == 2
    tags = registry.model_version(settings, trained.version).tags
    assert tags[registry.PARAMS_SOURCE_TAG] == "tuned"
