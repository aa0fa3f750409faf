"""The monitoring stack against a real model server: Prometheus (the repository's config
and rules, `for:` cut to seconds) scrapes a server started here, alerts fire when the
server fails requests or a model load, Alertmanager calls the webhook with the token from
its file, and every Grafana panel's query returns data.

The server starts with ``@champion`` on a corrupt version (no model: every /predict is a
503), then the alias moves to a good one and it scores requests, some outside the data
contract and some invalid (422).
"""

from __future__ import annotations

import math
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from churnloop import registry, storage
from churnloop.features import definition
from churnloop.serving.app import create_app, serve_in_background
from churnloop.settings import Settings
from tests.churnloop.serving_support import (
    CORRUPT,
    FEATURES,
    GOOD,
    LAST_DAY,
    isolated_settings,
    point,
    served_version,
    template_home,
)
from tests.observability.live_stack import (
    WebhookReceiver,
    alertmanager_files,
    alertmanager_server,
    prometheus_files,
    prometheus_server,
)
from tests.observability.support import JOB, dashboard_queries, docs_url
from tests.polling import wait_for

pytestmark = pytest.mark.slow

WEBHOOK_TOKEN = "observability-test-webhook-token"  # a throwaway of this test's receiver
ALERT_TIMEOUT = 90
GRAFANA_VARIABLE = re.compile(r"\$__\w+")
QUERY_WINDOW = "10m"
"""What Grafana's ``$__rate_interval`` becomes here: the whole test's traffic."""


@dataclass
class Stack:
    prometheus: str
    webhook: WebhookReceiver

    def query(self, expression: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expression})
        assert answer.status_code == 200, f"{expression}: {answer.text}"
        return answer.json()["data"]["result"]

    def alerts(self) -> dict[str, dict[str, Any]]:
        """Prometheus' active alerts by name."""
        answer = httpx.get(f"{self.prometheus}/api/v1/alerts").json()
        return {alert["labels"]["alertname"]: alert for alert in answer["data"]["alerts"]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The serving tests' registry, ``@champion`` on the corrupt version."""
    home = tmp_path_factory.mktemp("observability") / "home"
    shutil.copytree(template_home(), home)
    settings = isolated_settings(home)
    point(settings, registry.CHAMPION, CORRUPT)
    return settings.model_copy(
        update={"serving_poll_seconds": 0.2, "prediction_log_flush_seconds": 0.5}
    )


@pytest.fixture(scope="module")
def stack(world: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("monitoring")
    with (
        serve_in_background(create_app(world)) as server,
        WebhookReceiver() as webhook,
        alertmanager_server(alertmanager_files(folder, webhook.url, WEBHOOK_TOKEN)) as alerts,
        prometheus_server(
            prometheus_files(folder, server.removeprefix("http://"), alerts.removeprefix("http://"))
        ) as prometheus,
    ):
        stack = Stack(prometheus, webhook)
        wait_for(lambda: stack.query(f'up{{job="{JOB}"}} == 1'), what="a first scrape")
        send_traffic(world, server)
        yield stack


def send_traffic(settings: Settings, server: str) -> None:
    """503s while no model is loaded, then scored rows (some out of contract) and 422s;
    each phase spread over several scrapes, so that rates see it."""
    rows = feature_rows(settings)
    assert spread(server, [{"features": row} for row in rows[:20]]) == {503}
    point(settings, registry.CHAMPION, GOOD)
    wait_for(lambda: served_version(server) == GOOD, what="the good champion")
    odd = [{**row, "age": 150} for row in rows[20:25]]
    invalid = [{"customer_id": "not a number"}] * 5
    answered = spread(server, [{"features": row} for row in rows[25:] + odd] + invalid)
    assert answered == {200, 422}


def spread(server: str, payloads: list[dict[str, Any]], seconds: float = 4) -> set[int]:
    """POST each payload to /predict over ``seconds``; the status codes answered."""
    statuses = set()
    with httpx.Client(base_url=server, timeout=10) as client:
        for payload in payloads:
            statuses.add(client.post("/predict", json=payload).status_code)
            time.sleep(seconds / len(payloads))
    return statuses


def feature_rows(settings: Settings, count: int = 60) -> list[dict[str, Any]]:
    frame = storage.lake(settings).read_table(definition.DATASET, LAST_DAY).to_pandas()
    rows = frame[FEATURES].head(count).astype(object)
    return rows.where(rows.notna(), None).to_dict(orient="records")


def wait_until(condition: Callable[[], Any], what: str) -> Any:
    return wait_for(condition, timeout=ALERT_TIMEOUT, what=what)


def test_errors_and_a_failed_model_load_fire_their_alerts(stack: Stack):
    def firing() -> dict[str, dict[str, Any]]:
        alerts = stack.alerts()
        wanted = ("ChurnloopHighErrorRate", "ChurnloopModelLoadFailed")
        return alerts if all(alerts.get(n, {}).get("state") == "firing" for n in wanted) else {}

    alerts = wait_until(firing, "the error-rate and model-load alerts to fire")

    errors = alerts["ChurnloopHighErrorRate"]
    assert errors["labels"]["severity"] == "critical"
    assert errors["labels"]["job"] == JOB
    assert float(errors["value"]) > 0.05
    assert alerts["ChurnloopModelLoadFailed"]["labels"]["alias"] == registry.CHAMPION
    quiet = {"ChurnloopModelServerDown", "ChurnloopNonFinitePredictions"} & set(alerts)
    assert not quiet, f"alerts without cause: {sorted(quiet)}"


def test_alertmanager_pages_critical_alerts_through_the_webhook_with_its_token(stack: Stack):
    def paged() -> list[dict[str, Any]]:
        return [
            alert
            for _, body in stack.webhook.received
            for alert in body["alerts"]
            if alert["labels"]["alertname"] == "ChurnloopHighErrorRate"
        ]

    alert = wait_until(paged, "the error-rate alert at the webhook")[0]

    assert alert["status"] == "firing"
    runbook = f"{docs_url()}/observability.md#churnloophigherrorrate"
    assert alert["annotations"]["runbook_url"] == runbook
    assert {header for header, _ in stack.webhook.received} == {f"Bearer {WEBHOOK_TOKEN}"}
    severities = {
        alert["labels"]["severity"]
        for _, body in stack.webhook.received
        for alert in body["alerts"]
    }
    assert severities == {"critical"}, "only critical alerts page"


@pytest.mark.parametrize(
    ("where", "expression"), dashboard_queries(), ids=[where for where, _ in dashboard_queries()]
)
def test_every_dashboard_panel_shows_data(stack: Stack, where: str, expression: str):
    expression = GRAFANA_VARIABLE.sub(QUERY_WINDOW, expression)

    def finite_values() -> list[float]:
        values = [float(series["value"][1]) for series in stack.query(expression)]
        return [value for value in values if math.isfinite(value)]

    wait_until(finite_values, f"data for {where}: {expression}")
