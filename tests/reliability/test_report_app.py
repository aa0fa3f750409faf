"""The report pages under hostile content and hostile names.

A report holds values a drop or a client chose (a quarantined string, a category sent to
``/predict``), so every page is untrusted: an HTML page runs in a sandbox with an opaque
origin (its scripts never reach the Airflow UI's origin, cookies, storage or API), any
other file runs no script at all, and nothing is sniffed. A name that leaves ``reports/``
(through a symlink too), holds a control character or is absurdly long is refused with a
4xx naming the report path only, never a 500 or the server's lake path.
"""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from churnloop import storage
from churnloop.orchestration.report_app import create_report_app, may_see_airflow
from churnloop.settings import Settings

HOSTILE_PAGE = b"<html><body><script>alert(document.cookie)</script><img src=x onerror=alert(1)>"
HOSTILE_SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
VALIDATED_DAY = "validated/customer_snapshots/dt=2026-03-04"
SECRETS = {f"{VALIDATED_DAY}/data.parquet": b"PAR1 rows", f"{VALIDATED_DAY}/rows.json": b"[1]"}
"""Files outside ``reports/``: neither their bytes nor their names may be served."""
ESCAPES = {"allow-same-origin", "allow-popups-to-escape-sandbox", "allow-top-navigation"}
"""Sandbox flags that would give a report's script a way back to the Airflow origin."""


@pytest.fixture
def lake(settings: Settings) -> storage.Store:
    lake = storage.lake(settings)
    lake.write_bytes("reports/data_docs/index.html", b"<html>docs home</html>")
    lake.write_bytes("reports/data_docs/validations/day.html", HOSTILE_PAGE)
    lake.write_bytes("reports/data_docs/static/images/logo.svg", HOSTILE_SVG)
    lake.write_bytes("reports/drift/dt=2026-03-04/report.html", HOSTILE_PAGE)
    lake.write_bytes("reports/drift/dt=2026-03-04/report.json", b'{"drift": true}')
    for relpath, data in SECRETS.items():
        lake.write_bytes(relpath, data)
    return lake


@pytest.fixture
def client(lake: storage.Store) -> TestClient:
    """A signed-in client that reports a server error as a 500 instead of raising it."""
    app = create_report_app()
    app.dependency_overrides[may_see_airflow] = lambda: None
    return TestClient(app, raise_server_exceptions=False)


def policy(response) -> dict[str, set[str]]:
    """The response's Content-Security-Policy as directive -> values."""
    header = response.headers.get("content-security-policy", "")
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name.lower(): set(values) for name, *values in directives}


def link(lake: storage.Store, relpath: str, target: str) -> None:
    """A symlink at ``relpath`` in the local lake pointing at ``target`` (``{lake}``: its root)."""
    path = lake.local_path(relpath)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target.format(lake=lake.local_path("")), path)


@pytest.mark.parametrize(
    "path",
    [
        "/reports/data_docs/validations/day.html",
        "/reports/drift/dt=2026-03-04/report.html",
        "/reports/data_docs/",
        "/reports/drift/",
    ],
)
def test_a_page_runs_its_scripts_in_an_opaque_origin(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    sandbox = policy(response)["sandbox"]
    assert "allow-scripts" in sandbox, "Evidently draws its charts with scripts"
    assert not sandbox & ESCAPES, f"a report's script could reach Airflow: {sandbox}"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/reports/data_docs/static/images/logo.svg",
        "/reports/drift/dt=2026-03-04/report.json",
        "/reports/nowhere.html",
        "/reports/drift/%00.html",
    ],
)
def test_anything_else_opened_directly_runs_no_script(client, path):
    response = client.get(path)
    directives = policy(response)
    assert directives["sandbox"] == set(), directives
    assert directives["default-src"] == {"'none'"}
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "name, target",
    [
        ("drift/passwd", "/etc/passwd"),
        ("drift/dt=2026-03-05/report.json", "{lake}/" + VALIDATED_DAY + "/rows.json"),
        ("validated", "{lake}/validated"),
        ("drift/dt=2026-03-06", "{lake}/" + VALIDATED_DAY),
        ("drift/loop", "{lake}/reports/drift/loop"),
    ],
)
def test_a_symlink_out_of_reports_is_not_followed(client, lake, name, target):
    link(lake, f"reports/{name}", target)
    paths = [name, f"{name}/", f"{name}/rows.json", f"{name}/customer_snapshots/", "", "drift/"]
    for path in paths:
        response = client.get(f"/reports/{path}")
        assert response.status_code in (200, 404), (path, response.status_code)
        assert b"root:" not in response.content, path
        assert not any(data in response.content for data in SECRETS.values()), path
        assert b"rows.json</a>" not in response.content, f"{path} lists a file outside reports/"
    assert client.get(f"/reports/{name}").status_code == 404


def test_a_symlink_within_reports_is_served(client, lake):
    link(lake, "reports/latest", "{lake}/reports/drift/dt=2026-03-04")
    response = client.get("/reports/latest/report.json")
    assert response.status_code == 200 and response.json() == {"drift": True}


@pytest.mark.parametrize(
    "name",
    [
        "%00",
        "drift/report%00.html",
        "drift/dt=2026-03-04/report.html%00.txt",
        "drift/%0a%0d.html",
        "x" * 5_000,
        "drift/" + "x" * 300 + ".html",
        "/".join(["d"] * 2_000),
        "drift/dt=2026-03-04/report.json/child",
        "drift/%ff%fe.html",
    ],
)
def test_a_hostile_name_is_refused_without_a_server_error(client, name):
    response = client.get(f"/reports/{name}")
    assert response.status_code in (400, 404), response.text[:300]
    assert len(response.content) < 1_000, "the refusal echoes the whole name"


def test_a_missing_report_names_only_its_report_path(client, lake):
    response = client.get("/reports/drift/<script>alert(1)<%2Fscript>.html")
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "reports/drift/" in detail
    assert str(lake.local_path("")) not in response.text, "the 404 shows the server's lake path"
    assert "<script>" not in detail
