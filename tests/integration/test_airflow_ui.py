"""The Airflow UI as an on-call user sees it, in a real browser against a running Airflow.

What churnloop adds to the UI only shows in the UI: the DAGs, the trigger form built from
the Params, and the "Report" extra link that takes a failed validation to its Data Docs.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from tests.integration.airflow_ui import (
    dag_ids,
    dag_run,
    follow_extra_link,
    log_in,
    open_trigger_form,
    trigger_form_params,
)

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
EXPECTED_DAGS = {"customer_data", "continuous_training", "drift_report"}
THIS_MACHINE = {"127.0.0.1", "localhost"}


@pytest.fixture
def ui_page(chromium_page, airflow_ui):
    """A browser page signed in to the running Airflow."""
    log_in(chromium_page, airflow_ui.base_url, airflow_ui.username, airflow_ui.password)
    return chromium_page


@pytest.fixture
def outside_requests(ui_page) -> list[str]:
    """The URLs the browser tried to fetch from another host than this machine: each is
    aborted, as it fails on a machine without internet."""
    attempted: list[str] = []

    def this_machine_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname in THIS_MACHINE:
            route.continue_()
        else:
            attempted.append(route.request.url)
            route.abort("internetdisconnected")

    ui_page.context.route("**/*", this_machine_only)
    return attempted


@pytest.fixture(scope="module")
def training_params() -> dict[str, str]:
    """continuous_training's Params as its DAG file declares them, as the form groups them:
    section -> {title: description}."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR / "continuous_training.py"))
    assert not bag.import_errors, bag.import_errors
    params = bag.dags["continuous_training"].params
    sections: dict[str, dict[str, str]] = {}
    for name in params:
        param = params.get_param(name)
        sections.setdefault(param.schema["section"], {})[param.schema["title"]] = param.description
    return sections


def test_dag_list_shows_the_loop(ui_page, airflow_ui):
    shown = set(dag_ids(ui_page, airflow_ui.base_url))
    assert shown >= EXPECTED_DAGS, f"DAG list misses {sorted(EXPECTED_DAGS - shown)}"


def test_trigger_form_shows_every_param_with_its_description(ui_page, airflow_ui, training_params):
    dialog = open_trigger_form(ui_page, airflow_ui.base_url, "continuous_training")
    assert trigger_form_params(dialog, list(training_params)) == training_params


def test_trigger_form_accepts_the_defaults(ui_page, airflow_ui):
    """A plain manual run needs no input: only force_promote asks for a reason."""
    dialog = open_trigger_form(ui_page, airflow_ui.base_url, "continuous_training")
    expect(
        dialog.get_by_role("button", name="Trigger", exact=True),
        "the trigger form rejects its own defaults",
    ).to_be_enabled()


def test_failed_validation_links_its_data_docs(ui_page, airflow_ui, outside_requests):
    """The page works offline: styled, its icons and scripts loaded from the site itself."""
    dag_id, run_id, task_id = airflow_ui.failed_validation
    day = dag_run(ui_page, airflow_ui.base_url, dag_id, run_id)["logical_date"][:10]

    docs = follow_extra_link(ui_page, airflow_ui.base_url, dag_id, run_id, task_id, "Report")

    assert docs.url.startswith(f"{airflow_ui.base_url}/churnloop/reports/data_docs/"), docs.url
    expect(docs.get_by_role("heading", name="Expectation Validation Result")).to_be_visible()
    expect(docs.get_by_text(f"Validations / customer_snapshots / dt={day}")).to_be_visible()
    expect(docs.get_by_text("Expectation Suite: customer_snapshots")).to_contain_text(
        re.compile(r"Status:\s+Failed")
    )
    unsuccessful = docs.get_by_role("row", name=re.compile("Unsuccessful Expectations"))
    assert int(unsuccessful.inner_text().split()[-1]) >= 1, unsuccessful.inner_text()
    assert_styled_with_its_icons_and_logo(docs)
    assert_failed_only_shows_the_failed_expectations(docs)
    assert outside_requests == [], "the page reached outside this machine"


def assert_styled_with_its_icons_and_logo(docs: Page) -> None:
    """Bootstrap's CSS applied (a ``.navbar`` is a block without it), Font Awesome's font
    loaded for the status icons, and GX's logo shown."""
    navbar = docs.locator("nav.navbar").first
    assert navbar.evaluate("nav => getComputedStyle(nav).display") == "flex", "no Bootstrap CSS"
    loaded_fonts = docs.evaluate(
        "() => document.fonts.ready.then(fonts => [...fonts]"
        ".filter(font => font.status === 'loaded').map(font => font.family))"
    )
    assert any("Font Awesome" in family for family in loaded_fonts), loaded_fonts
    logo = docs.get_by_role("img", name="Great Expectations")
    assert logo.evaluate("image => image.complete && image.naturalWidth") > 0, "no logo"


def assert_failed_only_shows_the_failed_expectations(docs: Page) -> None:
    """The "Failed Only" filter (jQuery, Bootstrap's scripts) hides passed expectations' rows."""
    rows = docs.locator("tbody tr")
    failed = rows.filter(has=docs.locator(".fa-times.text-danger"))
    passed = rows.filter(has=docs.locator(".fa-check-circle"))
    expect(passed.first).to_be_visible()
    docs.get_by_text("Failed Only", exact=True).click()
    expect(passed.first).to_be_hidden()
    expect(failed.first).to_be_visible()
    expect(failed.first).to_contain_text("unexpected values found")


def test_the_emitting_days_drift_report_opens_with_its_decision(ui_page, airflow_ui, airflow_loop):
    """From the drift run that emitted churn_drift, its Report link: the decision first."""
    client = airflow_loop.client
    (run_id,) = [
        run["dag_run_id"]
        for run in airflow_loop.runs.drift
        if client.task_states("drift_report", run["dag_run_id"])["emit_churn_drift"] == "success"
    ]

    report = follow_extra_link(
        ui_page, airflow_ui.base_url, "drift_report", run_id, "check_drift", "Report"
    )

    verdict = report.locator("#churnloop-drift-verdict")
    expect(verdict.locator("h1")).to_have_text(re.compile(r"^Drift report \d{4}-\d{2}-\d{2}$"))
    opening = verdict.locator("h1 + p")
    expect(opening).to_have_text(re.compile(r"^Decision: retrain: churn_drift emitted \("))


def test_the_gate_table_is_in_the_main_log_of_a_drift_triggered_run(
    ui_page, airflow_ui, airflow_loop
):
    """Not inside a collapsed group: visible as the task's log page opens."""
    (run,) = [run for run in airflow_loop.runs.training if run["run_type"] == "asset_triggered"]
    dag, run_id = "continuous_training", quote(run["dag_run_id"], safe="")
    ui_page.goto(f"{airflow_ui.base_url}/dags/{dag}/runs/{run_id}/tasks/evaluate_challenger")

    expect(ui_page.get_by_text(re.compile(r"Evaluation gate: (BLESSED|REJECTED)"))).to_be_visible()
    expect(ui_page.get_by_text("Returned value was")).to_have_count(0)
