"""``churnloop serve`` as a process of its own: its environment, and with several workers,
the same routing in each and their metrics added up at ``/metrics``."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from churnloop import registry
from churnloop.serving.app import METRICS_FOLDER_PREFIX
from churnloop.serving.metrics import written_files
from churnloop.serving.process import (
    PROMETHEUS_MULTIPROCESS_VARIABLES,
    running_model_server,
    server_environment,
)
from churnloop.serving.routing import variant_for
from tests.churnloop.serving_support import OTHER, last_day_features, point
from tests.polling import wait_for
from tests.service_support import free_port

SHARE = 0.5
START = "churnloop_server_start_time_seconds"


def test_importing_feast_sets_a_prometheus_multiprocess_folder():
    """Why the server's environment drops it: if Feast stops setting it, so can we."""
    import feast  # noqa: F401

    assert any(name in os.environ for name in PROMETHEUS_MULTIPROCESS_VARIABLES)


def test_the_server_gets_its_settings_and_not_feasts_prometheus_folder(settings):
    inherited = {name: "/tmp/feast_metrics_x" for name in PROMETHEUS_MULTIPROCESS_VARIABLES}
    environment = server_environment(settings, {**inherited, "PATH": "/usr/bin"})
    assert environment == {
        "PATH": "/usr/bin",
        "CHURNLOOP_HOME": str(settings.home),
        "CHURNLOOP_SERVING_HOST": settings.serving_host,
        "CHURNLOOP_SERVING_PORT": str(settings.serving_port),
    }


def test_two_workers_route_alike_and_their_metrics_add_up(world, monkeypatch, tmp_path):
    point(world, registry.CANDIDATE, OTHER)
    registry.set_canary_share(world, OTHER, SHARE)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))  # where the server makes its metrics folder
    monkeypatch.setenv("CHURNLOOP_SERVING_WORKERS", "2")
    customers = [int(customer) for customer in last_day_features(world).index]
    started = time.time()

    with running_model_server(world.model_copy(update={"serving_port": free_port()})) as url:
        (folder,) = temporary.glob(f"{METRICS_FOLDER_PREFIX}*")
        wait_for(
            lambda: both_workers_serve_the_canary(folder),
            timeout=180,
            what="both workers to load the candidate",
        )
        with ThreadPoolExecutor(8) as pool:
            answered = pool.map(lambda customer: variant(url, customer), customers)
            routed = dict(zip(customers, answered, strict=True))
        exposed = samples(httpx.get(f"{url}/metrics").text)
        workers = per_worker(folder)

    assert routed == {customer: variant_for(customer, OTHER, SHARE) for customer in customers}
    assert sum(predictions(exposed)) == len(customers)
    assert all(sample.name.startswith("churnloop_") for sample in exposed), "no Feast metrics"
    assert len(workers) == 2 and all(predictions(mine) for mine in workers.values())
    (start,) = [sample.value for sample in exposed if sample.name == START]
    assert started - 60 < start < time.time()
    noted = {sample.value for mine in workers.values() for sample in mine if sample.name == START}
    assert noted == {start}, "one start for the run, whichever worker noted it"
    assert not list(temporary.glob(f"{METRICS_FOLDER_PREFIX}*")), "removed when it stops"


def variant(url: str, customer: int) -> str:
    response = httpx.post(f"{url}/predict", json={"customer_id": customer}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["variant"]


def predictions(found: list[Sample]) -> list[float]:
    """The ``/predict`` request counts among ``found``."""
    return [
        sample.value
        for sample in found
        if sample.name == "churnloop_requests_total" and sample.labels["endpoint"] == "/predict"
    ]


def samples(text: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def per_worker(folder: Path) -> dict[str, list[Sample]]:
    """Each worker's own samples, read from its files (``<kind>_<pid>.db``) in ``folder``."""
    files: dict[str, list[str]] = defaultdict(list)
    for path in written_files(folder):
        files[Path(path).stem.rsplit("_", 1)[1]].append(path)
    return {
        pid: [sample for found in MultiProcessCollector.merge(paths) for sample in found.samples]
        for pid, paths in files.items()
    }


def both_workers_serve_the_canary(folder: Path) -> bool:
    """Two workers, each with the candidate loaded (the canary's share is read with it)."""
    loaded = [
        any(
            sample.name == "churnloop_model_version"
            and sample.labels == {"alias": "candidate"}
            and sample.value == OTHER
            for sample in mine
        )
        for mine in per_worker(folder).values()
    ]
    return loaded == [True, True]
