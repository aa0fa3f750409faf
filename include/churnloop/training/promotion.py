"""The gate's decision on the registry: recorded on a version, read back, acted on.

The registry stores plain tags and JSON; this module converts a `Decision` to and from
them and hands `champion.promote` what it needs to know of the gate.
"""

from __future__ import annotations

import datetime as dt

from churnloop import champion, registry
from churnloop.settings import Settings
from churnloop.training.gate import Decision


def record_decision(settings: Settings, version: int, decision: Decision) -> None:
    """Tag the version with the decision (for the UI) and keep it as JSON (for the card)."""
    metrics = {
        f"baseline_{name}_{metric}": value
        for name, values in decision.baseline_metrics.items()
        for metric, value in values.items()
    }
    registry.save_decision(settings, version, decision.to_tags(), decision.to_dict(), metrics)


def recorded_decision(settings: Settings, version: int) -> Decision | None:
    """The decision `record_decision` stored for a version, or None if it was never judged."""
    document = registry.load_decision(settings, version)
    return None if document is None else Decision.from_dict(document)


def promote_on_decision(
    settings: Settings,
    version: int,
    decision: Decision,
    *,
    logical_date: dt.date,
    force_reason: str | None = None,
    dry_run: bool = False,
    canary: bool = False,
) -> champion.PromotionResult:
    """Record ``decision`` on the version, then let `champion.promote` act on it (with
    ``canary``, a blessed version becomes ``@candidate`` for the canary to judge).

        The decision is tagged whatever the outcome, so a refused version still shows why.
    """
    champion.check_force_reason(force_reason)
    record_decision(settings, version, decision)
    return champion.promote(
        settings,
        version,
        blessed=decision.blessed,
        gate_failures=[check.message for check in decision.failed_checks],
        logical_date=logical_date,
        force_reason=force_reason,
        dry_run=dry_run,
        canary=canary,
    )
