"""What one ``continuous_training`` run works on, decided once at its start.

`plan_run` turns the run's Airflow facts and Params into a `TrainingPlan` (as-of day,
training window, gate overrides, promotion mode), which the steps receive as its dict.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from churnloop._settings.canary import CanarySettings
from churnloop.errors import DataError
from churnloop.schema import LABEL_DELAY_DAYS
from churnloop.settings import Settings

log = logging.getLogger(__name__)

GATE_PARAMS = (
    "min_roc_auc",
    "noninferiority_margin",
    "min_gain_over_baseline",
    "max_slice_drop",
)
"""Params of the trigger form that override the evaluation gate's settings."""


@dataclass(frozen=True)
class TrainingPlan:
    """A run's plan; crosses XCom as `to_dict` and comes back through `from_dict`."""

    as_of: dt.date
    window_start: dt.date
    window_end: dt.date
    holdout_days: int
    gate_overrides: dict[str, float | None]
    force_reason: str | None
    dry_run: bool
    trigger: str
    drift_events: list[dict[str, Any]] = field(default_factory=list)
    tuning_trials: int = 0
    tuning_timeout_seconds: float = 0.0
    canary_steps: list[float] = field(default_factory=list)
    canary_bake_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), **{k: getattr(self, k).isoformat() for k in _DATES}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingPlan:
        dates = {k: dt.date.fromisoformat(data[k]) for k in _DATES}
        return cls(**{**data, **dates})

    def describe(self) -> str:
        mode = "dry run" if self.dry_run else "forced" if self.force_reason else "gated"
        events = f", {len(self.drift_events)} drift event(s)" if self.drift_events else ""
        tuning = (
            f"tuning {self.tuning_trials} trial(s) within {self.tuning_timeout_seconds:g} s"
            if self.tuning_trials
            else "tuning off"
        )
        canary = (
            f"canary {' -> '.join(f'{share:.0%}' for share in self.canary_steps)}, "
            f"{self.canary_bake_seconds:g} s per step"
            if self.canary_steps
            else "no canary"
        )
        return (
            f"as of {self.as_of} ({self.trigger}{events}): snapshots {self.window_start}.."
            f"{self.window_end}, last {self.holdout_days} days held out; {tuning}; "
            f"promotion {mode}; {canary}"
        )

    def run_name(self) -> str:
        """The MLflow run's name, e.g. ``train as of 2026-10-26 (drift)``."""
        return f"train as of {self.as_of} ({self.trigger})"

    def why(self, airflow_run_id: str | None) -> str:
        """Why the run trains, as Markdown for MLflow's descriptions: trigger, as-of day,
        window, the Airflow run and each drift event consumed (with its report)."""
        run = f" (Airflow run `{airflow_run_id}`)" if airflow_run_id else ""
        lines = [
            f"Trained as of {self.as_of} by a **{self.trigger}** run of "
            f"`continuous_training`{run}: snapshots {self.window_start} to {self.window_end}, "
            f"the last {self.holdout_days} days held out.",
        ]
        if self.drift_events:
            lines += ["", f"Drift events consumed ({len(self.drift_events)}):"]
            lines += [_drift_line(event) for event in self.drift_events]
        return "\n".join(lines)


_DATES = ("as_of", "window_start", "window_end")


def _drift_line(event: Mapping[str, Any]) -> str:
    """One consumed drift event as a Markdown bullet: its day, reasons and report."""
    reasons = html.escape("; ".join(event.get("reasons") or []), quote=False)
    day = html.escape(str(event.get("day", event.get("timestamp", "?"))), quote=False)
    line = f"- {day}: {reasons or 'no reason recorded'}"
    url = str(event.get("report_url") or "")
    if not url.startswith(("http://", "https://")) or any(c in url for c in " ()<>"):
        return line  # an event's extra is posted by anyone with API access: no other link
    return f"{line} ([drift report]({url}))"


def plan_run(
    settings: Settings,
    *,
    params: Mapping[str, Any],
    logical_date: dt.datetime | None,
    run_after: dt.datetime,
    run_type: object,
    asset_events: Mapping[Any, list[Any]] | None,
) -> dict[str, Any]:
    """The ``plan`` task: the run's plan from its context, logged, as the XCom dict.

    A run started by drift events has the trigger ``drift``; any other run is named by its
    Airflow run type's value (``scheduled``, ``manual``, ``backfill``): the task sees the
    Task SDK's ``DagRunType``, a ``str`` enum whose ``str()`` is ``DagRunType.SCHEDULED``.
    """
    events = drift_events_from(asset_events)
    planned = plan_training_run(
        settings,
        as_of=as_of_day(logical_date, run_after, events),
        params=params,
        trigger="drift" if events else str(getattr(run_type, "value", run_type)),
        drift_events=events,
    )
    log.info("%s", planned.describe())
    return planned.to_dict()


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
    """The day a run trains as of: its logical date, else the day after the newest drift.

    ``drift_report`` checks day D on D+1, so the day after the drift is the day a drift run
    starts in production, and the day it reacts to in a backfill or a simulated history.
    A run with neither trains as of the day it runs after.
    """
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
    """Resolve a run's Params against settings; a bad combination fails with the fix.

    The window ends ``LABEL_DELAY_DAYS + 1`` days before ``as_of``: labels mature that long
    after a snapshot, and ``customer_data`` has processed up to the day before ``as_of``.
    """
    window_days = int(params.get("training_window_days") or settings.training_window_days)
    holdout_days = int(params.get("holdout_days") or settings.holdout_days)
    if holdout_days >= window_days:
        raise DataError(
            f"holdout_days ({holdout_days}) must be smaller than training_window_days "
            f"({window_days}): nothing would be left to train on"
        )
    reason = params.get("force_promote_reason")
    if reason is not None and not reason.strip():
        raise DataError(
            "force_promote_reason is blank: leave it empty to let the gate decide, or say "
            "why a person overrides the evaluation gate (it is recorded on the model version)"
        )
    window_end = as_of - dt.timedelta(days=LABEL_DELAY_DAYS + 1)
    canary = _canary(settings, params)
    return TrainingPlan(
        as_of=as_of,
        window_start=window_end - dt.timedelta(days=window_days - 1),
        window_end=window_end,
        holdout_days=holdout_days,
        gate_overrides={name: params[name] for name in GATE_PARAMS if name in params},
        force_reason=reason.strip() if reason else None,
        dry_run=bool(params.get("dry_run")),
        trigger=trigger,
        drift_events=list(drift_events or []),
        tuning_trials=int(_param_or(params, "tuning_trials", settings.tuning_trials)),
        tuning_timeout_seconds=float(
            _param_or(params, "tuning_timeout_seconds", settings.tuning_timeout_seconds)
        ),
        canary_steps=canary.canary_steps,
        canary_bake_seconds=canary.canary_bake_seconds,
    )


def _canary(settings: Settings, params: Mapping[str, Any]) -> CanarySettings:
    """The canary's steps and bake period: the run's Params, else the settings'."""
    try:
        return CanarySettings(
            canary_steps=_param_or(params, "canary_steps", settings.canary_steps),
            canary_bake_seconds=_param_or(
                params, "canary_bake_seconds", settings.canary_bake_seconds
            ),
        )
    except ValidationError as error:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in error.errors())
        raise DataError(f"the canary Params do not hold: {problems}") from None


def _param_or(params: Mapping[str, Any], name: str, default: Any) -> Any:
    """A Param's value, or ``default`` when the run did not set it (0 is a value)."""
    value = params.get(name)
    return default if value is None else value
