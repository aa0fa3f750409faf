import datetime as dt
import re
from urllib.parse import urljoin

from churnloop.links import PLUGIN_MOUNT
from churnloop.monitoring.trend import (
    TREND_PAGE,
    build_trend,
    day_records,
    render_trend,
    save_day,
)
from churnloop.storage import lake

DAY = dt.date(2026, 5, 1)


def record(day: dt.date, **changes) -> dict:
    base = {
        "day": day.isoformat(),
        "champion_version": 2,
        "current_rows": 1200,
        "triggered": False,
        "suppressed": "no reason to retrain",
        "reasons": [],
        "drifted_columns": [],
        "scores": {"age": 0.01, "monthly_charges": 0.02},
        "prediction_psi": 0.01,
        "estimated_performance": {
            "estimate": {"estimate": 0.8, "low": 0.78, "high": 0.82, "confidence": 0.95},
            "reference_auc": 0.81,
        },
        "realized_performance": {"auc": 0.79},
    }
    return {**base, **changes}


def test_every_saved_day_is_on_the_page_with_a_link_to_its_report(settings):
    for offset in (2, 0, 1):
        save_day(settings, DAY + dt.timedelta(days=offset), record(DAY + dt.timedelta(days=offset)))
    save_day(settings, DAY, record(DAY, current_rows=99))

    assert [r["day"] for r in day_records(settings)] == ["2026-05-01", "2026-05-02", "2026-05-03"]
    assert day_records(settings)[0]["current_rows"] == 99
    assert build_trend(settings) == TREND_PAGE
    page = lake(settings).read_bytes(TREND_PAGE).decode()
    for day in ("2026-05-01", "2026-05-02", "2026-05-03"):
        assert f'href="dt={day}/report.html"' in page
    assert "data:image/png;base64," in page


def test_drifted_days_are_marked_and_say_whether_they_triggered():
    records = [
        record(DAY),
        record(
            DAY + dt.timedelta(days=1),
            triggered=True,
            suppressed=None,
            reasons=["data drift on important columns: age"],
            drifted_columns=["age"],
            scores={"age": 0.4, "monthly_charges": 0.02},
        ),
        record(
            DAY + dt.timedelta(days=2),
            triggered=True,
            suppressed="within the 7-day cooldown",
            reasons=["data drift on important columns: age"],
            drifted_columns=["age"],
            scores={"age": 0.5, "monthly_charges": 0.02},
        ),
    ]

    page = render_trend(records)

    assert "retrain: data drift on important columns: age" in page
    assert "(not triggered: within the 7-day cooldown)" in page
    age_row = re.search(r"<tr><td class=\"text\">age</td>(.*?)</tr>", page).group(1)
    assert age_row.count('class="drifted"') == 2 and "<td>0.010</td>" in age_row


def test_names_from_the_data_are_escaped():
    hostile = "<script>alert(1)</script>"
    page = render_trend([record(DAY, drifted_columns=[hostile], scores={hostile: 0.9})])

    assert hostile not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_an_empty_history_renders_a_page_without_a_chart():
    page = render_trend([])
    assert "0 checked day(s)" in page and "<img" not in page


def test_days_without_an_estimate_or_matured_labels_still_chart():
    unjudged = record(
        DAY,
        estimated_performance={"estimate": None, "reference_auc": None},
        realized_performance=None,
    )
    assert "data:image/png;base64," in render_trend([unjudged, record(DAY + dt.timedelta(days=1))])


def test_a_day_of_too_few_rows_renders_without_scores():
    """Insufficient data leaves every score and the prediction PSI unmeasured (None)."""
    thin = record(DAY, current_rows=3, prediction_psi=None, scores={"age": None, "plan": None})

    page = render_trend([thin, record(DAY + dt.timedelta(days=1))])

    assert "data:image/png;base64," in page
    row = page[page.index(f'href="dt={DAY}/report.html"') :]
    row = row[: row.index("</tr>")]
    assert "<td>3</td>" in row and "<td>-</td>" in row


def test_each_day_links_the_airflow_run_that_checked_it_on_the_ui_showing_the_page():
    run_id = "scheduled__2026-03-06T02:00:00+00:00"
    checked = record(DAY, airflow_run_id=run_id, decision="retrain: churn_drift emitted")
    page = render_trend([checked])

    (href,) = re.findall(r'href="([^"]*/runs/[^"]*)"', page)
    served_at = f"https://airflow.example/base{PLUGIN_MOUNT}/{TREND_PAGE}"
    assert urljoin(served_at, href) == (
        "https://airflow.example/base/dags/drift_report/runs/"
        "scheduled__2026-03-06T02%3A00%3A00%2B00%3A00"
    )
    assert "retrain: churn_drift emitted" in page, "the day's decision as its report opens"
