"""Known truth for the canary guardrails at the defaults of `Settings`: equal models trip in
at most 1 - canary_confidence (1%) of canaries, each constructed fault trips with power >= 99%,
a true difference at a limit trips at most at the guardrail's alpha, harmless differences
pass however large the sample, and a guardrail with too few counts waits.

Simulated traffic: lognormal latency (median 3 ms, p99 ~6 ms), Beta(2, 5) scores, 2% 5xx
answers, 5% label disagreement. A 10% step of 3,000 requests gives the candidate 300 and the
champion 2,700: there the defaults catch 5xx 2% -> 12% and NaN 0% -> 4%, while 5xx 2% -> 8%
needs ~900 candidate requests and NaN 0% -> 2% ~600 for 99% power (at 300: ~84% and ~94%);
scores shifted by 1 in log-odds (PSI ~1.2) are caught at 300, by 0.75 (PSI ~0.7) at ~600
(at 300: ~87%). The score guardrail compares the two models on the same requests, so its
sample is the candidate's requests on both sides.
"""

import math
import operator
import re
from collections.abc import Callable

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import expit, logit
from scipy.stats import beta, norm

from churnloop.canary import guardrails
from churnloop.canary.evidence import LATENCY_EDGES, SCORE_EDGES, VariantEvidence
from churnloop.canary.guardrails import GUARDRAILS, OFF, PASS, QUANTILE, TRIP, WAIT, judge
from churnloop.monitoring.binning import population_stability_index
from churnloop.monitoring.significance import decile_bins
from churnloop.settings import Settings

STEP_REQUESTS = 3_000
CANARIES = 600
POWER_DRAWS = 200
CALIBRATION_DRAWS = 1_000


def counted(
    latencies: np.ndarray,
    scores: np.ndarray,
    shadow_scores: np.ndarray,
    failed: np.ndarray,
    disagreed: np.ndarray,
) -> VariantEvidence:
    """One variant's counts as the model server's Prometheus histograms hold them: the
    values at or below each edge (``le``); NaN scores counted apart."""
    finite = np.isfinite(scores)
    return VariantEvidence(
        requests=latencies.size,
        errors=int(failed.sum()),
        latency=at_or_below(latencies, LATENCY_EDGES),
        scores=at_or_below(scores[finite], SCORE_EDGES),
        shadow_scores=at_or_below(shadow_scores, SCORE_EDGES),
        nonfinite=int((~finite).sum()),
        agree=int((~disagreed).sum()),
        disagree=int(disagreed.sum()),
    )


def at_or_below(values: np.ndarray, edges: tuple[float, ...]) -> tuple[int, ...]:
    return tuple(np.searchsorted(np.sort(values), edges, side="right").tolist())


def traffic(
    rng: np.random.Generator,
    requests: int,
    *,
    error_rate: float = 0.02,
    added_latency: float = 0.0,
    nonfinite_rate: float = 0.0,
    log_odds_shift: float = 0.0,
    shadow_shift: float = 0.0,
    disagreement: float = 0.05,
) -> VariantEvidence:
    """Simulated requests of one variant; the defaults are the champion's behaviour. The
    other model's shadow scores of them are drawn apart from the same distribution (moved
    by ``shadow_shift``): equal models' scores of one request differ, their distributions
    do not."""
    latencies = rng.lognormal(math.log(0.003), 0.3, requests) + added_latency
    scores = expit(logit(rng.beta(2, 5, requests)) + log_odds_shift)
    scores[rng.random(requests) < nonfinite_rate] = np.nan
    shadow_scores = expit(logit(rng.beta(2, 5, requests)) + shadow_shift)
    failed, disagreed = rng.random(requests) < error_rate, rng.random(requests) < disagreement
    return counted(latencies, scores, shadow_scores, failed, disagreed)


def score_bucket_shares(log_odds_shift: float) -> np.ndarray:
    """The true shares of the score buckets of `traffic`'s Beta(2, 5) scores, shifted."""
    upper_edges = np.asarray(SCORE_EDGES[:-1])
    below = beta.cdf(expit(logit(upper_edges) - log_odds_shift), 2, 5)
    return np.diff(np.append(below, 1.0), prepend=0.0)


def true_score_psi(log_odds_shift: float) -> float:
    """The population PSI the score guardrail bounds (over the merged deciles)."""
    champion, candidate = score_bucket_shares(0.0), score_bucket_shares(log_odds_shift)
    starts = decile_bins(champion + candidate)
    reduced = np.add.reduceat(champion, starts), np.add.reduceat(candidate, starts)
    return population_stability_index(*reduced)


def shift_of_psi(psi: float) -> float:
    return brentq(lambda shift: true_score_psi(shift) - psi, 0.0, 3.0)


def step_alpha(settings: Settings) -> float:
    """One guardrail's alpha at one step, as `judge` splits it."""
    return (1 - settings.canary_confidence) / (len(GUARDRAILS) * len(settings.canary_steps))


def canary_trips(rng: np.random.Generator, settings: Settings) -> set[str]:
    """Guardrails tripped over a canary of equal models: each step's candidate counts
    against the champion's counts of the canary so far."""
    champion, tripped = VariantEvidence(), set()
    for share in settings.canary_steps:
        champion = champion.combine(traffic(rng, round((1 - share) * STEP_REQUESTS)))
        candidate = traffic(rng, round(share * STEP_REQUESTS))
        results = judge(candidate, champion, settings, steps=len(settings.canary_steps))
        tripped |= {result.name for result in results if result.status == TRIP}
    return tripped


def test_equal_models_trip_in_at_most_one_percent_of_canaries(settings: Settings):
    """Equal models through the default steps (10%, 50%, 100% of 3,000 requests each): a
    false rollback in at most 1 - canary_confidence = 1% of canaries (Bonferroni over five
    guardrails and three steps; measured ~0.1%). At a true 1%, more than 12 trips in 600
    canaries (2%) has probability 0.8%."""
    rng = np.random.default_rng(20260301)
    tripped = [canary_trips(rng, settings) for _ in range(CANARIES)]
    assert sum(map(bool, tripped)) <= 0.02 * CANARIES, [names for names in tripped if names]


NUMBERS = {
    "error_rate": r"5xx rate \[\+0\.\d{4}, \+0\.\d{4}\] lies above \+0\.01 "
    r"\(candidate \d+/\d+, champion \d+/\d+\)",
    "latency_p99": r"candidate p99 >= \d+ ms, champion p99 <= [\d.]+ ms "
    r"\(\d+ and \d+ requests\): above 1\.5x",
    "nonfinite_scores": r"NaN/infinite scores \[\+0\.\d{4}, \+0\.\d{4}\] lies above \+0\.001 "
    r"\(candidate \d+/\d+, champion 0/\d+\)",
    "score_drift": r"traffic PSI \d\.\d{3} \(at least \d\.\d{3}\).*, above 0\.2$",
    "agreement": r"traffic \[0\.\d{3}, 0\.\d{3}\] of \d+.*: above 0\.15",
}
FAULTS = {
    "5xx 2% -> 12%": ("error_rate", 300, {"error_rate": 0.12}, {}),
    "5xx 2% -> 8%": ("error_rate", 900, {"error_rate": 0.08}, {}),
    "latency +30 ms": ("latency_p99", 300, {"added_latency": 0.030}, {}),
    "NaN scores 0% -> 4%": ("nonfinite_scores", 300, {"nonfinite_rate": 0.04}, {}),
    "NaN scores 0% -> 2%": ("nonfinite_scores", 600, {"nonfinite_rate": 0.02}, {}),
    "score log-odds +1, PSI ~1.2": ("score_drift", 300, {"log_odds_shift": 1.0}, {}),
    "score log-odds +0.75, PSI ~0.7": ("score_drift", 600, {"log_odds_shift": 0.75}, {}),
    "score log-odds +1 in shadow": ("score_drift", 300, {}, {"shadow_shift": 1.0}),
    "40% disagree on the candidate's": ("agreement", 300, {"disagreement": 0.4}, {}),
    "40% disagree on the champion's": ("agreement", 300, {}, {"disagreement": 0.4}),
}


@pytest.mark.parametrize(
    ("guardrail", "requests", "candidate_fault", "champion_fault"),
    FAULTS.values(),
    ids=FAULTS,
)
def test_fault_trips_its_guardrail_with_the_numbers(
    settings: Settings,
    guardrail: str,
    requests: int,
    candidate_fault: dict[str, float],
    champion_fault: dict[str, float],
):
    """Power >= 99%: the fault trips in at least 198 of 200 simulated steps of a 10% share
    (the champion answers 9x the candidate's requests), and the trip names its guardrail
    with the interval and the counts behind it."""
    rng = np.random.default_rng(7)
    trips = []
    for _ in range(POWER_DRAWS):
        candidate = traffic(rng, requests, **candidate_fault)
        champion = traffic(rng, 9 * requests, **champion_fault)
        results = judge(candidate, champion, settings, steps=len(settings.canary_steps))
        trips += [result for result in results if result.status == TRIP]
    caught = [trip for trip in trips if trip.name == guardrail]
    assert len(caught) >= 0.99 * POWER_DRAWS, f"{len(caught)} of {POWER_DRAWS} tripped"
    assert re.search(NUMBERS[guardrail], caught[0].message), caught[0].message


AT_LIMIT = {
    "5xx +1 point": (guardrails.error_rate, {"error_rate": 0.03}, {}),
    "NaN +0.1 point": (guardrails.nonfinite_scores, {"nonfinite_rate": 0.001}, {}),
    "score PSI 0.2": (guardrails.score_drift, {"log_odds_shift": shift_of_psi(0.2)}, {}),
    "15% disagree both ways": (
        guardrails.agreement,
        {"disagreement": 0.15},
        {"disagreement": 0.15},
    ),
}
LIMITS = {
    guardrails.error_rate: "canary_max_error_rate_increase",
    guardrails.nonfinite_scores: "canary_max_nonfinite_increase",
    guardrails.score_drift: "canary_max_score_psi",
    guardrails.agreement: "canary_max_disagreement",
}


@pytest.mark.parametrize(
    ("guardrail", "candidate_fault", "champion_fault"), AT_LIMIT.values(), ids=AT_LIMIT
)
def test_difference_at_the_default_limit_trips_at_most_alpha(
    settings: Settings,
    guardrail: Callable[..., guardrails.GuardrailResult],
    candidate_fault: dict[str, float],
    champion_fault: dict[str, float],
):
    """A true difference equal to the limit is not a fault: it trips in at most alpha of
    steps (alpha 5% here, to measure it in 1,000 draws at 300 vs 2,700 requests; measured
    3-5%; binomial slack 3 sd = 2 points)."""
    rng, alpha, limit = np.random.default_rng(11), 0.05, getattr(settings, LIMITS[guardrail])
    trips = sum(
        guardrail(
            traffic(rng, 300, **candidate_fault),
            traffic(rng, 2_700, **champion_fault),
            alpha,
            settings.canary_min_requests,
            limit,
        ).status
        == TRIP
        for _ in range(CALIBRATION_DRAWS)
    )
    assert trips <= (alpha + 0.02) * CALIBRATION_DRAWS


@pytest.mark.parametrize("requests", [100, 400])
def test_score_drift_half_the_limit_passes_on_a_small_step(settings: Settings, requests: int):
    """A true PSI of 0.1 (about the two demo models' one) on a few hundred requests a
    variant trips in at most 1% of steps (a G-test with the point PSI over the 20 buckets
    tripped in 30% at 400 requests: noise read as PSI once the real difference is
    significant)."""
    rng, shift = np.random.default_rng(17), shift_of_psi(0.1)
    judged = [
        guardrails.score_drift(
            traffic(rng, requests, log_odds_shift=shift),
            traffic(rng, 9 * requests),
            step_alpha(settings),
            100,
            settings.canary_max_score_psi,
        )
        for _ in range(CALIBRATION_DRAWS)
    ]
    assert sum(j.status == TRIP for j in judged) <= 0.01 * CALIBRATION_DRAWS


GLARING = {
    "error_rate": 0.5,
    "added_latency": 1.0,
    "nonfinite_rate": 0.3,
    "log_odds_shift": 3.0,
    "disagreement": 0.9,
}


@pytest.mark.parametrize("short_side", ["candidate", "champion"])
def test_too_few_requests_wait_even_with_a_glaring_fault(settings: Settings, short_side: str):
    """Below canary_min_requests on either side no guardrail passes or trips."""
    rng, least = np.random.default_rng(3), settings.canary_min_requests
    requests = {"candidate": 9 * least, "champion": 9 * least, short_side: least - 1}
    candidate = traffic(rng, requests["candidate"], **GLARING)
    results = judge(candidate, traffic(rng, requests["champion"]), settings, steps=3)
    assert {result.name: result.status for result in results} == dict.fromkeys(GUARDRAILS, WAIT)


def test_score_drift_waits_for_enough_finite_scores(settings: Settings):
    """300 requests, 60% of them NaN: the NaN guardrail trips, the score distribution of
    the remaining ~120 finite scores waits."""
    rng = np.random.default_rng(5)
    candidate = traffic(rng, 300, nonfinite_rate=0.6, log_odds_shift=3.0)
    results = judge(candidate, traffic(rng, 2_700), settings, steps=3)
    statuses = {result.name: result.status for result in results}
    assert (statuses["nonfinite_scores"], statuses["score_drift"]) == (TRIP, WAIT)


HARMLESS = {
    "5xx 2% -> 2.3%": (guardrails.error_rate, {"error_rate": 0.023}, 0.0),
    "score log-odds +0.2, PSI ~0.05": (guardrails.score_drift, {"log_odds_shift": 0.2}, 0.01),
}


@pytest.mark.parametrize(("guardrail", "fault", "tight_limit"), HARMLESS.values(), ids=HARMLESS)
def test_harmless_difference_passes_however_large_the_sample(
    settings: Settings,
    guardrail: Callable[..., guardrails.GuardrailResult],
    fault: dict[str, float],
    tight_limit: float,
):
    """200,000 requests a variant make the difference certain (at a near-zero limit it
    trips); the default limit is what says it does not matter."""
    rng = np.random.default_rng(13)
    candidate, champion = traffic(rng, 200_000, **fault), traffic(rng, 200_000)
    judged = [
        guardrail(candidate, champion, step_alpha(settings), settings.canary_min_requests, limit)
        for limit in (getattr(settings, LIMITS[guardrail]), tight_limit)
    ]
    assert [result.status for result in judged] == [PASS, TRIP], judged[0].message


@pytest.mark.parametrize("requests", [300, 2_700])
@pytest.mark.parametrize(
    ("bound", "true_p99", "covers"),
    [
        (guardrails._quantile_lower_bound, 0.0099, operator.le),
        (guardrails._quantile_upper_bound, 0.0101, operator.ge),
    ],
    ids=["lower", "upper"],
)
def test_p99_bound_covers_the_true_p99(
    bound: Callable[[tuple[int, ...], float], float],
    true_p99: float,
    covers: Callable[[float, float], bool],
    requests: int,
):
    """A one-sided 95% bound misses the true p99 in at most 5% of samples. The p99 sits
    just inside the 10 ms edge, on the side where the bucket lends the bound no slack
    (measured 2-4% over 1,000 samples; binomial slack 3 sd = 2 points)."""
    rng, alpha = np.random.default_rng(17), 0.05
    median = math.log(true_p99) - 0.5 * norm.ppf(QUANTILE)
    misses = sum(
        not covers(
            bound(at_or_below(rng.lognormal(median, 0.5, requests), LATENCY_EDGES), alpha), true_p99
        )
        for _ in range(CALIBRATION_DRAWS)
    )
    assert misses <= (alpha + 0.02) * CALIBRATION_DRAWS


def test_upper_bound_is_infinite_while_the_rank_lies_beyond_the_sample(settings: Settings):
    """At the judge's alpha per side, the p99's upper bound needs the n-th value to lie
    above the p99 with probability 1 - alpha/2: 0.99^n <= alpha/2, n >= 797 by default."""
    alpha = step_alpha(settings) / 2
    needed = math.ceil(math.log(alpha) / math.log(QUANTILE))
    all_fast = [(n,) * len(LATENCY_EDGES) for n in (needed - 1, needed)]
    assert [guardrails._quantile_upper_bound(c, alpha) for c in all_fast] == [
        math.inf,
        LATENCY_EDGES[0],
    ]


@pytest.mark.parametrize(
    ("setting", "guardrail"),
    [("canary_max_score_psi", "score_drift"), ("canary_max_disagreement", "agreement")],
)
def test_guardrail_is_off_when_its_limit_is_none(settings: Settings, setting: str, guardrail: str):
    """Only the guardrail whose limit is None is off; the other still trips on its fault."""
    rng = np.random.default_rng(19)
    candidate = traffic(rng, 300, log_odds_shift=3.0, disagreement=0.9)
    off = settings.model_copy(update={setting: None})
    results = judge(candidate, traffic(rng, 2_700), off, steps=3)
    statuses = {result.name: result.status for result in results}
    assert statuses[guardrail] == OFF
    assert {statuses["score_drift"], statuses["agreement"]} == {OFF, TRIP}
