import datetime as dt
import html
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from churnloop.cli import main
from churnloop.links import report_url
from churnloop.monitoring.effect_sizes import compute_drift
from churnloop.monitoring.report import build_report, save_report
from churnloop.monitoring.slice_drift import compute_slice_drift
from churnloop.schema import ENTITY, PREDICTION, TIMESTAMP
from churnloop.serving.prediction_log import FEATURES_KEY, PredictionLog, read_predictions
from churnloop.storage import lake
from tests.churnloop.monitoring.drift_support import THRESHOLDS

DAY = dt.date(2026, 3, 4)
COLUMNS = ["spend", "logins", "plan", "discount"]


def customers(rows: int, seed: int, *, drifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plans = ["basic", "standard", "premium", *(["enterprise"] if drifted else [])]
    return pd.DataFrame(
        {
            "spend": rng.normal(60.0 if drifted else 50.0, 10.0, rows),
            "logins": rng.poisson(3, rows),
            "plan": rng.choice(plans, rows),
            "discount": np.full(rows, np.nan) if drifted else rng.random(rows),
        }
    )


@pytest.fixture(scope="module")
def comparison():
    reference = customers(3_000, seed=1, drifted=False)
    current = customers(3_000, seed=2, drifted=True)
    result = compute_drift(reference, current, list(reference.columns), THRESHOLDS)
    report = build_report(
        reference,
        current,
        result,
        title="Drift 2026-03-04",
        notes=["current: served prediction log of 2026-03-04"],
        sample_rows=1_000,
    )
    return result, report


def test_html_puts_the_verdict_over_evidentlys_charts(comparison):
    result, report = comparison
    assert result.drifted_columns == ["spend", "plan", "discount"]

    start = report.html.index('<section id="churnloop-drift-verdict"')
    end = report.html.index("</section>", start)
    verdict, evidently = report.html[start:end], report.html[:start] + report.html[end:]
    assert report.html.index("<body") < start, "the verdict is part of the page's body"
    assert "<h1>Drift 2026-03-04</h1>" in verdict
    assert "current: served prediction log of 2026-03-04" in verdict
    for column in result.drifted_columns:
        assert f"<td>{column}</td>" in verdict
    assert verdict.count("<td>drifted</td>") == 3
    assert "Value Drift for column spend" in evidently, "Evidently's own page is kept"


def test_json_holds_our_verdict_and_evidently_with_the_same_methods(comparison):
    result, report = comparison
    record = json.loads(json.dumps(report.json))

    assert record["drift"] == result.to_dict()
    assert record["evidently"]["reference_rows"] == record["evidently"]["current_rows"] == 1_000
    methods = {
        metric["config"]["column"]: (metric["config"]["method"], metric["config"]["threshold"])
        for metric in record["evidently"]["metrics"]
        if metric["config"]["type"].endswith("ValueDrift")
    }
    assert methods == {
        "spend": ("psi", 0.2),
        "logins": ("psi", 0.2),
        "plan": ("jensenshannon", 0.1),
    }
    failed = {t["name"] for t in record["evidently"]["tests"] if t["status"] == "FAIL"}
    assert {"Value Drift for column spend", "Value Drift for column plan"} <= failed


def test_report_says_what_it_sampled_and_left_out(comparison):
    _, report = comparison
    notes = " ".join(report.json["about_evidently"])

    assert "seeded sample of 1,000 of 3,000 reference rows" in notes
    assert "Not charted by Evidently (no values in a sample): discount" in notes


def test_saved_report_round_trips_from_the_lake(settings, comparison):
    _, report = comparison

    paths = save_report(settings, DAY, report)
    paths_again = save_report(settings, DAY, report)

    store = lake(settings)
    assert (
        paths
        == paths_again
        == {
            "html": "reports/drift/dt=2026-03-04/report.html",
            "json": "reports/drift/dt=2026-03-04/report.json",
        }
    )
    assert store.read_bytes(paths["html"]).decode() == report.html
    assert json.loads(store.read_bytes(paths["json"])) == report.json
    assert sorted(store.list_files("reports/drift")) == sorted(paths.values())
    assert report_url(settings, paths["html"]).endswith(
        "/churnloop/reports/drift/dt%3D2026-03-04/report.html"
    )


def test_small_inputs_are_charted_whole(settings):
    reference = customers(500, seed=3, drifted=False)
    current = customers(500, seed=4, drifted=False)
    result = compute_drift(reference, current, list(reference.columns), THRESHOLDS)

    report = build_report(reference, current, result, title="Drift", notes=[])

    assert result.drifted_columns == []
    assert report.json["evidently"]["current_rows"] == 500
    assert not any("seeded sample" in note for note in report.json["about_evidently"])


def test_cli_compares_two_parquet_files_and_saves_the_report(settings, tmp_path, capsys):
    customers(800, seed=5, drifted=False).to_parquet(tmp_path / "reference.parquet")
    customers(800, seed=6, drifted=True).to_parquet(tmp_path / "current.parquet")
    files = ["--reference", str(tmp_path / "reference.parquet")]
    files += ["--current", str(tmp_path / "current.parquet"), "--day", "2026-03-04"]

    assert main(["drift-report", *files]) == 2, "without columns: the model's features"
    assert "without columns drift compares the model's features" in capsys.readouterr().err
    assert main(["drift-report", *files, "--columns", *COLUMNS]) == 0

    output = capsys.readouterr().out
    assert "dataset drift: 3 of 4 columns drifted" in output
    assert "report: http://localhost:8080/churnloop/reports/drift/dt%3D2026-03-04/" in output
    assert lake(settings).exists("reports/drift/dt=2026-03-04/report.json")
    assert main(["drift-report", *files, "--columns", "spend", "tenure"]) == 2
    assert "lacks column(s) ['tenure']" in capsys.readouterr().err


def test_a_column_evidently_cannot_chart_is_in_the_verdict_alone():
    reference = customers(500, seed=3, drifted=False)[["discount"]]
    current = customers(500, seed=4, drifted=True)[["discount"]]
    result = compute_drift(reference, current, list(reference.columns), THRESHOLDS)

    report = build_report(reference, current, result, title="Drift", notes=[])

    assert result.drifted_columns == ["discount"]
    assert report.json["evidently"] is None
    assert "<td>discount</td>" in report.html and "Not charted by Evidently" in report.html


HOSTILE = ("</script><script>alert(1)</script>", "<img src=x onerror=alert(2)>", "<!--")
"""Category values that would end Evidently's data script or start markup, were they raw."""


def logged_predictions(settings, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s rows written to the prediction log of DAY and read back, as the daily
    check reads its current data."""
    log = PredictionLog(settings, flush_rows=10**6, flush_seconds=3600, max_pending_rows=10**6)
    at = dt.datetime.combine(DAY, dt.time(12), tzinfo=dt.UTC)
    log.append(
        {
            TIMESTAMP: at,
            "request_id": "r",
            ENTITY: index,
            "model_name": "churn-model",
            "model_version": 1,
            PREDICTION: 0.5,
            "predicted_label": 1,
            "shadow_version": None,
            "shadow_prediction": None,
            FEATURES_KEY: row,
        }
        for index, row in enumerate(frame.to_dict("records"))
    )
    log.flush()
    return read_predictions(settings, DAY)[frame.columns]


def test_a_hostile_category_in_the_prediction_log_stays_text_in_the_report(settings, comparison):
    """Whatever reached the log is data in the page: no value ends Evidently's script
    block, and the charts still show it (escaped for JavaScript, not altered)."""
    reference = customers(600, seed=7, drifted=False)[["spend", "plan"]]
    current = customers(600, seed=8, drifted=False)[["spend", "plan"]]
    current["plan"] = [HOSTILE[i % len(HOSTILE)] for i in range(len(current))]
    current = logged_predictions(settings, current)
    result = compute_drift(reference, current, list(reference.columns), THRESHOLDS)

    page = build_report(reference, current, result, title="Drift", notes=[]).html

    assert "plan" in result.drifted_columns
    for value in HOSTILE:
        assert value not in page
        escaped = json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")
        assert escaped in page, f"{value!r} is no longer charted"
    assert "</script><script>alert" not in page
    _, clean = comparison
    assert page.count("</script>") == clean.html.count("</script>"), "the same script blocks"


def test_report_links_carry_no_credentials(settings):
    with_password = settings.model_copy(
        update={"airflow_api_url": "http://admin:pl4nted-pw@airflow.internal:8080/"}
    )

    url = report_url(with_password, "reports/drift/dt=2026-03-04/report.html")

    assert url == "http://airflow.internal:8080/churnloop/reports/drift/dt%3D2026-03-04/report.html"


def verdict_section(page: str) -> str:
    start = page.index('<section id="churnloop-drift-verdict"')
    return page[start : page.index("</section>", start)]


def test_too_few_rows_report_insufficient_data_and_no_evidently_charts():
    reference = customers(2_000, seed=3, drifted=False)
    current = customers(3, seed=4, drifted=True)
    result = compute_drift(reference, current, COLUMNS, THRESHOLDS)

    report = build_report(reference, current, result, title="Drift", notes=[])

    verdict = verdict_section(report.html)
    assert report.json["evidently"] is None
    assert verdict.count("<td>insufficient data</td>") == len(COLUMNS)
    assert "insufficient data: reference 2,000 rows, current 3 rows" in verdict
    assert "Evidently&#x27;s charts are left out" in verdict
    assert "Value Drift" not in report.html
    assert report.html.startswith("<!DOCTYPE html>"), "a title before the doctype: quirks mode"
    assert "<head><title>Drift</title>" in report.html


def test_evidentlys_flags_that_contradict_the_verdict_are_named_above_its_charts():
    """150 rows of a 200-category column reach the Jensen-Shannon threshold by noise:
    Evidently (threshold alone) flags it, the verdict (threshold and test) does not."""
    rng = np.random.default_rng(11)
    postcodes = np.array([f"p{i:03d}" for i in range(200)])
    reference = pd.DataFrame({"postcode": rng.choice(postcodes, 5_000)})
    current = pd.DataFrame({"postcode": rng.choice(postcodes, 150)})
    result = compute_drift(reference, current, ["postcode"], THRESHOLDS)

    report = build_report(reference, current, result, title="Drift", notes=[])

    column = result.column("postcode")
    assert column.score >= column.threshold and column.status == "stable"
    failed = [
        test["name"] for test in report.json["evidently"]["tests"] if test["status"] == "FAIL"
    ]
    assert "Value Drift for column postcode" in failed
    expected = (
        "differ from the verdict on 2: postcode (Evidently: drift, verdict: stable); "
        "the dataset (Evidently: drift, verdict: no drift)"
    )
    assert expected in report.json["about_evidently"][-1]
    assert html.escape(expected) in verdict_section(report.html), "named above Evidently's charts"


def test_drifted_slices_are_tabled_and_their_values_escaped():
    rng = np.random.default_rng(12)
    regions = np.array(["north", "south", "<b>east</b>"])

    def frame(rows: int) -> pd.DataFrame:
        return pd.DataFrame(
            {"region": rng.choice(regions, rows), "spend": rng.normal(50, 10, rows)}
        )

    reference, current = frame(6_000), frame(6_000)
    current.loc[current["region"] == "<b>east</b>", "spend"] += 15
    result = compute_drift(reference, current, ["spend"], THRESHOLDS)
    slices = compute_slice_drift(reference, current, ["spend"], ["region"], THRESHOLDS)

    report = build_report(reference, current, result, title="Drift", notes=[], slices=slices)

    verdict = verdict_section(report.html)
    assert [item.name for item in slices.drifted_slices] == ["region=<b>east</b>"]
    assert "<td>region=&lt;b&gt;east&lt;/b&gt;</td>" in verdict
    assert "<b>east" not in verdict
    assert report.json["slices"]["drifted_slices"] == ["region=<b>east</b>"]


def test_a_constant_column_charts_without_runtime_warnings():
    """Evidently's correlation matrix divided by a constant column's zero spread: four
    "invalid value encountered in divide" lines preceded every check_drift log."""
    reference = customers(1_000, seed=1, drifted=False).assign(flag=1.0)
    current = customers(1_000, seed=2, drifted=False).assign(flag=1.0)
    columns = ["spend", "logins", "plan", "flag"]
    result = compute_drift(reference, current, columns, THRESHOLDS)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_report(reference, current, result, title="constant", notes=[], sample_rows=1_000)

    assert [str(w.message) for w in caught if w.category is RuntimeWarning] == []
