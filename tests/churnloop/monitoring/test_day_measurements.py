"""What the daily check measures of a day against a real champion (MLflow, the lake), before
any decision: drift, score drift, the estimate, realized and served performance, and the
serving checks."""

from churnloop import registry, storage
from churnloop.features import definition
from churnloop.monitoring.day_measurements import measure_day
from tests.churnloop.monitoring.day_support import CUSTOMERS, DAY, log_served


def measured_today(settings):
    return measure_day(settings, registry.champion_version(settings), DAY)


def test_an_aged_day_drifts_within_the_estimate_and_its_matured_labels_are_scored(champion_day):
    settings, trained = champion_day

    measured = measured_today(settings)

    assert "age" in measured.drift.result.drifted_columns
    estimate = measured.estimate.to_dict()
    assert estimate["harm_ruled_out"] and estimate["rows"] == CUSTOMERS
    assert measured.performance.judged and measured.performance.estimated_auc is not None
    (served,) = [auc.to_dict() for auc in measured.served]
    metrics = registry.connect(settings).get_run(trained.run_id).data.metrics
    assert served["model_version"] == trained.version
    assert served["holdout_auc"] == metrics["holdout_roc_auc"]
    assert served["rows"] == CUSTOMERS and served["auc"]["low"] < served["auc"]["estimate"]
    assert measured.serving_inputs["rows"] == 0 and measured.skew["insufficient_data"]


def test_a_day_of_three_requests_judges_no_column_slice_or_score(champion_day):
    """Three requests once made a report say "dataset drift, 33 of 34 columns": a day needs
    ``drift_min_rows`` rows a side before any column, slice or score is judged."""
    settings, trained = champion_day
    aged = storage.lake(settings).read_table(definition.DATASET, DAY).to_pandas().head(3)
    log_served(settings, trained.model, trained.version, DAY, aged)

    measured = measured_today(settings)

    drift = measured.drift
    assert len(drift.current) == 3 and measured.source.startswith(f"prediction log of {DAY}")
    assert drift.result.drifted_columns == [] and drift.slices.drifted_slices == []
    assert {column.score for column in drift.result.columns} == {None}, "no column judged"
    assert measured.prediction_drift.score is None
    assert measured.prediction_drift.describe().startswith("prediction: insufficient data")
