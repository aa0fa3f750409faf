"""The deploy step: the model server serves the new ``@champion`` (started here for a silent
loopback URL in the embedded profile), passes a smoke test, and serves what the registered
model predicts offline on the same rows; otherwise ``@champion`` rolls back to
``@previous-champion`` and `DeploymentError` says what failed. A failure is never retried.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import pandas as pd

from churnloop import champion, registry
from churnloop.errors import DataError
from churnloop.redaction import describe_error, redact
from churnloop.serving.client import ModelServerClient, ServerFailure
from churnloop.settings import Settings


class DeploymentError(DataError):
    """The version could not be deployed; the champion was rolled back (the message says)."""


@dataclass(frozen=True)
class DeployResult:
    """A verified deployment, in terms fit for a task log and XCom."""

    version: int
    server_url: str
    rows_checked: int
    max_skew: float
    seconds: float
    started_server_pid: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def deploy(
    settings: Settings,
    version: int,
    *,
    server_url: str | None = None,
    timeout_seconds: float | None = None,
) -> DeployResult:
    """Serve ``version`` (already ``@champion``) and verify it, or roll back and raise.

    The server reloads (admin token) or polls its way to the version within
    ``deploy_timeout_seconds``; then ``deploy_smoke_rows`` of the version's drift reference
    are scored and must match its offline predictions within ``deploy_skew_tolerance``.
    """
    started = time.monotonic()
    url = (server_url or settings.serving_url).rstrip("/")
    timeout = settings.deploy_timeout_seconds if timeout_seconds is None else timeout_seconds
    current = registry.aliases(settings)
    if current.get(registry.CHAMPION) != version:
        raise DeploymentError(
            f"@champion of {settings.model_name!r} is v{current.get(registry.CHAMPION)}, not "
            f"v{version}: deploy only runs after a promotion (nothing was changed)"
        )
    previous = current.get(registry.PREVIOUS_CHAMPION)
    with httpx.Client(base_url=url, timeout=timeout) as client:
        server = ModelServerClient(client, settings, timeout)
        try:
            pid = server.ensure_running()
            server.serve(version)
            rows, max_skew = _verify_predictions(settings, server, version)
        except (ServerFailure, httpx.HTTPError) as failure:
            raise _rolled_back(settings, server, url, version, previous, failure) from failure
    return DeployResult(version, redact(url), rows, max_skew, time.monotonic() - started, pid)


def json_rows(frame: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    """``frame``'s ``names`` as JSON-ready rows for ``/predict``, missing values as null."""
    return frame[names].astype(object).where(frame[names].notna(), None).to_dict("records")


def _verify_predictions(
    settings: Settings, server: ModelServerClient, version: int
) -> tuple[int, float]:
    """Smoke-test and skew-check ``version`` on its reference rows; (rows, max skew)."""
    from churnloop.training.challenger import reference_data
    from churnloop.training.metrics import score

    model = registry.load_model(settings, version)
    names = list(model.feature_names_in_)
    frame = reference_data(settings, version).head(settings.deploy_smoke_rows)
    rows = json_rows(frame, names)
    answers = server.predict(rows)
    _smoke_test(rows, answers, version)
    served = [item["probability"] for item in answers]
    offline = score(model, frame, f"v{version}").tolist()
    return len(rows), _max_skew(served, offline, settings.deploy_skew_tolerance)


def _smoke_test(rows: list[dict[str, Any]], answers: list[dict[str, Any]], version: int) -> None:
    """One answer per row, each from ``version`` and a probability in [0, 1]."""
    if len(answers) != len(rows):
        raise ServerFailure(f"the smoke test sent {len(rows)} rows and got {len(answers)} answers")
    wrong_version = {item["version"] for item in answers} - {version}
    if wrong_version:
        raise ServerFailure(
            f"the smoke test was answered by v{sorted(wrong_version)}, not v{version}"
        )
    invalid = [
        (index, item.get("probability", item.get("error")))
        for index, item in enumerate(answers)
        if not _is_probability(item.get("probability"))
    ]
    if invalid:
        raise ServerFailure(
            f"the smoke test got {len(invalid)} rows without a valid probability, "
            f"e.g. {invalid[:3]}"
        )


def _max_skew(served: list[float], offline: list[float], tolerance: float) -> float:
    """The largest gap between served and offline probabilities; over ``tolerance``, a
    failure naming the row."""
    gaps = [abs(a - b) for a, b in zip(served, offline, strict=True)]
    worst = max(range(len(gaps)), key=gaps.__getitem__)
    if gaps[worst] > tolerance:
        raise ServerFailure(
            f"training-serving skew: served and offline probabilities differ by up to "
            f"{gaps[worst]:.3g} (tolerance {tolerance:g}; row {worst}: "
            f"served {served[worst]:.6f}, offline {offline[worst]:.6f})"
        )
    return gaps[worst]


def _rolled_back(
    settings: Settings,
    server: ModelServerClient,
    url: str,
    version: int,
    previous: int | None,
    failure: Exception,
) -> DeploymentError:
    """Roll ``@champion`` back after ``failure`` and say where things stand."""
    reason = f"deploy of v{version} failed: {_described(failure, url)}"
    if previous is None or previous == version:
        return DeploymentError(
            f"{reason}; there is no previous champion to roll back to, so @champion stays on "
            f"v{version}: fix it or promote another version"
        )
    champion.rollback(settings, previous, reason)
    try:
        server.serve(previous)
    except (ServerFailure, httpx.HTTPError) as again:
        return DeploymentError(
            f"{reason}; @champion rolled back to v{previous}, but the server does not serve "
            f"it yet: {_described(again, url)}"
        )
    return DeploymentError(
        f"{reason}; @champion rolled back to v{previous}, which the server serves again"
    )


def _described(error: Exception, url: str) -> str:
    """What failed, in words; an HTTP error names the server, which httpx's own does not."""
    if isinstance(error, httpx.HTTPError):
        return f"the model server at {redact(url)} did not answer ({describe_error(error)})"
    return redact(str(error))


def _is_probability(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0
