"""Reading the model server's counts for a canary: the exposition `ServingMetrics` writes is
read back per variant (single-variant scoring requests only; the other model's shadow scores
of its traffic), looks are added up, and a restarted server's counts from zero are added
rather than subtracted."""

from __future__ import annotations

import datetime as dt

import numpy as np

from churnloop.canary.evidence import Evidence, VariantEvidence, read_evidence
from churnloop.canary.state import CanaryState
from churnloop.serving.metrics import ServingMetrics
from churnloop.serving.routing import CANDIDATE, CHAMPION, SHADOW

CHAMPION_VERSION, CANDIDATE_VERSION = 3, 4
STARTED = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)


def served(
    metrics: ServingMetrics, version: int, variant: str, *, status: str = "200", seconds=0.002
):
    """One request as `MetricsMiddleware` counts it, and its score."""
    metrics.requests.labels("/predict", status, str(version), variant).inc()
    metrics.latency.labels("/predict", str(version), variant).observe(seconds)
    if status == "200":
        metrics.record_scores(version, variant, np.array([0.3]))


def exposition(metrics: ServingMetrics) -> str:
    return metrics.exposition().decode()


def test_each_variant_reads_its_own_requests_errors_latency_scores_and_agreement():
    metrics = ServingMetrics()
    for _ in range(3):
        served(metrics, CHAMPION_VERSION, CHAMPION)
    served(metrics, CANDIDATE_VERSION, CANDIDATE, seconds=0.2)
    served(metrics, CANDIDATE_VERSION, CANDIDATE, status="503")
    metrics.requests.labels(
        "/predict", "200", f"{CHAMPION_VERSION}+{CANDIDATE_VERSION}", "mixed"
    ).inc()
    metrics.requests.labels("/health", "200", str(CHAMPION_VERSION), CHAMPION).inc()
    metrics.record_scores(CANDIDATE_VERSION, CANDIDATE, np.array([np.nan]))
    metrics.record_scores(CHAMPION_VERSION, SHADOW, np.array([0.2, 0.9]))
    metrics.record_agreement(
        (CANDIDATE_VERSION, CANDIDATE),
        CHAMPION_VERSION,
        np.array([0.9, 0.1]),
        np.array([0.8, 0.7]),
        0.5,
    )

    found = read_evidence(exposition(metrics), CHAMPION_VERSION, CANDIDATE_VERSION)

    assert (found.champion.requests, found.champion.errors) == (3, 0), "/health is not scoring"
    assert (found.candidate.requests, found.candidate.errors) == (2, 1)
    assert found.candidate.latency[-1] == 2 and found.candidate.latency[7] == 1, "one <= 50 ms"
    assert found.candidate.scores[-1] == 1 and found.candidate.nonfinite == 1
    assert found.candidate.shadow_scores[-1] == 2, "the champion's scores of its customers"
    assert found.candidate.shadow_scores[3] == 1 and found.champion.shadow_scores[-1] == 0
    assert (found.candidate.agree, found.candidate.disagree) == (1, 1)
    assert (found.champion.agree, found.champion.disagree) == (0, 0)
    assert found.server_started is not None


def test_looks_add_up_and_a_restarted_server_counts_from_zero():
    first = ServingMetrics()
    for _ in range(5):
        served(first, CANDIDATE_VERSION, CANDIDATE)
    state = CanaryState(CANDIDATE_VERSION, CHAMPION_VERSION, (0.5, 1.0), 60, 0, STARTED, STARTED)
    state = state.counted(read_evidence(exposition(first), CHAMPION_VERSION, CANDIDATE_VERSION))
    assert state.step_evidence.candidate.requests == 5, "the first look counts everything"
    served(first, CANDIDATE_VERSION, CANDIDATE)
    state = state.counted(read_evidence(exposition(first), CHAMPION_VERSION, CANDIDATE_VERSION))
    assert state.step_evidence.candidate.requests == 6

    restarted = ServingMetrics()
    restarted.server_start_time.set(state.last.server_started + 60)
    for _ in range(2):
        served(restarted, CANDIDATE_VERSION, CANDIDATE)
    now = read_evidence(exposition(restarted), CHAMPION_VERSION, CANDIDATE_VERSION)
    state = state.counted(now)

    assert state.step_evidence.candidate.requests == 8, "the new server's 2 added, not -4"
    assert not state.step_evidence.candidate.has_negative()
    assert CanaryState.from_json(state.to_json()) == state
    assert state.counted(None) == state, "a look at a silent server changes nothing"


def test_a_counter_that_went_down_is_read_as_a_restart_even_with_the_same_start_time():
    earlier = Evidence(VariantEvidence(requests=10), VariantEvidence(requests=4), 1.0)
    now = Evidence(VariantEvidence(requests=12), VariantEvidence(requests=1), 1.0)

    assert now.since(earlier) == now
