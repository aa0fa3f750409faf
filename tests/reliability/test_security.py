"""The model server's attack surface: admin endpoints need the token, request bodies are
size-limited before they are read, and no request can make the server load a model from
anywhere but the registry's aliases.

Payload validation (422 naming the field) and the admin token's three answers on
``/admin/reload`` are tested in tests/churnloop/serving/test_app.py; here every route is held
to them, so a new one cannot slip past.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from pydantic import SecretStr

from churnloop import registry, storage
from churnloop.features import definition
from churnloop.serving.app import create_app, serve_in_background
from churnloop.serving.deploy import json_rows
from churnloop.serving.limits import SETTING
from churnloop.settings import Settings
from tests.churnloop.serving_support import (
    FEATURES,
    GOOD,
    LAST_DAY,
    OTHER,
    install_template,
    point,
    served_version,
    template_home,
    wait_for,
)

TOKEN = "security-test-token"
PUBLIC = {
    ("POST", "/predict"),
    ("POST", "/explain"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/model"),
    ("GET", "/metrics"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/openapi.json"),
}
"""Every route anyone may call; anything else must be an admin route."""
LOCATION = re.compile(r"uri|url|path|file|dir|location|artifact|model|version|alias", re.I)


@pytest.fixture
def world(settings: Settings) -> Settings:
    install_template(settings, template_home())
    point(settings, registry.CHAMPION, GOOD)
    return settings.model_copy(
        update={"serving_admin_token": SecretStr(TOKEN), "serving_poll_seconds": 3600}
    )


def routes(app) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app.routes
        for method in getattr(route, "methods", None) or ()
        if method != "HEAD"
    }


def test_every_route_is_public_by_design_or_needs_the_admin_token(world):
    app = create_app(world)
    admin = routes(app) - PUBLIC
    assert admin, "no admin route found: the test would prove nothing"
    assert all(path.startswith("/admin/") for _, path in admin), admin

    with serve_in_background(app) as url:
        for method, path in sorted(admin):
            for headers, status in [({}, 401), ({"Authorization": "Bearer wrong"}, 403)]:
                response = httpx.request(method, f"{url}{path}", headers=headers, timeout=10)
                assert response.status_code == status, (method, path, response.text)


def feature_rows(settings: Settings) -> list[dict]:
    frame = storage.lake(settings).read_table(definition.DATASET, LAST_DAY).to_pandas()
    return json_rows(frame, FEATURES)


def test_a_full_batch_fits_the_default_body_limit(world):
    """The default limit refuses nothing the server would accept: a batch of
    ``serving_max_instances`` realistic rows, with room to spare."""
    rows = feature_rows(world)
    batch = [{"features": rows[i % len(rows)]} for i in range(world.serving_max_instances)]
    size = len(json.dumps({"instances": batch}))
    assert size * 1.5 < world.serving_max_body_bytes, (size, world.serving_max_body_bytes)


def test_request_bodies_over_the_limit_are_refused_with_413(world):
    settings = world.model_copy(update={"serving_max_body_bytes": 4096})
    row = feature_rows(settings)[0]
    small = {"features": row}
    large = {"instances": [small] * 10}
    assert len(json.dumps(small)) < 4096 < len(json.dumps(large))

    with serve_in_background(create_app(settings)) as url:
        wait_for(lambda: httpx.get(f"{url}/ready").status_code == 200, what="/ready")
        declared = httpx.post(f"{url}/predict", json=large, timeout=10)
        body = json.dumps(large).encode()
        chunks = (body[start : start + 1000] for start in range(0, len(body), 1000))
        streamed = httpx.post(
            f"{url}/predict",
            content=chunks,
            timeout=10,
            headers={"Content-Type": "application/json"},
        )
        accepted = httpx.post(f"{url}/predict", json=small, timeout=10)

    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["detail"] == f"request body over 4096 bytes ({SETTING})"
    assert "content-length" not in streamed.request.headers, "the second one was chunked"
    assert accepted.status_code == 200, accepted.text


def test_no_request_can_name_the_model_to_load(world, tmp_path):
    """The API takes no model location anywhere, extra body fields are refused, and a
    model named in a query or header is ignored: the server serves ``@champion``."""
    app = create_app(world)
    schema = app.openapi()
    inputs = set()
    for operations in schema["paths"].values():
        for operation in operations.values():
            inputs |= {parameter["name"] for parameter in operation.get("parameters", [])}
    for name, component in schema["components"]["schemas"].items():
        if name in {"PredictRequest", "Instance"}:
            inputs |= set(component["properties"])
    assert inputs == {"customer_id", "features", "instances"}, inputs
    assert not [name for name in inputs if LOCATION.search(name)]

    planted = tmp_path / "planted-model"
    planted.mkdir()
    location = {"model_uri": planted.as_uri(), "version": str(OTHER), "alias": "challenger"}
    row = feature_rows(world)[0]
    admin = {"Authorization": f"Bearer {TOKEN}"}
    with serve_in_background(app) as url:
        wait_for(lambda: httpx.get(f"{url}/ready").status_code == 200, what="/ready")
        in_body = httpx.post(f"{url}/predict", json={"features": row, **location}, timeout=10)
        in_query = httpx.post(f"{url}/predict", params=location, json={"features": row})
        in_headers = httpx.post(
            f"{url}/predict", json={"features": row}, headers={"X-Model-Uri": planted.as_uri()}
        )
        reload = httpx.post(f"{url}/admin/reload", params=location, headers=admin, timeout=30)
        state = httpx.get(f"{url}/model", timeout=10).json()
        version = served_version(url)

    assert in_body.status_code == 422
    assert {tuple(error["loc"]) for error in in_body.json()["detail"]} >= {
        ("body", "model_uri"),
        ("body", "version"),
        ("body", "alias"),
    }
    for response in (in_query, in_headers):
        assert response.status_code == 200 and response.json()["version"] == GOOD
    assert reload.status_code == 200 and reload.json()["serving"] == str(GOOD)
    assert version == GOOD and state["last_load_error"] is None
    assert str(planted) not in json.dumps(state)
