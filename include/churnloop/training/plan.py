"""What one ``continuous_training`` run works on, decided once at its start.

A run is anchored to an as-of day: its logical date (a scheduled run, a manual run or a
backfill) or, for a run started by drift events (which has no logical date), the day after
the newest day the events report drift on: ``drift_report`` checks day D on D+1, so in
production that is the day the run starts, and in a backfill or a simulated history it
is still the data the run reacts to. Labels mature 30 days
after a snapshot, and the day before the as-of day is the last one ``customer_data`` has
processed, so the training window ends ``LABEL_DELAY_DAYS + 1`` days before the as-of day.
Evaluating "as of" that day is what makes a backfilled run reproduce what a run on that
day would have done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from churnloop.errors import DataError
from churnloop.schema import LABEL_DELAY_DAYS
from churnloop.settings import Settings

GATE_PARAMS = ("min_roc_auc", "max_auc_drop_abs", "max_auc_drop_rel", "max_slice_drop")
"""Params of the trigger form that override the evaluation gate's settings."""


@dataclass(frozen=True)
class TrainingPlan:
    as_of: dt.date
    window_start: dt.date
    window_end: dt.date
    holdout_days: int
    gate_overrides: dict[str, float | None]
    force_reason: str | None
    dry_run: bool
    trigger: str
    drift_events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), **{k: getattr(self, k).isoformat() for k in _DATES}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingPlan:
        dates = {k: dt.date.fromisoformat(data[k]) for k in _DATES}
        return cls(**{**data, **dates})

    def describe(self) -> str:
        mode = "dry run" if self.dry_run else "forced" if self.force_reason else "gated"
        events = f", {len(self.drift_events)} drift event(s)" if self.drift_events else ""
        return (
            f"as of {self.as_of} ({self.trigger}{events}): snapshots {self.window_start}.."
            f"{self.window_end}, last {self.holdout_days} days held out; promotion {mode}"
        )


_DATES = ("as_of", "window_start", "window_end")


def drift_events_from(triggering_asset_events: Mapping[Any, list[Any]] | None) -> list[dict]:
    """The drift events a run consumed, as JSON-safe dicts (Airflow merges queued ones).

    ``triggering_asset_events`` is Airflow's context entry: asset -> events, each with a
    ``timestamp`` and the ``extra`` that ``drift_report`` attached (day, reasons, report).
    """
    return [
        {"timestamp": event.timestamp.isoformat(), **dict(event.extra or {})}
        for events in (triggering_asset_events or {}).values()
        for event in events
    ]


def as_of_day(
    logical_date: dt.datetime | None, run_after: dt.datetime, drift_events: list[dict[str, Any]]
) -> dt.date:
    """The day a run trains as of (see the module docstring)."""
    if logical_date is not None:
        return logical_date.date()
    drift_days = [dt.date.fromisoformat(event["day"]) for event in drift_events if "day" in event]
    if drift_days:
        return max(drift_days) + dt.timedelta(days=1)
    return run_after.date()


def plan_training_run(
    settings: Settings,
    *,
    as_of: dt.date,
    params: Mapping[str, Any],
    trigger: str,
    drift_events: list[dict[str, Any]] | None = None,
) -> TrainingPlan:
    """Resolve a run's Params against settings; a bad combination fails with the fix."""
    window_days = int(params.get("training_window_days") or settings.training_window_days)
    holdout_days = int(params.get("holdout_days") or settings.holdout_days)
    if holdout_days >= window_days:
        raise DataError(
            f"holdout_days ({holdout_days}) must be smaller than training_window_days "
            f"({window_days}): nothing would be left to train on"
        )
    force = bool(params.get("force_promote"))
    reason = (params.get("reason") or "").strip()
    if force and not reason:
        raise DataError(
            "force_promote is set but reason is empty: say why a person overrides "
            "the evaluation gate (it is recorded on the model version)"
        )
    window_end = as_of - dt.timedelta(days=LABEL_DELAY_DAYS + 1)
    return TrainingPlan(
        as_of=as_of,
        window_start=window_end - dt.timedelta(days=window_days - 1),
        window_end=window_end,
        holdout_days=holdout_days,
        gate_overrides={name: params[name] for name in GATE_PARAMS if name in params},
        force_reason=reason if force else None,
        dry_run=bool(params.get("dry_run")),
        trigger=trigger,
        drift_events=list(drift_events or []),
    )
