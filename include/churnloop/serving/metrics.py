"""Prometheus metrics of the model server, in a registry of its own per app (so several
apps can live in one process); `MetricsMiddleware` counts and times every request by
matched route, model version and variant (champion, candidate; ``mixed`` for a batch both
answered), and scores are observed by version and variant (shadow too). Labels hold only
names the server chose (routes, model features, versions, variants), never a value from a
request.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import time
from collections.abc import Callable, Iterable

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from churnloop.serving.contract import REASONS, Counts, nonfinite_count
from churnloop.serving.routing import CHAMPION

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
SCORE_BUCKETS = tuple(step / 20 for step in range(1, 21))
NO_MODEL = "none"
MIXED = "mixed"
"""The variant label of a batch whose instances the champion and the candidate answered."""
SERVED_BY = "churnloop.served_by"
"""Key in a request's state (Starlette's ``scope["state"]``) of its (model_version, variant)
labels, noted by a scoring route (`note_served`) for `MetricsMiddleware`."""


class ServingMetrics:
    """Every metric the server exports, registered in ``self.registry``."""

    def __init__(self, max_training_age_days: int | None = None) -> None:
        self.registry = CollectorRegistry()
        self._add_traffic_metrics()
        self._add_model_metrics(max_training_age_days)
        self._add_data_metrics()

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
        """What each alias serves, how old its training data is, and how its loads went."""
        self.model_version = self._gauge(
            "churnloop_model_version", "Version served per alias (0: none)", "alias"
        )
        self.training_data_end = self._gauge(
            "churnloop_model_training_data_end_timestamp_seconds",
            "End of the served version's training data (UTC midnight after its last day), per "
            "alias: an alert rule compares its age with the staleness limit",
            "alias",
        )
        self.max_training_age = self._gauge(
            "churnloop_model_max_training_age_seconds",
            "The staleness limit (settings.drift_max_training_age_days), for alert rules",
        )
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
            "Scores (champion or shadow) that are NaN or infinite, by model version",
            "model_version",
        )

    def _gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        return Gauge(name, documentation, labels, registry=self.registry)

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
            self.nonfinite_predictions.labels(str(version))  # exported at 0 from the start
            if trained_until is not None:
                end = dt.datetime.combine(trained_until + dt.timedelta(days=1), dt.time(), dt.UTC)
                self.training_data_end.labels(alias).set(end.timestamp())
        else:
            self.errors.labels("model_load").inc()

    def record_unload(self, alias: str) -> None:
        """An alias no longer served (its alias deleted): version 0, and no training-data
        age left for the staleness rule to judge."""
        self.model_version.labels(alias).set(0)
        with contextlib.suppress(KeyError):  # never loaded, or removed already
            self.training_data_end.remove(alias)

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
            self.nonfinite_predictions.labels(str(version)).inc(nonfinite)
        histogram = self.scores.labels(str(version), variant)
        for value in values:
            histogram.observe(value)

    def record_dropped(self, rows: int) -> None:
        self.dropped_rows.inc(rows)
        self.errors.labels("prediction_log").inc()


def note_served(request: Request, served: Iterable[tuple[int, str]]) -> None:
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
