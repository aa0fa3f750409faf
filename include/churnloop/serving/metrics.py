"""Prometheus metrics of the model server, in a registry of its own per app (so several
apps can live in one process); `MetricsMiddleware` counts and times every request by
matched route, model version and variant (champion, candidate; ``mixed`` for a batch both
answered), and scores are observed by version and variant (shadow too), with how often a
shadow's label agrees with the served one. Labels hold only names the server chose
(routes, model features, versions, variants), never a value from a request.

With several uvicorn workers (``churnloop serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before
it spawns them), each worker keeps its values in prometheus_client's multiprocess files and
``GET /metrics`` answers their sum, whichever worker is asked: each gauge names how its
workers' values combine. ``churnloop_server_start_time_seconds`` is the run's start, the
same in every worker: the canary controller tells a restart (counters from zero) by it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.values import MutexValue, ValueClass
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from churnloop.serving.contract import REASONS, Counts, nonfinite_count
from churnloop.serving.routing import CANDIDATE, CHAMPION, SHADOW

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
SCORE_BUCKETS = tuple(step / 20 for step in range(1, 21))
NO_MODEL = "none"
MIXED = "mixed"
"""The variant label of a batch whose instances the champion and the candidate answered."""
SERVED_BY = "churnloop.served_by"
"""Key in a request's state (Starlette's ``scope["state"]``) of its (model_version, variant)
labels, noted by a scoring route (`note_served`) for `MetricsMiddleware`."""
PREFIX = "churnloop_"
"""Of every metric name the server exports."""
SERVER_START_VARIABLE = "CHURNLOOP_SERVER_START_TIME"
"""The unix time ``churnloop serve`` started, noted by it for every worker it spawns (not a
setting): the workers export one `churnloop_server_start_time_seconds`."""
VARIANT_OF_ALIAS = {"champion": CHAMPION, "candidate": CANDIDATE, "challenger": SHADOW}
"""The variant a loaded alias's scores are counted under, by the registry's alias names (a
challenger only shadows)."""
ServedBy = tuple[int, str]
"""The (model version, variant) that answered."""
GaugeMode = Literal["min", "max", "livemostrecent"]
"""How several workers' values of a gauge combine (prometheus_client's multiprocess mode)."""


class ServingMetrics:
    """Every metric the server exports, registered in ``self.registry`` (this process's
    values); `exposition` is what ``GET /metrics`` answers."""

    def __init__(self, max_training_age_days: int | None = None) -> None:
        self.registry = CollectorRegistry()
        self._add_traffic_metrics()
        self._add_model_metrics(max_training_age_days)
        self._add_data_metrics()
        self.shared_folder = shared_folder()
        """The workers' multiprocess folder, None when values live in this process only."""
        self._exported = self.registry
        if self.shared_folder is not None:
            self._exported = CollectorRegistry()
            self._exported.register(WorkersMetrics(self.shared_folder))

    def _add_traffic_metrics(self) -> None:
        """Requests, their latency, the scores served and the failures, by kind."""
        self.requests = self._counter(
            "churnloop_requests",
            "HTTP requests by route, status, and the model version and variant that answered "
            "(the champion's for routes that score nothing)",
            "endpoint",
            "status",
            "model_version",
            "variant",
        )
        self.latency = self._histogram(
            "churnloop_request_duration_seconds",
            "Time to answer a request, by route, model version and variant",
            LATENCY_BUCKETS,
            "endpoint",
            "model_version",
            "variant",
        )
        self.scores = self._histogram(
            "churnloop_prediction_score",
            "Churn probabilities served (champion, candidate) or shadowed (shadow)",
            SCORE_BUCKETS,
            "model_version",
            "variant",
        )
        self.errors = self._counter(
            "churnloop_errors",
            "Failures by kind (validation, unknown_customer, online_store, "
            "model, shadow, model_load, prediction_log)",
            "kind",
        )

    def _add_model_metrics(self, max_training_age_days: int | None) -> None:
        """What each alias serves, how old its training data is, how its loads went, and
        when the server started.

        Each worker follows the aliases on its own: the version and training-data end are
        the running workers' most recent (a rollback to a lower version shows at once, as
        "max" would not); the limit is one setting and the start one value for every
        worker, so "max" and "min" only collapse copies (the default "all" would add a
        ``pid`` label).
        """
        self.model_version = self._gauge(
            "churnloop_model_version",
            "Version served per alias (0: none)",
            "alias",
            mode="livemostrecent",
        )
        self.training_data_end = self._gauge(
            "churnloop_model_training_data_end_timestamp_seconds",
            "End of the served version's training data (UTC midnight after its last day), per "
            "alias (NaN once the alias is gone): an alert rule compares its age with the "
            "staleness limit",
            "alias",
            mode="livemostrecent",
        )
        self.max_training_age = self._gauge(
            "churnloop_model_max_training_age_seconds",
            "The staleness limit (settings.drift_max_training_age_days), for alert rules",
            mode="max",
        )
        self.server_start_time = self._gauge(
            "churnloop_server_start_time_seconds",
            "Unix time this server run started, one value for all its workers: a new value "
            "means a restart, whose counters began again from zero",
            mode="min",
        )
        self.server_start_time.set(run_start_time())
        if max_training_age_days is not None:
            self.max_training_age.set(max_training_age_days * 86_400)
        self.model_loads = self._counter(
            "churnloop_model_loads", "Model load attempts by alias and outcome", "alias", "outcome"
        )

    def _add_data_metrics(self) -> None:
        """The prediction log's rows, inputs outside the contract, non-finite scores."""
        self.logged_rows = self._counter(
            "churnloop_prediction_log_rows", "Prediction log rows written to the lake"
        )
        self.dropped_rows = self._counter(
            "churnloop_prediction_log_dropped_rows", "Prediction log rows dropped unwritten"
        )
        self.out_of_contract = self._counter(
            "churnloop_input_out_of_contract",
            f"Feature values of scored rows outside the data contract, by model feature and "
            f"reason ({', '.join(REASONS)})",
            "feature",
            "reason",
        )
        self.nonfinite_predictions = self._counter(
            "churnloop_nonfinite_predictions",
            "Scores that are NaN or infinite, by model version and variant (champion, "
            "candidate, shadow)",
            "model_version",
            "variant",
        )
        self.shadow_agreement = self._counter(
            "churnloop_shadow_agreement",
            "Shadow-scored instances whose two scores are finite, by the version and variant "
            "that answered, the shadow's version, and whether their labels agree or disagree",
            "model_version",
            "variant",
            "shadow_version",
            "agreement",
        )

    def _gauge(self, name: str, documentation: str, *labels: str, mode: GaugeMode) -> Gauge:
        return Gauge(name, documentation, labels, registry=self.registry, multiprocess_mode=mode)

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def _histogram(
        self, name: str, documentation: str, buckets: tuple[float, ...], *labels: str
    ) -> Histogram:
        return Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)

    def record_load(
        self, alias: str, version: int, error: str | None, trained_until: dt.date | None = None
    ) -> None:
        self.model_loads.labels(alias, "failure" if error else "success").inc()
        if error is None:
            self.model_version.labels(alias).set(version)
            variant = VARIANT_OF_ALIAS[alias]
            self.nonfinite_predictions.labels(str(version), variant)  # exported at 0 at once
            if trained_until is not None:
                end = dt.datetime.combine(trained_until + dt.timedelta(days=1), dt.time(), dt.UTC)
                self.training_data_end.labels(alias).set(end.timestamp())
        else:
            self.errors.labels("model_load").inc()

    def record_unload(self, alias: str) -> None:
        """An alias no longer served (its alias deleted): version 0, and a training-data end
        of NaN, whose age no staleness rule judges (``time() - NaN > limit`` never holds).
        NaN rather than removing the series: multiprocess mode cannot remove one."""
        self.model_version.labels(alias).set(0)
        self.training_data_end.labels(alias).set(math.nan)

    def record_inputs(self, counts: Counts) -> None:
        """Count a batch's out-of-contract values (`InputContract` counts)."""
        for (feature, reason), count in counts.items():
            self.out_of_contract.labels(feature, reason).inc(count)

    def record_scores(self, version: int, variant: str, scores: np.ndarray) -> None:
        """Observe a batch's scores; a NaN or infinite one is counted, not observed (it
        would turn the histogram's sum into NaN for good)."""
        values = scores.tolist()
        nonfinite = nonfinite_count(scores)
        if nonfinite:
            values = [value for value in values if math.isfinite(value)]
            self.nonfinite_predictions.labels(str(version), variant).inc(nonfinite)
        histogram = self.scores.labels(str(version), variant)
        for value in values:
            histogram.observe(value)

    def record_agreement(
        self,
        served: ServedBy,
        shadow_version: int,
        scores: np.ndarray,
        shadow_scores: np.ndarray,
        threshold: float,
    ) -> None:
        """Count the instances a shadow scored whose two scores are both finite, by whether
        their labels (score >= ``threshold``) agree."""
        finite = np.isfinite(scores) & np.isfinite(shadow_scores)
        agree = int(((scores >= threshold) == (shadow_scores >= threshold))[finite].sum())
        labels = (str(served[0]), served[1], str(shadow_version))
        self.shadow_agreement.labels(*labels, "agree").inc(agree)
        self.shadow_agreement.labels(*labels, "disagree").inc(int(finite.sum()) - agree)

    def record_dropped(self, rows: int) -> None:
        self.dropped_rows.inc(rows)
        self.errors.labels("prediction_log").inc()

    def exposition(self) -> bytes:
        """What ``GET /metrics`` answers: with several workers, their values combined."""
        return generate_latest(self._exported)

    def close(self) -> None:
        """A worker's end: its ``live*`` gauges leave the combined values."""
        if self.shared_folder is not None:
            multiprocess.mark_process_dead(os.getpid(), self.shared_folder)


class WorkersMetrics(Collector):
    """The server's metrics summed over the workers' files in ``folder``; not the other
    metrics there (Feast's, written by the same processes), which one worker alone would
    not export either."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def collect(self) -> Iterable[Metric]:
        merged = multiprocess.MultiProcessCollector.merge(written_files(self.folder))
        return [found for found in merged if found.name.startswith(PREFIX)]


def written_files(folder: Path) -> list[str]:
    """The workers' value files in ``folder``, but not one a worker is creating this moment
    (still empty: prometheus_client's reader fails on it) nor one removed meanwhile."""
    files = []
    for path in folder.glob("*.db"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size > 0:
                files.append(str(path))
    return files


def shared_folder() -> str | None:
    """The folder where every worker keeps its metric values, or None when they live in
    this process's memory: prometheus_client chose when first imported, by whether
    ``PROMETHEUS_MULTIPROC_DIR`` was set (a variable set later, as importing Feast does,
    changes nothing)."""
    if ValueClass is MutexValue:
        return None
    return os.environ["PROMETHEUS_MULTIPROC_DIR"]


def run_start_time() -> float:
    """When this server run started: as ``churnloop serve`` noted it for its workers, else
    now (an app served otherwise, as in the tests)."""
    noted = os.environ.get(SERVER_START_VARIABLE)
    return float(noted) if noted else time.time()


def note_served(request: Request, served: Iterable[ServedBy]) -> None:
    """Label ``request``'s metrics with the (version, variant) pairs that answer it: one pair
    as it is; a batch of both variants ``mixed``, under their versions joined by ``+``."""
    pairs = sorted(set(served))
    if len(pairs) == 1:
        labels = (str(pairs[0][0]), pairs[0][1])
    else:
        labels = ("+".join(str(version) for version, _ in pairs), MIXED)
    request.scope.setdefault("state", {})[SERVED_BY] = labels


class MetricsMiddleware:
    """Counts and times every request, under the labels its route noted (`note_served`),
    else under the champion serving right now (``version``).

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs far more per request.
    """

    def __init__(self, app: ASGIApp, metrics: ServingMetrics, version: Callable[[], str]) -> None:
        self.app = app
        self.metrics = metrics
        self.version = version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        state = scope.setdefault("state", {})

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            version, variant = state.get(SERVED_BY) or (self.version(), CHAMPION)
            self.metrics.requests.labels(endpoint, str(status), version, variant).inc()
            elapsed = time.perf_counter() - started
            self.metrics.latency.labels(endpoint, version, variant).observe(elapsed)
