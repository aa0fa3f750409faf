"""The churn_drift event a triggering day emits (the whole check runs in tests/dags)."""

from churnloop.monitoring.daily_check import churn_drift_event

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


def test_the_event_names_the_day_its_reasons_and_the_drifted_scores(capsys):
    extra = churn_drift_event(REPORT)

    assert extra == {
        "day": "2026-02-15",
        "reasons": ["data drift in important column age"],
        "drifted_columns": ["age"],
        "report": "reports/drift/dt=2026-02-15/report.html",
        "scores": {"age": 0.8123},
    }
    assert "churn_drift emitted for 2026-02-15: data drift in important column age" in (
        capsys.readouterr().out
    )
