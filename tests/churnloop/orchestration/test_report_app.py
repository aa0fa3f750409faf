import pytest
from fastapi.testclient import TestClient

from churnloop import storage
from churnloop.orchestration.report_app import create_report_app, may_see_airflow


@pytest.fixture
def client(settings):
    lake = storage.lake(settings)
    lake.write_bytes("reports/data_docs/index.html", b"<html>docs home</html>")
    lake.write_bytes("reports/drift/dt=2026-03-04/report.html", b"<html>drift</html>")
    lake.write_bytes("reports/drift/dt=2026-03-04/report.json", b'{"drift": true}')
    lake.write_bytes("validated/customer_snapshots/dt=2026-03-04/data.parquet", b"PAR1")
    app = create_report_app()
    app.dependency_overrides[may_see_airflow] = lambda: None  # signed in: see test_airflow_loop
    return TestClient(app)


def test_serves_a_report_with_its_media_type(client):
    response = client.get("/reports/drift/dt=2026-03-04/report.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"drift": True}


def test_folder_with_index_serves_the_index(client):
    response = client.get("/reports/data_docs/")
    assert response.status_code == 200 and "docs home" in response.text


def test_folder_without_index_lists_reports(client):
    response = client.get("/reports/drift/")
    assert response.status_code == 200
    assert 'href="/churnloop/reports/drift/dt=2026-03-04/report.html"' in response.text


def test_missing_report_names_where_it_looked(client, settings):
    response = client.get("/reports/drift/dt=1999-01-01/report.html")
    assert response.status_code == 404
    assert "reports/drift/dt=1999-01-01/report.html" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "../validated/customer_snapshots/dt=2026-03-04/data.parquet",
        "drift/../../validated",
        ".hidden",
    ],
)
def test_nothing_outside_reports_is_served(client, path):
    response = client.get(f"/reports/{path}")
    assert response.status_code in (400, 404)
    assert b"PAR1" not in response.content


def test_without_airflow_sign_in_nothing_is_served(settings):
    storage.lake(settings).write_bytes("reports/data_docs/index.html", b"<html>docs</html>")
    response = TestClient(create_report_app()).get("/reports/data_docs/index.html")
    assert response.status_code == 401
    assert b"docs" not in response.content


def test_data_docs_styles_and_scripts_are_public_to_any_origin_and_nothing_else_is(settings):
    """A sandboxed Data Docs page's own requests carry no session cookie and come from an
    opaque origin: its vendored styles, scripts and fonts are served without sign-in and
    with CORS; its pages, and anything reached through ``..``, still need sign-in."""
    lake = storage.lake(settings)
    lake.write_bytes("reports/data_docs/static/vendor/bootstrap.min.css", b".navbar{}")
    lake.write_bytes("reports/data_docs/validations/failed.html", b"<html>failing values</html>")
    anonymous = TestClient(create_report_app())

    style = anonymous.get("/reports/data_docs/static/vendor/bootstrap.min.css")
    assert style.status_code == 200 and style.text == ".navbar{}"
    assert style.headers["access-control-allow-origin"] == "*"
    for path in (
        "/reports/data_docs/validations/failed.html",
        "/reports/data_docs/static/../validations/failed.html",
        "/reports/data_docs/static/%2e%2e/validations/failed.html",
    ):
        response = anonymous.get(path)
        assert response.status_code in (400, 401, 404), path
        assert b"failing values" not in response.content, path
