import pytest

from churnloop.links import in_this_ui, report_url


def test_a_report_link_recorded_on_another_port_opens_on_the_ui_that_shows_it():
    recorded = "http://127.0.0.1:37169/churnloop/reports/data_docs/index.html?x=1#top"

    assert in_this_ui(recorded) == "/churnloop/reports/data_docs/index.html?x=1#top"


@pytest.mark.parametrize(
    "url",
    ["https://grafana.example/d/abc", "http://127.0.0.1:8080/dags/customer_data", ""],
)
def test_other_links_are_left_as_they_are(url):
    assert in_this_ui(url) == url


def test_report_urls_carry_no_credentials(settings):
    settings = settings.model_copy(
        update={"airflow_api_url": "http://admin:pl4nted-pw@ui.internal:8080/"}
    )

    url = report_url(settings, "reports/drift/dt=2026-05-01/report.html")

    assert url == "http://ui.internal:8080/churnloop/reports/drift/dt%3D2026-05-01/report.html"
    assert in_this_ui(url) == "/churnloop/reports/drift/dt%3D2026-05-01/report.html"
