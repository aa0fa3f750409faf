"""What the model server counted for the champion and the candidate, read from its
``/metrics`` and added up across the looks of a canary.

The server's counters start from zero when it restarts; `churnloop_server_start_time_seconds`
tells a restarted server from a running one, so a look after a restart adds what the new
server counted instead of subtracting across the restart. Only requests one variant answered
alone count for errors and latency (a batch both answered is labelled ``mixed``). During a
canary each model shadows only the other's traffic, so a version's ``shadow`` scores are
its scores of the other variant's customers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from churnloop.serving.metrics import LATENCY_BUCKETS, SCORE_BUCKETS
from churnloop.serving.routing import CANDIDATE, CHAMPION, SHADOW

SCORING_ENDPOINTS = ("/predict", "/explain")
LATENCY_EDGES = (*LATENCY_BUCKETS, math.inf)
SCORE_EDGES = (*SCORE_BUCKETS, math.inf)
START_TIME = "churnloop_server_start_time_seconds"


@dataclass(frozen=True)
class VariantEvidence:
    """One variant's counts: requests and 5xx answers, cumulative latency and score
    histograms (counts at or below each edge of `LATENCY_EDGES`, `SCORE_EDGES`), NaN or
    infinite scores, the other model's scores of this variant's traffic in shadow (same
    histogram), and the shadow-scored instances on which the two labels agreed or not."""

    requests: int = 0
    errors: int = 0
    latency: tuple[int, ...] = (0,) * len(LATENCY_EDGES)
    scores: tuple[int, ...] = (0,) * len(SCORE_EDGES)
    shadow_scores: tuple[int, ...] = (0,) * len(SCORE_EDGES)
    nonfinite: int = 0
    agree: int = 0
    disagree: int = 0

    def combine(self, other: VariantEvidence, sign: int = 1) -> VariantEvidence:
        """Field by field ``self + sign * other``."""
        values = {}
        for name, mine in dataclasses.asdict(self).items():
            theirs = getattr(other, name)
            if isinstance(mine, tuple):
                values[name] = tuple(a + sign * b for a, b in zip(mine, theirs, strict=True))
            else:
                values[name] = mine + sign * theirs
        return VariantEvidence(**values)

    def has_negative(self) -> bool:
        return any(
            min(value) < 0 if isinstance(value, tuple) else value < 0
            for value in dataclasses.astuple(self)
        )

    @property
    def scored(self) -> int:
        """Scores served, finite or not."""
        return self.scores[-1] + self.nonfinite

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VariantEvidence:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class Evidence:
    """Both variants' counts, and which server run counted them (its start time)."""

    champion: VariantEvidence = field(default_factory=VariantEvidence)
    candidate: VariantEvidence = field(default_factory=VariantEvidence)
    server_started: float | None = None

    def since(self, earlier: Evidence | None) -> Evidence:
        """What was counted after ``earlier``: everything, if the server restarted since."""
        if earlier is None or earlier.server_started != self.server_started:
            return self
        delta = Evidence(
            self.champion.combine(earlier.champion, -1),
            self.candidate.combine(earlier.candidate, -1),
            self.server_started,
        )
        restarted = delta.champion.has_negative() or delta.candidate.has_negative()
        return self if restarted else delta

    def plus(self, more: Evidence) -> Evidence:
        return Evidence(
            self.champion.combine(more.champion),
            self.candidate.combine(more.candidate),
            more.server_started,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        return cls(
            VariantEvidence.from_dict(data["champion"]),
            VariantEvidence.from_dict(data["candidate"]),
            data.get("server_started"),
        )


def read_evidence(metrics_text: str, champion: int, candidate: int) -> Evidence:
    """The champion's and the candidate's counts in a ``/metrics`` exposition."""
    samples = [
        sample
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
    ]
    started = [sample.value for sample in samples if sample.name == START_TIME]
    return Evidence(
        _variant(samples, str(champion), CHAMPION, str(candidate)),
        _variant(samples, str(candidate), CANDIDATE, str(champion)),
        min(started) if started else None,
    )


def _variant(samples: list[Sample], version: str, variant: str, other: str) -> VariantEvidence:
    mine = [s for s in samples if _labelled(s, version, variant)]
    shadowed = [s for s in samples if _labelled(s, other, SHADOW)]
    scoring = [s for s in mine if s.labels.get("endpoint") in SCORING_ENDPOINTS]
    requests = [s for s in scoring if s.name == "churnloop_requests_total"]
    agreement = [
        s
        for s in mine
        if s.name == "churnloop_shadow_agreement_total" and s.labels["shadow_version"] == other
    ]
    return VariantEvidence(
        requests=_total(requests),
        errors=_total(s for s in requests if s.labels["status"].startswith("5")),
        latency=_cumulative(scoring, "churnloop_request_duration_seconds_bucket", LATENCY_EDGES),
        scores=_cumulative(mine, "churnloop_prediction_score_bucket", SCORE_EDGES),
        shadow_scores=_cumulative(shadowed, "churnloop_prediction_score_bucket", SCORE_EDGES),
        nonfinite=_total(s for s in mine if s.name == "churnloop_nonfinite_predictions_total"),
        agree=_total(s for s in agreement if s.labels["agreement"] == "agree"),
        disagree=_total(s for s in agreement if s.labels["agreement"] == "disagree"),
    )


def _labelled(sample: Sample, version: str, variant: str) -> bool:
    return sample.labels.get("model_version") == version and sample.labels.get("variant") == variant


def _total(samples: Iterable[Sample]) -> int:
    return round(sum(sample.value for sample in samples))


def _cumulative(samples: list[Sample], name: str, edges: tuple[float, ...]) -> tuple[int, ...]:
    """Counts at or below each edge, summed over the series (endpoints) of ``name``."""
    totals = dict.fromkeys(edges, 0.0)
    for sample in samples:
        if sample.name == name:
            totals[float(sample.labels["le"])] += sample.value
    return tuple(round(totals[edge]) for edge in edges)
