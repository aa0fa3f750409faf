"""The model server's attack surface: admin endpoints need the token (any token, ASCII or
not, is compared as bytes), request bodies are size-limited before they are read and
batches capped before they are validated, feature values must be finite numbers or the
contract's categories, ids int64, credentials never shown, and no request can make the
server load a model from anywhere but the registry's aliases.

Payload validation (422 naming the field) and the admin token's three answers on
``/admin/reload`` are tested in tests/churnloop/serving/test_app.py; here every route is held
to them, so a new one cannot slip past.
"""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest
from pydantic import SecretStr
from starlette.requests import Request

from churnloop import registry, storage
from churnloop.features import definition
from churnloop.serving.app import create_app, serve_in_background
from churnloop.serving.deploy import json_rows
from churnloop.serving.limits import INSTANCE_SETTINGS, SETTING, body_limit
from churnloop.serving.process import LOG, running_model_server
from churnloop.settings import Settings
from tests.churnloop.serving_support import (
    FEATURES,
    GOOD,
    LAST_DAY,
    OTHER,
    install_template,
    metric,
    point,
    served_version,
    template_home,
)
from tests.polling import wait_for
from tests.service_support import free_port

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
    assert size * 1.5 < body_limit(world).max_bytes, (size, body_limit(world))


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


# -- hostile payloads -----------------------------------------------------------------------

HOSTILE_CATEGORY = "</script><script>alert(1)</script>"
PLANTED_PASSWORD = "pl4nted-pw"
"""A made-up credential the registry URI carries; it must show nowhere."""
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def server(world: Settings):
    """A server on ``world`` serving its champion: ``(url, ModelServer)``."""
    app = create_app(world)
    with serve_in_background(app) as url:
        wait_for(lambda: httpx.get(f"{url}/ready").status_code == 200, what="/ready")
        yield url, app.state.server


def error_at(response: httpx.Response, loc: list) -> dict:
    """The 422's error at ``loc``; fails naming what the response held instead."""
    assert response.status_code == 422, response.text[:500]
    errors = response.json()["detail"]
    found = [error for error in errors if error["loc"] == loc]
    assert found, [error["loc"] for error in errors]
    return found[0]


def nothing_logged(server) -> bool:
    return server.prediction_log.pending_rows == server.prediction_log.written_rows == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("plan", "enterprise", "'basic', 'standard' or 'premium'"),
        ("region", HOSTILE_CATEGORY, "'north', 'south', 'east' or 'west'"),
        ("contract", "x" * 1_000_000, "'monthly' or 'annual'"),
        ("age", "y" * 1_000_000, "at most"),
    ],
)
def test_categories_outside_the_contract_and_long_strings_are_refused(
    world, server, field, value, message
):
    """Nothing outside the data contract is scored or logged (where the drift report would
    show it), and a long string is not echoed back whole."""
    url, state = server
    first, second = feature_rows(world)[:2]
    row = first | {field: value}

    single = httpx.post(f"{url}/predict", json={"features": row}, timeout=30)
    batch = httpx.post(
        f"{url}/predict",
        json={"instances": [{"features": second}, {"features": row}]},
        timeout=30,
    )

    assert message in error_at(single, ["body", "features", field])["msg"]
    assert message in error_at(batch, ["body", "instances", 1, "features", field])["msg"]
    for response in (single, batch):
        assert len(response.content) < 5_000, "the long input was echoed whole"
    assert nothing_logged(state)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "9" * 400])
def test_non_finite_numbers_are_refused_naming_the_field(world, server, literal):
    """Python's JSON parser takes NaN and Infinity, reads 1e400 as infinity and a 400-digit
    integer as an int no float holds; none is a number the model or the drift check takes."""
    url, state = server
    row = feature_rows(world)[0] | {"monthly_charges": "__VALUE__"}
    body = json.dumps({"features": row}).replace('"__VALUE__"', literal)

    response = httpx.post(f"{url}/predict", content=body, headers=JSON)

    error = error_at(response, ["body", "features", "monthly_charges"])
    assert "finite number" in error["msg"]
    assert nothing_logged(state)


@pytest.mark.parametrize("customer", [2**63, 10**30, -(2**63) - 1])
def test_ids_outside_int64_are_a_422_for_that_instance(server, caplog, customer):
    """Not a 503 blaming the online store, nor an ERROR in its log or its error count."""
    url, _ = server

    single = httpx.post(f"{url}/predict", json={"customer_id": customer})
    batch = httpx.post(
        f"{url}/predict", json={"instances": [{"customer_id": 1}, {"customer_id": customer}]}
    )
    text = httpx.get(f"{url}/metrics").text

    assert "equal to" in error_at(single, ["body", "customer_id"])["msg"]
    assert "equal to" in error_at(batch, ["body", "instances", 1, "customer_id"])["msg"]
    assert not metric(text, "churnloop_errors_total", kind="online_store")
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("token", ["tökén".encode(), "Bearer-😀".encode(), b"\xff\xfe"])
def test_a_non_ascii_bearer_token_is_refused_like_any_wrong_one(world, token):
    with serve_in_background(create_app(world)) as url:
        response = httpx.post(
            f"{url}/admin/reload", headers={"Authorization": b"Bearer " + token}, timeout=10
        )

    assert response.status_code == 403, response.text
    assert response.json()["detail"] == "wrong admin token"


def test_an_oversized_batch_is_refused_before_it_is_parsed(world, monkeypatch):
    """170,000 ids fit the old 4 MiB limit; the limit derived from the instance cap refuses
    them from the declared length or the bytes received, and no JSON is parsed."""
    parsed: list[int] = []
    parse = Request.json

    async def counted_parse(self: Request):
        parsed.append(len(await self.body()))
        return await parse(self)

    monkeypatch.setattr(Request, "json", counted_parse)
    instances = [{"customer_id": 100_000 + index} for index in range(170_000)]
    body = json.dumps({"instances": instances}, separators=(",", ":")).encode()
    assert body_limit(world).max_bytes < len(body) < world.serving_max_body_bytes

    with serve_in_background(create_app(world)) as url:
        declared = httpx.post(f"{url}/predict", content=body, headers=JSON, timeout=30)
        chunks = (body[start : start + 65_536] for start in range(0, len(body), 65_536))
        streamed = httpx.post(f"{url}/predict", content=chunks, headers=JSON, timeout=30)

    for response in (declared, streamed):
        assert response.status_code == 413, response.text[:300]
        assert INSTANCE_SETTINGS in response.json()["detail"]
    assert parsed == [], "a refused body was parsed"


def test_a_batch_over_the_cap_is_refused_before_its_instances_are_validated(world):
    """Under the body limit, a batch of 20,000 invalid ids gets one error, the cap's: its
    instances were never validated one by one."""
    body = {"instances": [{"customer_id": "not an id"}] * 20_000}
    assert len(json.dumps(body)) < body_limit(world).max_bytes

    with serve_in_background(create_app(world)) as url:
        response = httpx.post(f"{url}/predict", json=body, timeout=30)

    assert response.status_code == 422
    errors = response.json()["detail"]
    assert len(errors) == 1 and errors[0]["loc"] == ["body", "instances"], errors[:3]
    assert "at most 1000 instances" in errors[0]["msg"]


def unreachable_registry_with_password() -> str:
    """A tracking URI with credentials where nothing listens."""
    return f"http://churnloop:{PLANTED_PASSWORD}@127.0.0.1:{free_port()}/"


def test_get_model_and_admin_reload_hide_the_registry_password(settings, monkeypatch, caplog):
    """The registry is unreachable at a URI with credentials: its errors say so, masked."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    update = {
        "mlflow_tracking_uri": unreachable_registry_with_password(),
        "serving_admin_token": SecretStr(TOKEN),
        "serving_poll_seconds": 3600,
    }
    with serve_in_background(create_app(settings.model_copy(update=update))) as url:
        wait_for(
            lambda: httpx.get(f"{url}/model").json()["last_check_error"],
            timeout=60,
            what="the registry check to fail",
        )
        state = httpx.get(f"{url}/model")
        admin = {"Authorization": f"Bearer {TOKEN}"}
        reload = httpx.post(f"{url}/admin/reload", headers=admin, timeout=60)
        predict = httpx.post(f"{url}/predict", json={"customer_id": 1})

    assert "churnloop:***@127.0.0.1" in state.json()["last_check_error"]
    assert reload.status_code == 503 and "churnloop:***@" in reload.json()["detail"]
    for text in (state.text, reload.text, predict.text, caplog.text):
        assert PLANTED_PASSWORD not in text


def test_the_server_log_masks_credentials(settings, monkeypatch):
    """``churnloop serve`` formats every log line through the redaction, tracebacks and
    library messages included."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("CHURNLOOP_MLFLOW_TRACKING_URI", unreachable_registry_with_password())
    served = settings.model_copy(update={"serving_port": free_port()})

    with running_model_server(served) as url:
        wait_for(
            lambda: httpx.get(f"{url}/model").json()["last_check_error"],
            timeout=60,
            what="the registry check to fail",
        )

    log = (settings.home / LOG).read_text()
    assert "cannot read the registry's aliases" in log and "churnloop:***@127.0.0.1" in log
    assert PLANTED_PASSWORD not in log


@pytest.mark.parametrize(
    "body",
    [
        '{"customer_id": [NaN]}',
        json.dumps({"instances": {"x": "y" * 1_000_000}}),
        json.dumps({"z" * 100_000: 1}),
    ],
    ids=["nan-in-a-list", "megabyte-in-a-dict", "long-field-name"],
)
def test_a_422_echoes_only_a_short_text_of_what_was_sent(world, body):
    """Whatever the input's shape, the reply stays small and valid JSON (never a 500)."""
    with serve_in_background(create_app(world)) as url:
        response = httpx.post(f"{url}/predict", content=body, headers=JSON)

    assert response.status_code == 422, response.text[:300]
    assert len(response.content) < 1_000 and response.json()["detail"]
