"""Moving ``@champion`` and ``@candidate``: promotion after the gate, the canary's start and
end, rollback, and the champion history.

Only `promote`, `promote_candidate` and `rollback` move ``@champion``; the previous champion
stays reachable as ``@previous-champion``. With a canary, `promote` makes a blessed version
``@candidate`` (serving nobody yet) and the canary (`churnloop.canary`) widens its share,
then calls `promote_candidate` or `end_candidate`. Each move and each canary step records
an event as a JSON tag of the registered model (for code: `champion_history` reads the
champion's periods, `history_events` every event) and rewrites its description, the same
history in words, newest first (for people in MLflow's UI). `promote` never lets a backfill
replace a champion trained on newer data, and a retry finishes a promotion the registry
interrupted.
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mlflow.exceptions import MlflowException

from churnloop.errors import DataError
from churnloop.registry import (
    CANDIDATE,
    CHAMPION,
    FORCED_REASON_TAG,
    HISTORY_TAG_PREFIX,
    PREVIOUS_CHAMPION,
    PROMOTION_TAG,
    aliases,
    clear_canary_share,
    connect,
    model_version,
    set_canary_share,
    training_data_end,
    within_description_limit,
)
from churnloop.settings import Settings

CHAMPION_MOVES = ("promotion", "forced", "rollback", "canary")
"""History kinds that move ``@champion`` (``canary``: a candidate that passed its canary)."""
CANDIDATE_EVENTS = ("candidate", "canary-step", "canary-rollback")
"""History kinds of a canary that leave ``@champion`` where it is."""


@dataclass(frozen=True)
class PromotionResult:
    """What `promote` did, and why, in words fit for a task log. ``candidate``: the version
    became ``@candidate`` for a canary instead of ``@champion``."""

    promoted: bool
    version: int
    champion: int | None
    previous_champion: int | None
    reason: str
    candidate: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        verb = "promoted" if self.promoted else "not promoted"
        if self.candidate:
            verb = f"made @{CANDIDATE} for a canary beside champion v{self.champion}"
        return f"v{self.version} {verb}: {self.reason}"


@dataclass(frozen=True)
class HistoryEntry:
    """One period of one version as champion; ``until`` is None for the current one."""

    version: int
    since: dt.datetime
    until: dt.datetime | None
    kind: str
    reason: str
    replaced: int | None
    logical_date: str | None

    def describe(self) -> str:
        if self.kind in CANDIDATE_EVENTS:
            return f"v{self.version}  {self.since:%Y-%m-%d %H:%M}  {self.kind}: {self.reason}"
        until = f"{self.until:%Y-%m-%d %H:%M}" if self.until else "now"
        replaced = f", replaced v{self.replaced}" if self.replaced is not None else ""
        period = f"{self.since:%Y-%m-%d %H:%M} -> {until}"
        return f"v{self.version}  {period}  {self.kind}{replaced}: {self.reason}"


def check_force_reason(force_reason: str | None) -> None:
    """A forced promotion must say why (it is recorded); None means not forced."""
    if force_reason is not None and not force_reason.strip():
        raise ValueError("a forced promotion needs a reason")


def promote(
    settings: Settings,
    version: int,
    *,
    blessed: bool,
    gate_failures: Sequence[str],
    logical_date: dt.date,
    force_reason: str | None = None,
    dry_run: bool = False,
    canary: bool = False,
) -> PromotionResult:
    """Make ``version`` the champion if the gate blessed it (or a person forced it); with
    ``canary`` and a champion to compare with, make it ``@candidate`` instead (share 0:
    the canary starts routing customers to it once the server has loaded it).

    ``gate_failures`` are the messages of the gate's failed checks, quoted in a rejection.
    Never promotes in a dry run, nor a version whose data is older than the champion's, nor
    in a run whose logical date precedes the end of the champion's data: a backfill must
    not demote a model trained on newer data (forcing does not override this; `rollback`
    is the deliberate way back). The outcome is tagged on the version either way.

    Safe to retry after the registry failed in the middle (the task's retries): a retry
    finishes a promotion that already moved ``@champion`` (see `_resume_promotion`).
    """
    check_force_reason(force_reason)
    client = connect(settings)
    name, number, day = settings.model_name, str(version), _as_date(logical_date)
    current = aliases(settings)
    champion = current.get(CHAMPION)
    if blessed:
        kind, reason = "promotion", "blessed by the evaluation gate"
    else:
        kind, reason = "forced", f"forced: {force_reason}"
    if champion == version and not dry_run and (blessed or force_reason):
        resumed = _resume_promotion(settings, version, current, kind, reason, day)
        if resumed is not None:
            return resumed
    refusal = _refusal(settings, version, champion, day)
    if refusal is None and not (blessed or force_reason):
        refusal = f"rejected by the evaluation gate: {'; '.join(gate_failures)}"
    if dry_run:
        outcome = refusal or f"would promote ({kind})"
        refusal = f"dry run, nothing promoted; otherwise: {outcome}"
    if refusal:
        client.set_model_version_tag(name, number, PROMOTION_TAG, refusal)
        previous = current.get(PREVIOUS_CHAMPION)
        return PromotionResult(False, version, champion, previous, refusal)

    if not blessed:
        client.set_model_version_tag(name, number, FORCED_REASON_TAG, force_reason)
    if canary and champion is not None:
        return _make_candidate(settings, version, champion, reason, day)
    _move_champion(settings, version, champion, kind, reason, day)
    return _promoted(settings, version, champion, reason)


def _make_candidate(
    settings: Settings, version: int, champion: int, reason: str, logical_date: dt.date
) -> PromotionResult:
    """Point ``@candidate`` at ``version`` with a share of 0; a retry records it once."""
    client = connect(settings)
    set_canary_share(settings, version, 0.0)
    client.set_registered_model_alias(settings.model_name, CANDIDATE, str(version))
    events = history_events(settings)
    if not (events and events[-1].version == version and events[-1].kind == "candidate"):
        _record(settings, version, "candidate", reason, champion, logical_date)
        _describe_history(settings)
    outcome = f"{reason}; on canary beside champion v{champion}"
    client.set_model_version_tag(settings.model_name, str(version), PROMOTION_TAG, outcome)
    return PromotionResult(False, version, champion, None, outcome, candidate=True)


def record_canary_step(settings: Settings, version: int, reason: str) -> None:
    """Record a canary step of ``version`` (a share widened, and the evidence that let it)."""
    _record(settings, version, "canary-step", reason, None, None)
    _describe_history(settings)


def promote_candidate(settings: Settings, version: int, reason: str) -> HistoryEntry:
    """End a passed canary: ``@candidate`` ``version`` becomes ``@champion`` (the old one
    ``@previous-champion``); the candidate alias and its share are removed after, so that no
    server ever lacks a model for a customer."""
    current = aliases(settings)
    if current.get(CANDIDATE) != version:
        raise DataError(
            f"v{version} of {settings.model_name!r} is not @{CANDIDATE} "
            f"(@{CANDIDATE} is {current.get(CANDIDATE)}): its canary already ended"
        )
    entry = _move_champion(settings, version, current.get(CHAMPION), "canary", reason, None)
    _drop_candidate(settings)
    connect(settings).set_model_version_tag(
        settings.model_name, str(version), PROMOTION_TAG, reason
    )
    return entry


def end_candidate(settings: Settings, version: int, reason: str) -> None:
    """End a failed or aborted canary: ``version`` serves nobody, ``@champion`` stays."""
    if aliases(settings).get(CANDIDATE) == version:
        _drop_candidate(settings)
    _record(settings, version, "canary-rollback", reason, None, None)
    _describe_history(settings)
    connect(settings).set_model_version_tag(
        settings.model_name, str(version), PROMOTION_TAG, reason
    )


def _drop_candidate(settings: Settings) -> None:
    connect(settings).delete_registered_model_alias(settings.model_name, CANDIDATE)
    clear_canary_share(settings)


def _resume_promotion(
    settings: Settings,
    version: int,
    current: dict[str, int],
    kind: str,
    reason: str,
    logical_date: dt.date,
) -> PromotionResult | None:
    """The retry of a promotion that failed after ``@champion`` moved to ``version``.

    A promotion writes ``@previous-champion``, then ``@champion``, then the history entry,
    then the version's outcome tag. When the registry fails after the champion moved,
    the retry writes what is missing and reports the promotion, so that the deploy step
    still verifies the new champion. A version the history already shows promoted is
    reported promoted again (its retry after a later step failed); None when ``version``
    became champion by a rollback, which the caller refuses as before.
    """
    history = champion_history(settings)
    last = history[-1] if history else None
    if last is not None and last.version == version:
        if last.kind == "rollback":
            return None
        _describe_history(settings)
        return _promoted(settings, version, current.get(PREVIOUS_CHAMPION), last.reason)
    replaced = last.version if last is not None else None
    _move_champion(settings, version, replaced, kind, reason, logical_date)  # idempotent writes
    return _promoted(settings, version, replaced, reason)


def _promoted(
    settings: Settings, version: int, replaced: int | None, reason: str
) -> PromotionResult:
    """Tag ``version``'s outcome, the last write of a promotion; what `promote` reports."""
    connect(settings).set_model_version_tag(
        settings.model_name, str(version), PROMOTION_TAG, reason
    )
    return PromotionResult(True, version, version, replaced, reason)


def rollback(settings: Settings, to_version: int | None, reason: str) -> HistoryEntry:
    """Serve an earlier version again: ``to_version``, or ``@previous-champion``.

    The replaced champion becomes ``@previous-champion``, so a rollback can itself be
    rolled back. Used by people (``churnloop rollback``) and by a failed deployment.
    """
    if not reason.strip():
        raise ValueError("a rollback needs a reason")
    current = aliases(settings)
    champion = current.get(CHAMPION)
    if champion is None:
        raise DataError(f"model {settings.model_name!r} has no champion to roll back from")
    target = to_version if to_version is not None else current.get(PREVIOUS_CHAMPION)
    if target is None:
        raise DataError(
            f"model {settings.model_name!r} has no {PREVIOUS_CHAMPION}; name one with --to VERSION"
        )
    model_version(settings, target)
    if target == champion:
        raise DataError(f"version {target} of {settings.model_name!r} is already the champion")
    return _move_champion(settings, target, champion, "rollback", reason, None)


def champion_history(settings: Settings) -> list[HistoryEntry]:
    """Every period a version was champion, oldest first."""
    return [entry for entry in history_events(settings) if entry.kind in CHAMPION_MOVES]


def history_events(settings: Settings) -> list[HistoryEntry]:
    """The champion's periods and the canaries' events, oldest first."""
    try:
        tags = connect(settings).get_registered_model(settings.model_name).tags
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    events = [json.loads(tags[key]) for key in sorted(tags) if key.startswith(HISTORY_TAG_PREFIX)]
    moves = [event for event in events if event["kind"] in CHAMPION_MOVES]
    ends = {id(event): successor["since"] for event, successor in itertools.pairwise(moves)}
    return [
        HistoryEntry(
            version=event["version"],
            since=dt.datetime.fromisoformat(event["since"]),
            until=dt.datetime.fromisoformat(ends[id(event)]) if id(event) in ends else None,
            kind=event["kind"],
            reason=event["reason"],
            replaced=event["replaced"],
            logical_date=event["logical_date"],
        )
        for event in events
    ]


def _refusal(
    settings: Settings, version: int, champion: int | None, logical_date: dt.date
) -> str | None:
    """Why ``version`` must not become champion whatever the gate said, or None."""
    if champion == version:
        return f"version {version} is already the champion"
    if champion is None:
        return None
    champion_end = training_data_end(model_version(settings, champion))
    challenger_end = training_data_end(model_version(settings, version))
    older_data = (
        challenger_end is not None and champion_end is not None and challenger_end < champion_end
    )
    if champion_end is not None and (logical_date < champion_end or older_data):
        return (
            f"stale: champion v{champion} was trained on data up to {champion_end}, newer than "
            f"this run (logical date {logical_date}, data up to {challenger_end}); a backfill "
            "never replaces it (use `churnloop rollback --to` to serve an older version)"
        )
    return None


def _move_champion(
    settings: Settings,
    version: int,
    replaced: int | None,
    kind: str,
    reason: str,
    logical_date: dt.date | None,
) -> HistoryEntry:
    client = connect(settings)
    name = settings.model_name
    if replaced is not None:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, str(replaced))
    client.set_registered_model_alias(name, CHAMPION, str(version))
    entry = _record(settings, version, kind, reason, replaced, logical_date)
    _describe_history(settings)
    return entry


def _record(
    settings: Settings,
    version: int,
    kind: str,
    reason: str,
    replaced: int | None,
    logical_date: dt.date | None,
) -> HistoryEntry:
    """Store one history event as a tag of the registered model, keyed by its time."""
    since = dt.datetime.now(dt.UTC)
    event = {
        "version": version,
        "since": since.isoformat(),
        "kind": kind,
        "reason": reason,
        "replaced": replaced,
        "logical_date": logical_date.isoformat() if logical_date else None,
    }
    key = f"{HISTORY_TAG_PREFIX}{since:%Y%m%dT%H%M%S%fZ}"
    connect(settings).set_registered_model_tag(settings.model_name, key, json.dumps(event))
    return HistoryEntry(version, since, None, kind, reason, replaced, event["logical_date"])


def _describe_history(settings: Settings) -> None:
    """Write the champion history, newest first, as the registered model's description.

    The ``champion_history.*`` tags stay the record (JSON, for code); the description is
    what MLflow's UI shows on the model's page. Rewritten whole from the tags at each move;
    past MLflow's limit the oldest periods are cut.
    """
    entries = reversed(history_events(settings))
    text = "\n".join(
        [
            "**Champion history**, newest first: version, period as champion (UTC), how it "
            "got there and why, and each canary's steps (`churnloop champion-history` "
            "prints the same).",
            "",
            *(f"- {html.escape(entry.describe(), quote=False)}" for entry in entries),
        ]
    )
    client = connect(settings)
    client.update_registered_model(settings.model_name, description=within_description_limit(text))


def _as_date(value: dt.date) -> dt.date:
    """A logical date as a day; Airflow passes a datetime, a shell user a date."""
    return value.date() if isinstance(value, dt.datetime) else value
