"""The daily check of a real champion (MLflow, the lake) and the churn_drift event it emits
(the whole DAG runs in tests/dags)."""

import logging
from types import SimpleNamespace

import pytest

from churnloop import storage
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
from tests.churnloop.monitoring.day_support import DAY, SNAPSHOT_DAY, log_served

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


# -- a checked day (the champion_day fixture: conftest.py) ------------------------------


def test_drift_without_estimated_harm_is_recorded_not_retrained(champion_day):
    settings, trained = champion_day

    report = check_day(settings, DAY)

    assert not report.triggered and report.reasons == []
    assert report.drift_without_harm[0].startswith("data drift on important columns: age")
    assert suppression(settings, report, 0) == "drift without estimated harm"
    assert report.estimated_performance["harm_ruled_out"], "the evidence is in the record"
    assert any(
        note.startswith("drift without estimated harm, no retraining") for note in report.notes
    )
    (served,) = report.served_performance
    assert served["model_version"] == trained.version
    performance = next(note for note in report.notes if note.startswith("performance on the"))
    assert f"labels of {SNAPSHOT_DAY}: ROC AUC" in performance
    assert "; estimated before the labels" in performance

    without_threshold = check_day(
        settings.model_copy(update={"drift_max_estimated_auc_drop": None}), DAY
    )
    assert without_threshold.triggered and without_threshold.drift_without_harm == []
    assert without_threshold.reasons[0].startswith("data drift on important columns: age")

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
    """Too few rows to judge (test_day_measurements.py) is no reason to retrain, and the
    report says why nothing was judged."""
    settings, trained = champion_day
    aged = storage.lake(settings).read_table(definition.DATASET, DAY).to_pandas().head(3)
    log_served(settings, trained.model, trained.version, DAY, aged)

    report = check_day(settings, DAY)

    assert report.current_rows == 3 and report.drifted_columns == []
    assert set(report.scores.values()) == {None} and report.prediction_psi is None
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
