"""The canary's walk: start the candidate on the first share, look at the evidence at each
poke, judge a step once it has baked with enough traffic, then widen, promote or roll back.

`advance` is one look, made by the ``canary`` task of ``continuous_training`` (a sensor in
reschedule mode: no worker waits through a bake). Everything it needs between looks is in
the registry (`churnloop.canary.state`), so a restarted scheduler, worker or model server
loses nothing. `abort` and `finish` are the person's way out (``churnloop canary``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx

from churnloop import champion, registry
from churnloop.canary.evidence import Evidence, read_evidence
from churnloop.canary.guardrails import TRIP, WAIT, GuardrailResult, judge
from churnloop.canary.state import CanaryState, load_state, save_state, save_step
from churnloop.errors import DataError
from churnloop.redaction import describe_error
from churnloop.serving.client import ModelServerClient, ServerFailure
from churnloop.settings import Settings

log = logging.getLogger(__name__)


class CanaryRolledBack(DataError):
    """The candidate was rolled back (a guardrail tripped, too little traffic, the server
    could not load it, or a person aborted); ``@champion`` never moved."""


@dataclass(frozen=True)
class CanaryProgress:
    """One look's outcome: ``done`` once the candidate is ``@champion``."""

    done: bool
    version: int
    message: str

    def promotion(self) -> dict[str, Any]:
        """What the deploy step reads, as `champion.PromotionResult.to_dict` gives it."""
        return {"promoted": self.done, "version": self.version, "reason": self.message}


def advance(
    settings: Settings, version: int, steps: Sequence[float], bake_seconds: float
) -> CanaryProgress:
    """One look at the canary of ``version`` (``@candidate``): start it, keep baking,
    widen, promote, or roll back and raise `CanaryRolledBack` naming why."""
    current = registry.aliases(settings)
    if current.get(registry.CANDIDATE) != version:
        return _ended(settings, version, current)
    state = load_state(settings, version)
    with _server(settings) as server:
        if state is None:
            return _begin(settings, server, version, current, tuple(steps), bake_seconds)
        state = state.counted(_look(server, state))
        return _judge(settings, server, state, dt.datetime.now(dt.UTC))


@contextmanager
def _server(settings: Settings) -> Iterator[ModelServerClient]:
    timeout = settings.deploy_timeout_seconds
    with httpx.Client(base_url=settings.serving_url.rstrip("/"), timeout=timeout) as client:
        yield ModelServerClient(client, settings, timeout)


def _begin(
    settings: Settings,
    server: ModelServerClient,
    version: int,
    current: dict[str, int],
    steps: tuple[float, ...],
    bake_seconds: float,
) -> CanaryProgress:
    """Have the server load the candidate, count from here, route the first share to it."""
    try:
        server.ensure_running()
        server.serve_candidate(version)
        baseline = read_evidence(server.metrics_text(), current[registry.CHAMPION], version)
    except (ServerFailure, httpx.HTTPError) as failure:
        _roll_back(settings, server, version, f"the canary could not start: {failure}")
    now = dt.datetime.now(dt.UTC)
    state = CanaryState(
        version, current[registry.CHAMPION], steps, bake_seconds, 0, now, now, baseline
    )
    registry.set_canary_share(settings, version, state.share)
    save_state(settings, state)
    _reload(server)
    message = (
        f"canary of v{version} beside champion v{state.champion} started: {state.plan}, "
        f"{bake_seconds:g} s per step; now {state.share:.0%} of customers"
    )
    champion.record_canary_step(settings, version, message)
    return CanaryProgress(False, version, message)


def _look(server: ModelServerClient, state: CanaryState) -> Evidence | None:
    """The server's counts now, or None (logged) when it does not answer."""
    try:
        return read_evidence(server.metrics_text(), state.champion, state.version)
    except httpx.HTTPError as error:
        log.warning("the model server's metrics are unreadable: %s", describe_error(error))
        return None


def _judge(
    settings: Settings, server: ModelServerClient, state: CanaryState, now: dt.datetime
) -> CanaryProgress:
    """Keep baking, roll back, or pass the step (widen, or promote after the last)."""
    baked, where = (now - state.step_started).total_seconds(), state.where
    if baked < state.bake_seconds:
        save_state(settings, state)
        counts = _counts(state.step_evidence)
        return CanaryProgress(
            False, state.version, f"{where}: baked {baked:.0f}/{state.bake_seconds:g} s; {counts}"
        )
    results = _readings(settings, state)
    tripped = [result for result in results if result.status == TRIP]
    if tripped:
        names = ", ".join(result.name for result in tripped)
        _roll_back(settings, server, state.version, f"{where}: {names} tripped: {_said(tripped)}")
    waiting = [result for result in results if result.status == WAIT]
    if waiting:
        if baked >= state.bake_seconds * settings.canary_evidence_wait_factor:
            _roll_back(
                settings,
                server,
                state.version,
                f"{where}: too little traffic to judge after {baked:.0f} s: {_said(waiting)}",
            )
        save_state(settings, state)
        return CanaryProgress(False, state.version, f"{where}: {_said(waiting)}")
    return _pass_step(settings, server, state, results, now)


def _pass_step(
    settings: Settings,
    server: ModelServerClient,
    state: CanaryState,
    results: list[GuardrailResult],
    now: dt.datetime,
) -> CanaryProgress:
    message = f"{state.where} passed after {(now - state.step_started).total_seconds():.0f} s: " + (
        f"{_counts(state.step_evidence)}; {_said(results)}"
    )
    save_step(
        settings,
        state,
        {
            "share": state.share,
            "started": state.step_started.isoformat(),
            "ended": now.isoformat(),
            "guardrails": [result.to_dict() for result in results],
        },
    )
    champion.record_canary_step(settings, state.version, message)
    if state.last_step:
        reason = (
            f"canary passed {state.plan} ({state.bake_seconds:g} s per step), every guardrail held"
        )
        champion.promote_candidate(settings, state.version, reason)
        _reload(server)
        return CanaryProgress(True, state.version, reason)
    widened = state.next_step(now)
    registry.set_canary_share(settings, state.version, widened.share)
    save_state(settings, widened)
    _reload(server)
    return CanaryProgress(False, state.version, f"{message}; widened to {widened.share:.0%}")


def _roll_back(
    settings: Settings, server: ModelServerClient, version: int, reason: str
) -> NoReturn:
    champion.end_candidate(settings, version, f"canary rolled back: {reason}")
    _reload(server)
    raise CanaryRolledBack(f"v{version} rolled back, @champion unchanged: {reason}")


def _reload(server: ModelServerClient) -> None:
    """Tell the server now (servers without the admin token follow at their next poll)."""
    try:
        server.reload()
    except (ServerFailure, httpx.HTTPError) as error:
        log.warning("the model server did not reload: %s", error)


def _ended(settings: Settings, version: int, current: dict[str, int]) -> CanaryProgress:
    """``version`` is no longer ``@candidate``: promoted (by a person's `finish`) or not."""
    outcome = registry.model_version(settings, version).tags.get(registry.PROMOTION_TAG, "")
    if current.get(registry.CHAMPION) == version:
        return CanaryProgress(True, version, outcome)
    raise CanaryRolledBack(f"the canary of v{version} ended without promoting it: {outcome}")


def _readings(settings: Settings, state: CanaryState) -> list[GuardrailResult]:
    """Every guardrail on the step so far: the candidate's counts of the step against the
    champion's over the whole canary."""
    return judge(
        state.step_evidence.candidate, state.canary_evidence.champion, settings, len(state.steps)
    )


def _counts(evidence: Evidence) -> str:
    return (
        f"{evidence.candidate.requests} candidate and {evidence.champion.requests} "
        "champion requests"
    )


def _said(results: list[GuardrailResult]) -> str:
    return "; ".join(f"{result.name} {result.status}: {result.message}" for result in results)


# -- a person's way out ------------------------------------------------------------------


def abort(settings: Settings, reason: str) -> int:
    """Roll the running canary's candidate back now; the version it was."""
    version = _running(settings, reason)
    champion.end_candidate(settings, version, f"canary aborted by hand: {reason}")
    return version


def finish(settings: Settings, reason: str) -> int:
    """Promote the running canary's candidate now, whatever step it is at; its version."""
    version = _running(settings, reason)
    champion.promote_candidate(settings, version, f"canary finished by hand: {reason}")
    return version


def _running(settings: Settings, reason: str) -> int:
    if not reason.strip():
        raise ValueError("ending a canary by hand needs a reason (it is recorded)")
    version = registry.aliases(settings).get(registry.CANDIDATE)
    if version is None:
        raise DataError(f"model {settings.model_name!r} has no @candidate: no canary runs")
    return version


def describe(settings: Settings) -> str:
    """Where the running canary stands and what its guardrails read now, for a person."""
    version = registry.aliases(settings).get(registry.CANDIDATE)
    state = load_state(settings, version) if version is not None else None
    if state is None:
        return f"model {settings.model_name!r} has no canary running"
    results = _readings(settings, state)
    lines = [
        f"v{version} on canary beside champion v{state.champion}: {state.where} since "
        f"{state.step_started:%Y-%m-%d %H:%M:%S} UTC (bake {state.bake_seconds:g} s), "
        f"{_counts(state.step_evidence)} this step",
        *(f"  {result.name}: {result.status}: {result.message}" for result in results),
    ]
    return "\n".join(lines)
