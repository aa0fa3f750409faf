"""Load: the model server answers a fixed request rate for 30 s without one error.

The server runs as in the other serving tests (uvicorn in a thread of this process,
the serving tests' template registry); the load comes from a separate process,
``load_generator.py``, open-loop at ``RATE`` requests per second, each a single instance
with explicit features. The latency histogram is printed (``pytest -s``) and written
beside the test's home; docs/reliability.md records a run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from churnloop import registry, storage
from churnloop.features import definition
from churnloop.serving.app import create_app, serve_in_background
from churnloop.serving.deploy import json_rows
from churnloop.settings import Settings
from tests.churnloop.serving_support import (
    FEATURES,
    GOOD,
    LAST_DAY,
    install_template,
    point,
    template_home,
)
from tests.polling import wait_for

pytestmark = pytest.mark.slow

RATE = 100
SECONDS = 30
P99_BOUND_MS = 1000
"""Loose, for a shared machine; a server stalled for seconds (as while Feast is imported
beside it) fails it."""
GENERATOR = Path(__file__).with_name("load_generator.py")


def request_bodies(settings: Settings) -> list[dict]:
    """One body per customer of the last feature day: ``{"features": {...}}``."""
    frame = storage.lake(settings).read_table(definition.DATASET, LAST_DAY).to_pandas()
    return [{"features": row} for row in json_rows(frame, FEATURES)]


def served_predictions(url: str) -> dict[str, float]:
    """The server's own count of /predict answers, by status."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "churnloop_requests"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["endpoint"] == "/predict"
    }


def test_the_model_server_sustains_a_fixed_rate_without_errors(settings, tmp_path):
    install_template(settings, template_home())
    point(settings, registry.CHAMPION, GOOD)
    bodies = tmp_path / "bodies.json"
    bodies.write_text(json.dumps(request_bodies(settings)))
    report = tmp_path / "load.json"

    with serve_in_background(create_app(settings)) as url:
        wait_for(lambda: httpx.get(f"{url}/ready").status_code == 200, what="/ready")
        command = [
            sys.executable,
            str(GENERATOR),
            "--url",
            url,
            "--bodies",
            str(bodies),
            "--rate",
            str(RATE),
            "--seconds",
            str(SECONDS),
            "--out",
            str(report),
        ]
        run = subprocess.run(command, capture_output=True, text=True, timeout=SECONDS + 60)
        counted = served_predictions(url)

    assert run.returncode == 0, run.stderr
    print(run.stdout)
    result = json.loads(report.read_text())
    assert result["errors"] == 0, result["error_examples"]
    assert result["ok"] == result["requests"] == RATE * SECONDS
    assert result["achieved_rate"] >= 0.98 * RATE, "the generator fell behind its schedule"
    assert counted == {"200": RATE * SECONDS}, "the server's metrics disagree"
    assert result["latency_ms"]["p99"] < P99_BOUND_MS, "requests queued for seconds"
