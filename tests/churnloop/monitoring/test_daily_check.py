"""The daily check of a real champion (MLflow, the lake) and the churn_drift event it emits
(the whole DAG runs in tests/dags)."""

import datetime as dt
import logging
from types import SimpleNamespace

import pandas as pd
import pytest

from churnloop import registry, schema, storage
from churnloop.demo.simulation import Scenario, generate_labels, generate_snapshots
from churnloop.errors import DataError
from churnloop.features import definition
from churnloop.monitoring.daily_check import (
    TrainingServingSkew,
    check_day,
    check_drift,
    churn_drift_event,
    decision_line,
    describe_inputs,
    require_no_skew,
    suppression,
)
from churnloop.monitoring.trend import TREND_PAGE
from churnloop.serving.prediction_log import FEATURES_KEY, PredictionLog
from churnloop.training.metrics import score
from tests.churnloop.training_support import (
    FEATURES,
    labelled_days,
    register_challenger,
    with_empty_mlflow,
)

REPORT = {
    "day": "2026-02-15",
    "champion_version": 1,
    "reasons": ["data drift in important column age"],
    "drifted_columns": ["age"],
    "scores": {"age": 0.812345, "logins": 0.01},
    "report": "reports/drift/dt=2026-02-15/report.html",
    "report_url": "http://127.0.0.1:8080/churnloop/reports/drift/dt=2026-02-15/report.html",
    "suppressed": None,
}


def test_the_event_names_the_day_its_reasons_and_the_drifted_scores(caplog):
    caplog.set_level(logging.INFO, logger="churnloop")
    extra = churn_drift_event(REPORT)

    assert extra == {
        "day": "2026-02-15",
        "reasons": ["data drift in important column age"],
        "drifted_columns": ["age"],
        "report_url": "http://127.0.0.1:8080/churnloop/reports/drift/dt=2026-02-15/report.html",
        "scores": {"age": 0.8123},
    }
    assert "churn_drift emitted for 2026-02-15: data drift in important column age" in (
        caplog.messages
    )


# -- a checked day -------------------------------------------------------------------------

START = dt.date(2026, 1, 1)
CUSTOMERS = 1_000
DAY = START + dt.timedelta(days=45)  # the champion's data ends on Jan 10: 36 days old
SNAPSHOT_DAY = DAY - dt.timedelta(days=schema.LABEL_DELAY_DAYS)
AGEING = Scenario("covariate_drift", drift_start=DAY - dt.timedelta(days=3), ramp_days=1)
"""The simulator's covariate drift (ages towards 65): it costs less ROC AUC than the
estimate's threshold (docs/staleness.md, docs/drift.md)."""


def log_served(settings, model, version: int, day: dt.date, features: pd.DataFrame) -> None:
    """The champion served each row of ``features`` at noon of ``day``, as the server logs it."""
    scores = score(model, features)
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    log = PredictionLog(settings, flush_rows=10**6, flush_seconds=60, max_pending_rows=10**6)
    log.append(
        {
            schema.TIMESTAMP: noon,
            schema.ENTITY: int(row[schema.ENTITY]),
            "model_name": settings.model_name,
            "model_version": version,
            schema.PREDICTION: float(probability),
            FEATURES_KEY: {name: row[name] for name in FEATURES},
        }
        for (_, row), probability in zip(features.iterrows(), scores, strict=True)
    )
    assert log.flush(), "the day's prediction log was written"


@pytest.fixture
def champion_day(settings):
    """A champion on 10 baseline days; the checked day aged; the day 30 before labelled,
    with the champion's served scores in its prediction log."""
    settings = with_empty_mlflow(settings)
    trained, _ = register_challenger(settings, labelled_days(START, 10, CUSTOMERS))
    registry.connect(settings).set_registered_model_alias(
        settings.model_name, registry.CHAMPION, str(trained.version)
    )
    lake = storage.lake(settings)
    lake.write_table(definition.DATASET, DAY, generate_snapshots(DAY, CUSTOMERS, scenario=AGEING))
    lake.write_table(definition.DATASET, SNAPSHOT_DAY, generate_snapshots(SNAPSHOT_DAY, CUSTOMERS))
    labels = generate_labels(SNAPSHOT_DAY, CUSTOMERS)
    lake.write_table(schema.validated_dataset(schema.LABELS), DAY, labels)
    served = generate_snapshots(SNAPSHOT_DAY, CUSTOMERS).to_pandas()
    log_served(settings, trained.model, trained.version, SNAPSHOT_DAY, served)
    return settings, trained


def test_drift_without_estimated_harm_is_recorded_not_retrained(champion_day):
    settings, trained = champion_day

    report = check_day(settings, DAY)

    assert "age" in report.drifted_columns
    assert not report.triggered and report.reasons == []
    assert report.drift_without_harm[0].startswith("data drift on important columns: age")
    assert suppression(settings, report, 0) == "drift without estimated harm"
    estimate = report.estimated_performance
    assert estimate["harm_ruled_out"] and estimate["rows"] == CUSTOMERS
    assert any(
        note.startswith("drift without estimated harm, no retraining") for note in report.notes
    )

    (served,) = report.served_performance
    metrics = registry.connect(settings).get_run(trained.run_id).data.metrics
    assert served["model_version"] == trained.version
    assert served["holdout_auc"] == metrics["holdout_roc_auc"]
    assert served["rows"] == CUSTOMERS and served["auc"]["low"] < served["auc"]["estimate"]
    performance = next(note for note in report.notes if note.startswith("performance on the"))
    assert f"labels of {SNAPSHOT_DAY}: ROC AUC" in performance
    assert "; estimated before the labels" in performance

    without_threshold = check_day(
        settings.model_copy(update={"drift_max_estimated_auc_drop": None}), DAY
    )
    assert without_threshold.triggered and without_threshold.drift_without_harm == []
    assert without_threshold.reasons[0].startswith("data drift on important columns: age")

    assert report.serving_inputs["rows"] == 0 and report.skew["insufficient_data"]
    assert "serving inputs: no prediction log that day" in report.notes

    record = check_drift(settings, DAY, active_training_runs=0)
    trend = storage.lake(settings).read_bytes(TREND_PAGE).decode()
    assert record["suppressed"] == "drift without estimated harm"
    assert record["decision"].startswith("no retraining: drift without estimated harm (data")
    page = storage.lake(settings).read_bytes(record["report"]).decode()
    opening = page.index('id="churnloop-decision"')
    assert opening < page.index("<li>"), "the report opens with its decision"
    assert "churn_drift not emitted" in page[opening : page.index("</p>", opening)]
    assert f"<title>Drift report {DAY}</title>" in page
    assert f'href="dt={DAY}/report.html"' in trend and "drift without estimated harm" in trend


def test_a_day_of_three_requests_is_insufficient_data_never_a_trigger(champion_day):
    """Three requests once made a report say "dataset drift, 33 of 34 columns": a day needs
    ``drift_min_rows`` rows a side before any column, slice or score is judged."""
    settings, trained = champion_day
    aged = storage.lake(settings).read_table(definition.DATASET, DAY).to_pandas().head(3)
    log_served(settings, trained.model, trained.version, DAY, aged)

    report = check_day(settings, DAY)

    assert report.current_rows == 3 and report.source.startswith(f"prediction log of {DAY}")
    assert report.drifted_columns == [] and report.drifted_slices == []
    assert set(report.scores.values()) == {None}, "no column judged"
    assert report.prediction_psi is None
    assert not report.triggered and report.reasons == [] and report.drift_without_harm == []
    assert suppression(settings, report, 0) == "no reason to retrain", "churn_drift not emitted"
    page = storage.lake(settings).read_bytes(report.report).decode()
    assert "Decision: no retraining: no reason to retrain; churn_drift not emitted" in page
    assert "feature drift: insufficient data: reference " in page
    assert f"current 3 rows, fewer than {settings.drift_min_rows:,} on a side" in page
    assert "prediction drift: prediction: insufficient data" in " ".join(report.notes)


@pytest.mark.parametrize(
    ("triggered", "without_harm", "suppressed", "expected"),
    [
        (True, [], None, "retrain: churn_drift emitted (concept drift)"),
        (
            True,
            [],
            "cooldown",
            "retraining warranted (concept drift), but churn_drift not emitted: cooldown",
        ),
        (
            False,
            ["data drift on age"],
            "drift without estimated harm",
            "no retraining: drift without estimated harm (data drift on age); churn_drift not "
            "emitted",
        ),
        (
            False,
            [],
            "no reason to retrain",
            "no retraining: no reason to retrain; churn_drift not emitted",
        ),
    ],
)
def test_the_decision_says_retrain_or_not_why_and_what_was_emitted(
    triggered, without_harm, suppressed, expected
):
    day = SimpleNamespace(
        triggered=triggered,
        reasons=["concept drift"] if triggered else [],
        drift_without_harm=without_harm,
    )
    assert decision_line(day, suppressed) == expected


def test_skew_fails_the_check_naming_the_columns_and_the_report():
    skewed = {
        "skew": {"failed": True, "reason": "training/serving skew: plan 32.33% [27.3%, 37.8%]"},
        "report_url": "http://ui/churnloop/reports/drift/dt=2026-03-06/report.html",
    }
    with pytest.raises(TrainingServingSkew, match="plan 32.33%.*report: http://ui/") as raised:
        require_no_skew(skewed)
    assert isinstance(raised.value, DataError), "a data error: never retried"
    require_no_skew({"skew": {"failed": False}, "report_url": ""})


def test_the_inputs_line_names_each_feature_and_reason():
    inputs = {
        "rows": 6,
        "rows_checked": 5,
        "out_of_contract": {"age": {"above_max": 1}, "plan": {"unseen_category": 2}},
        "nonfinite_predictions": {"1": 0, "2": 1},
    }
    assert describe_inputs(inputs) == (
        "5 of 6 rows checked; out of contract: age above_max 1, plan unseen_category 2; "
        "non-finite predictions: 1"
    )
