"""Where a canary stands, kept on the candidate's version in the registry between the
canary task's looks (a reschedule-mode sensor keeps nothing in memory): its steps, the
current one, and the evidence counted so far."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from typing import Any

from churnloop import registry
from churnloop.canary.evidence import Evidence
from churnloop.settings import Settings

STATE_TAG = "canary.state"
"""Version tag: the canary's `CanaryState` as JSON."""
STEP_TAG_PREFIX = "canary.step."
"""Version tags ``canary.step.<n>``: each judged step's share, period and guardrails."""


@dataclass(frozen=True)
class CanaryState:
    """A canary of ``version`` beside ``champion``: at ``steps[step]`` since
    ``step_started``. ``last`` is the server's counts at the last look; ``step_evidence``
    and ``canary_evidence`` what was counted since the step and the canary began."""

    version: int
    champion: int
    steps: tuple[float, ...]
    bake_seconds: float
    step: int
    started: dt.datetime
    step_started: dt.datetime
    last: Evidence | None = None
    step_evidence: Evidence = field(default_factory=Evidence)
    canary_evidence: Evidence = field(default_factory=Evidence)

    @property
    def share(self) -> float:
        return self.steps[self.step]

    @property
    def last_step(self) -> bool:
        return self.step == len(self.steps) - 1

    @property
    def where(self) -> str:
        """The step in words, e.g. ``step 1/3 (10% of customers)``."""
        return f"step {self.step + 1}/{len(self.steps)} ({self.share:.0%} of customers)"

    @property
    def plan(self) -> str:
        """The steps in words, e.g. ``10% -> 50% -> 100%``."""
        return " -> ".join(f"{share:.0%}" for share in self.steps)

    def counted(self, now: Evidence | None) -> CanaryState:
        """The state after a look at the server's counts (None: the server did not answer)."""
        if now is None:
            return self
        new = now.since(self.last)
        return replace(
            self,
            last=now,
            step_evidence=self.step_evidence.plus(new),
            canary_evidence=self.canary_evidence.plus(new),
        )

    def next_step(self, at: dt.datetime) -> CanaryState:
        return replace(self, step=self.step + 1, step_started=at, step_evidence=Evidence())

    def to_json(self) -> str:
        document: dict[str, Any] = {
            "version": self.version,
            "champion": self.champion,
            "steps": list(self.steps),
            "bake_seconds": self.bake_seconds,
            "step": self.step,
            "started": self.started.isoformat(),
            "step_started": self.step_started.isoformat(),
            "last": self.last.to_dict() if self.last else None,
            "step_evidence": self.step_evidence.to_dict(),
            "canary_evidence": self.canary_evidence.to_dict(),
        }
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> CanaryState:
        data = json.loads(text)
        return cls(
            version=data["version"],
            champion=data["champion"],
            steps=tuple(data["steps"]),
            bake_seconds=data["bake_seconds"],
            step=data["step"],
            started=dt.datetime.fromisoformat(data["started"]),
            step_started=dt.datetime.fromisoformat(data["step_started"]),
            last=Evidence.from_dict(data["last"]) if data["last"] else None,
            step_evidence=Evidence.from_dict(data["step_evidence"]),
            canary_evidence=Evidence.from_dict(data["canary_evidence"]),
        )


def load_state(settings: Settings, version: int) -> CanaryState | None:
    stored = registry.model_version(settings, version).tags.get(STATE_TAG)
    return CanaryState.from_json(stored) if stored else None


def save_state(settings: Settings, state: CanaryState) -> None:
    registry.connect(settings).set_model_version_tag(
        settings.model_name, str(state.version), STATE_TAG, state.to_json()
    )


def save_step(settings: Settings, state: CanaryState, record: dict[str, Any]) -> None:
    """Keep a judged step's record on the version (``canary.step.<n>``, from 1)."""
    registry.connect(settings).set_model_version_tag(
        settings.model_name,
        str(state.version),
        f"{STEP_TAG_PREFIX}{state.step + 1}",
        json.dumps(record, separators=(",", ":")),
    )
