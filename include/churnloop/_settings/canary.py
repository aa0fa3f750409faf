"""Canary fields of ``churnloop.settings.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator


class CanarySettings(BaseModel):
    """How a blessed challenger earns live traffic: steps, bake periods, guardrails.

    Each guardrail compares an interval of the candidate with the champion's at
    ``canary_confidence``; `tests/churnloop/canary/test_guardrails.py` shows, on samples
    where the answer is known, what the defaults catch and how rarely they trip on equals.
    """

    canary_steps: list[float] = Field(
        default=[0.1, 0.5, 1.0],
        description="Shares of customers @candidate serves, step by step, ending at 1.0; "
        "empty: no canary, a blessed challenger becomes @champion at once.",
    )
    canary_bake_seconds: float = Field(
        default=3_600,
        gt=0,
        description="Least time each step serves before it is judged (hours in production; "
        "seconds in the demo and tests).",
    )
    canary_poke_seconds: float = Field(
        default=60,
        gt=0,
        description="How often the canary task looks at the evidence (reschedule mode: no "
        "worker slot is held in between).",
    )
    canary_evidence_wait_factor: float = Field(
        default=3.0,
        ge=1,
        description="A step that has not gathered canary_min_requests per variant after this "
        "many bake periods is rolled back: too little traffic to judge it.",
    )
    canary_min_requests: int = Field(
        default=200,
        ge=30,
        description="Requests each variant must answer in a step (and scores for the score "
        "guardrails, shadow pairs for agreement) before the step can be judged.",
    )
    canary_confidence: float = Field(
        default=0.99,
        gt=0.5,
        lt=1,
        description="Two-sided confidence of every guardrail's intervals.",
    )
    canary_max_error_rate_increase: float = Field(
        default=0.01,
        ge=0,
        description="Trips when the lower bound of (candidate - champion) 5xx rate exceeds this.",
    )
    canary_max_latency_ratio: float = Field(
        default=1.5,
        ge=1,
        description="Trips when the lower bound of the candidate's p99 latency exceeds this "
        "times the upper bound of the champion's.",
    )
    canary_max_nonfinite_increase: float = Field(
        default=0.001,
        ge=0,
        description="Trips when the lower bound of (candidate - champion) share of NaN or "
        "infinite scores exceeds this.",
    )
    canary_max_score_psi: float | None = Field(
        default=0.2,
        gt=0,
        description="Trips when the lower confidence bound of the PSI between the candidate's "
        "and the champion's scores of the same requests (one in shadow) exceeds this; None: off.",
    )
    canary_max_disagreement: float | None = Field(
        default=0.15,
        gt=0,
        le=1,
        description="Trips when the lower bound of the share of shadow-scored requests whose "
        "labels the two models disagree on exceeds this, either way; None: off.",
    )
    canary_shadow_fraction: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Share of requests during a canary that the other model (champion or "
        "candidate) also scores in shadow: the score and agreement guardrails compare the "
        "two models on the same requests. Each shadowed request costs a second model's "
        "scoring (about 0.8 ms of CPU, docs/benchmarks.md): raise it for more evidence per "
        "bake at that price.",
    )

    @field_validator("canary_steps")
    @classmethod
    def _steps_widen_to_everyone(cls, steps: list[float]) -> list[float]:
        if steps and (
            any(not 0 < share <= 1 for share in steps)
            or any(a >= b for a, b in zip(steps, steps[1:], strict=False))
            or steps[-1] != 1
        ):
            raise ValueError(f"canary steps must rise within (0, 1] and end at 1.0, got {steps}")
        return steps
