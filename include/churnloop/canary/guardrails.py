"""Guardrails: does the candidate serve live traffic worse than the champion?

Each guardrail compares intervals, never points: a proportion's difference by Newcombe's
score interval, a p99 by the order statistics that bound it (read from the latency
histogram's buckets), a score distribution by a lower confidence bound of its PSI, and the
shadow agreement by Wilson intervals, each way. A guardrail with less than its minimum
sample waits. ``alpha`` is one guardrail's chance of tripping at one look on a candidate no
worse than its limit (one-sided: only a worse candidate trips); `judge` splits
``1 - canary_confidence`` over every guardrail of every step (Bonferroni), so that two equal
models see a false rollback in at most that share of canaries.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import binom
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from churnloop.canary.evidence import LATENCY_EDGES, VariantEvidence
from churnloop.monitoring.significance import psi_lower_bound
from churnloop.settings import Settings

PASS, TRIP, WAIT, OFF = "pass", "trip", "wait", "off"
QUANTILE = 0.99
GUARDRAILS = ("error_rate", "latency_p99", "nonfinite_scores", "score_drift", "agreement")


@dataclass(frozen=True)
class GuardrailResult:
    """One guardrail's verdict on one step, and the numbers behind it."""

    name: str
    status: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(
    candidate: VariantEvidence, champion: VariantEvidence, settings: Settings, steps: int
) -> list[GuardrailResult]:
    """Every guardrail on one step: the candidate's counts of the step against the
    champion's over the canary so far."""
    alpha = (1 - settings.canary_confidence) / (len(GUARDRAILS) * max(steps, 1))
    least = settings.canary_min_requests
    return [
        error_rate(candidate, champion, alpha, least, settings.canary_max_error_rate_increase),
        latency_p99(candidate, champion, alpha, least, settings.canary_max_latency_ratio),
        nonfinite_scores(candidate, champion, alpha, least, settings.canary_max_nonfinite_increase),
        score_drift(candidate, champion, alpha, least, settings.canary_max_score_psi),
        agreement(candidate, champion, alpha, least, settings.canary_max_disagreement),
    ]


def error_rate(
    candidate: VariantEvidence, champion: VariantEvidence, alpha: float, least: int, limit: float
) -> GuardrailResult:
    """5xx answers: trips when the candidate's rate is above the champion's by more than
    ``limit``, at the interval's lower bound."""
    return _rate_increase(
        "error_rate",
        "5xx rate",
        (candidate.errors, candidate.requests),
        (champion.errors, champion.requests),
        alpha,
        least,
        limit,
    )


def nonfinite_scores(
    candidate: VariantEvidence, champion: VariantEvidence, alpha: float, least: int, limit: float
) -> GuardrailResult:
    """NaN or infinite scores, as `error_rate` does for 5xx answers."""
    return _rate_increase(
        "nonfinite_scores",
        "share of NaN/infinite scores",
        (candidate.nonfinite, candidate.scored),
        (champion.nonfinite, champion.scored),
        alpha,
        least,
        limit,
    )


def _rate_increase(
    name: str,
    what: str,
    candidate: tuple[int, int],
    champion: tuple[int, int],
    alpha: float,
    least: int,
    limit: float,
) -> GuardrailResult:
    waiting = _too_few(name, candidate[1], champion[1], least, "requests")
    if waiting:
        return waiting
    low, high = confint_proportions_2indep(  # two-sided at 2 alpha: its lower bound at alpha
        *candidate, *champion, method="newcomb", compare="diff", alpha=2 * alpha
    )
    rates = f"candidate {candidate[0]}/{candidate[1]}, champion {champion[0]}/{champion[1]}"
    change = f"change in {what} [{low:+.4f}, {high:+.4f}]"
    if low > limit:
        return GuardrailResult(name, TRIP, f"{change} lies above +{limit:g} ({rates})")
    return GuardrailResult(name, PASS, f"{change}, lower bound within +{limit:g} ({rates})")


def latency_p99(
    candidate: VariantEvidence, champion: VariantEvidence, alpha: float, least: int, ratio: float
) -> GuardrailResult:
    """Trips when the lower bound of the candidate's p99 exceeds ``ratio`` times the upper
    bound of the champion's (bounds at bucket edges, so coarse but never too narrow)."""
    name = "latency_p99"
    waiting = _too_few(name, candidate.requests, champion.requests, least, "requests")
    if waiting:
        return waiting
    low = _quantile_lower_bound(candidate.latency, alpha / 2)
    high = _quantile_upper_bound(champion.latency, alpha / 2)
    if math.isinf(high):
        return GuardrailResult(
            name,
            WAIT,
            f"waiting for champion requests: {champion.requests} bound its p99 by no bucket "
            f"at this confidence (about {math.log(alpha / 2) / math.log(QUANTILE):.0f} needed)",
        )
    bounds = (
        f"candidate p99 >= {low * 1000:g} ms, champion p99 <= {high * 1000:g} ms "
        f"({candidate.requests} and {champion.requests} requests)"
    )
    if low > ratio * high:
        return GuardrailResult(name, TRIP, f"{bounds}: above {ratio:g}x the champion's")
    return GuardrailResult(name, PASS, f"{bounds}: within {ratio:g}x")


def _quantile_lower_bound(cumulative: tuple[int, ...], alpha: float) -> float:
    """A lower confidence bound of the p99: the lower edge of the bucket holding the order
    statistic that lies below the p99 with probability ``1 - alpha``."""
    rank = int(binom.ppf(alpha, cumulative[-1], QUANTILE))
    if rank < 1:
        return 0.0
    bucket = int(np.searchsorted(cumulative, rank, side="left"))
    return 0.0 if bucket == 0 else LATENCY_EDGES[bucket - 1]


def _quantile_upper_bound(cumulative: tuple[int, ...], alpha: float) -> float:
    """An upper confidence bound of the p99: the upper edge of the bucket holding the order
    statistic that lies above the p99 with probability ``1 - alpha`` (infinite if beyond
    the sample)."""
    rank = int(binom.ppf(1 - alpha, cumulative[-1], QUANTILE)) + 1
    if rank > cumulative[-1]:
        return math.inf
    return LATENCY_EDGES[int(np.searchsorted(cumulative, rank, side="left"))]


def score_drift(
    candidate: VariantEvidence,
    champion: VariantEvidence,
    alpha: float,
    least: int,
    max_psi: float | None,
) -> GuardrailResult:
    """Trips when, on either variant's traffic, the lower confidence bound (at 1 - ``alpha``
    / 2) of the PSI between the candidate's scores and the champion's of the same requests
    (one of them in shadow) exceeds ``max_psi``. Not the point estimate: on a few hundred
    requests it reads high on noise alone. Comparing the same requests leaves out the
    difference between the two variants' customers."""
    name = "score_drift"
    if max_psi is None:
        return GuardrailResult(name, OFF, "off (canary_max_score_psi is None)")
    ways = {  # (the candidate's scores, the champion's scores) of one variant's requests
        "candidate's traffic": (candidate.scores, candidate.shadow_scores),
        "champion's traffic": (champion.shadow_scores, champion.scores),
    }
    sizes = {way: min(a[-1], b[-1]) for way, (a, b) in ways.items()}
    waiting = _too_few(name, *sizes.values(), least, "finite scores by both models")
    if waiting:
        return waiting
    readings, tripped = [], []
    for way, (mine, theirs) in ways.items():
        mine, theirs = np.diff(mine, prepend=0), np.diff(theirs, prepend=0)
        psi, low = psi_lower_bound(theirs, mine, alpha / 2)
        readings.append(f"{way} PSI {psi:.3f} (at least {low:.3f})")
        if low > max_psi:
            tripped.append(way)
    numbers = "; ".join(readings)
    if tripped:
        return GuardrailResult(name, TRIP, f"scores shifted: {numbers}, above {max_psi:g}")
    return GuardrailResult(name, PASS, f"{numbers}: lower bounds within {max_psi:g}")


def agreement(
    candidate: VariantEvidence,
    champion: VariantEvidence,
    alpha: float,
    least: int,
    max_disagreement: float | None,
) -> GuardrailResult:
    """Trips when, on either variant's shadow-scored traffic, the lower bound of the share
    of labels the other model disagrees with exceeds ``max_disagreement``."""
    name = "agreement"
    if max_disagreement is None:
        return GuardrailResult(name, OFF, "off (canary_max_disagreement is None)")
    ways = {"candidate's traffic": candidate, "champion's traffic": champion}
    pairs = {way: side.agree + side.disagree for way, side in ways.items()}
    waiting = _too_few(name, *pairs.values(), least, "shadow-scored instances")
    if waiting:
        return waiting
    readings, tripped = [], []
    for way, side in ways.items():
        # two-sided at alpha: each way trips at alpha / 2, either way at most alpha
        low, high = proportion_confint(side.disagree, pairs[way], alpha=alpha, method="wilson")
        readings.append(f"{way} [{low:.3f}, {high:.3f}] of {pairs[way]}")
        if low > max_disagreement:
            tripped.append(way)
    numbers = f"label disagreement {', '.join(readings)}"
    if tripped:
        return GuardrailResult(name, TRIP, f"{numbers}: above {max_disagreement:g}")
    return GuardrailResult(name, PASS, f"{numbers}: lower bounds within {max_disagreement:g}")


def _too_few(
    name: str, candidate: int, champion: int, least: int, what: str
) -> GuardrailResult | None:
    if min(candidate, champion) >= least:
        return None
    return GuardrailResult(
        name,
        WAIT,
        f"waiting for {least} {what} per variant (candidate {candidate}, champion {champion})",
    )
