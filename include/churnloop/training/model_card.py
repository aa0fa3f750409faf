"""Model cards: one Markdown page per model version, logged as ``model_card.md`` on its run.

The card states the data window, features, metrics overall and per slice, the gate's
decision, the features that do not earn their place, the promotion decision and the
lineage. Everything comes from the registry, so a card can be (re)written for any version
at any time.

A card holds only what does not change once its version is judged: it is logged once,
by the promotion step after the promotion decision, which it states. Aliases move later
(the next challenger, a rollback, a failed deployment), so the card names the registry
for them rather than listing them: a list would read true for ever and soon be false.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow

from churnloop import registry
from churnloop.schema import LABEL_DELAY_DAYS
from churnloop.settings import Settings
from churnloop.training.decision_text import (
    IMPORTANCE_HEADER,
    SLICE_HEADER,
    evidence_lines,
    importance_summary,
    metric_columns,
    metric_rows,
    unearned_rows,
)
from churnloop.training.gate import Decision
from churnloop.training.importance import Importance, recorded_importance
from churnloop.training.metrics import METRICS, format_number
from churnloop.training.promotion import recorded_decision

CARD_ARTIFACT = "model_card.md"
HOLDOUT_PREFIX = "holdout_"


@dataclass(frozen=True)
class CardFacts:
    """What a card states about one version, gathered from the registry and its run."""

    model_name: str
    version: int
    run_id: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    features: list[str]
    decision: Decision | None
    importance: Importance | None = None


def card_facts(settings: Settings, version: int) -> CardFacts:
    client = registry.connect(settings)
    model_version = registry.model_version(settings, version)
    run = client.get_run(model_version.run_id)
    info = mlflow.models.get_model_info(registry.model_uri(settings, version))
    return CardFacts(
        model_name=settings.model_name,
        version=version,
        run_id=model_version.run_id,
        tags=dict(model_version.tags),
        params=dict(run.data.params),
        metrics={
            key.removeprefix(HOLDOUT_PREFIX): value
            for key, value in run.data.metrics.items()
            if key.startswith(HOLDOUT_PREFIX)
        },
        features=info.signature.inputs.input_names() if info.signature else [],
        decision=recorded_decision(settings, version),
        importance=recorded_importance(settings, model_version.run_id),
    )


def render_model_card(facts: CardFacts) -> str:
    """The card as Markdown."""
    promotion = facts.tags.get(registry.PROMOTION_TAG, "not decided yet")
    sections = [
        f"# Model card: {facts.model_name} version {facts.version}",
        f"Promotion decision: {promotion}. Which version serves now, and every move of "
        f"`@champion` since: the registered model `{facts.model_name}` in MLflow's Model "
        "Registry (its aliases, and the champion history in its description).",
        _intended_use(),
        _data_section(facts),
        _features_section(facts),
        "## Metrics on the holdout\n\n" + _metrics_table(facts),
        *_gate_sections(facts.decision),
        _importance_section(facts.importance),
    ]
    forced = facts.tags.get(registry.FORCED_REASON_TAG)
    if forced:
        sections.append(f"Promotion was forced by a person: {forced}")
    sections.append(_lineage_section(facts))
    return "\n\n".join(sections) + "\n"


def log_model_card(settings: Settings, version: int) -> str:
    """Render the card of ``version`` and log it on its run; returns the artifact's URI."""
    facts = card_facts(settings, version)
    client = registry.connect(settings)
    client.log_text(facts.run_id, render_model_card(facts), CARD_ARTIFACT)
    return f"{client.get_run(facts.run_id).info.artifact_uri}/{CARD_ARTIFACT}"


def _intended_use() -> str:
    return (
        "## Intended use\n\n"
        f"Ranks customers by the probability that they churn within {LABEL_DELAY_DAYS} days of "
        "a daily snapshot, so that retention work reaches the riskiest first. The scores are "
        "calibrated on the newest training days when that measurably helps (tag "
        "`calibration`; `holdout_ece` and `plots/calibration.png` show how far to read them as "
        f"probabilities). Labels mature {LABEL_DELAY_DAYS} days late, so the newest month is "
        "never in the training data."
    )


def _data_section(facts: CardFacts) -> str:
    tags, params = facts.tags, facts.params
    start = tags.get(registry.DATA_WINDOW_START_TAG, "?")
    end = tags.get(registry.TRAINING_DATA_END_TAG, "?")
    facts_of_data = [
        ("window", f"{start} to {end}"),
        ("holdout from", params.get("holdout_start", "?")),
        ("training rows", params.get("train_rows", "?")),
        ("holdout rows", params.get("holdout_rows", "?")),
        ("training dataset digest", f"`{tags.get(registry.DATASET_DIGEST_TAG, '?')}`"),
    ]
    return "## Data\n\n" + _bullets(facts_of_data)


def _features_section(facts: CardFacts) -> str:
    service = facts.tags.get(registry.FEATURE_SERVICE_TAG, "?")
    names = ", ".join(f"`{name}`" for name in facts.features)
    return f"## Features\n\nFeatureService `{service}`, {len(facts.features)} model inputs: {names}"


def _gate_sections(decision: Decision | None) -> list[str]:
    """The gate's evidence, metrics per slice and checks, or a line saying it has not judged."""
    if decision is None:
        return ["## Evaluation gate\n\nNot evaluated yet."]
    checks = [
        [c.name, c.status, format_number(c.observed), format_number(c.threshold), c.message]
        for c in decision.checks
    ]
    header = ["check", "status", "observed", "threshold", "reason"]
    evidence = "\n".join(f"- {line}" for line in evidence_lines(decision)) or "- bootstrap"
    return [
        "## Baselines on the same holdout\n\n"
        + _markdown_table(["metric", *metric_columns(decision)], metric_rows(decision)),
        "## Metrics per slice\n\n"
        + "Slices with too few positives or negatives are reported, never judged.\n\n"
        + _markdown_table(SLICE_HEADER, [item.cells() for item in decision.slices]),
        f"## Evaluation gate: {decision.verdict} ({decision.comparison})\n\n"
        + evidence
        + "\n\n"
        + _markdown_table(header, checks),
    ]


def _importance_section(importance: Importance | None) -> str:
    """The features that do not earn their place, or why the card cannot tell."""
    title = "## Features that do not earn their place\n\n"
    if importance is None:
        return title + "Not recorded: this version was not evaluated, or was before importance was."
    if not importance.unearned:
        return title + "None. " + importance_summary(importance) + "."
    table = _markdown_table(IMPORTANCE_HEADER, unearned_rows(importance))
    return title + importance_summary(importance) + ".\n\n" + table


def _lineage_section(facts: CardFacts) -> str:
    prefix = registry.LINEAGE_TAG_PREFIX
    lineage = [
        ("MLflow run", f"`{facts.run_id}`"),
        ("model URI", f"`models:/{facts.model_name}/{facts.version}`"),
        ("git sha", f"`{facts.tags.get(registry.GIT_SHA_TAG, 'unknown')}`"),
    ] + [
        (f"Airflow {key.removeprefix(prefix)}", f"`{value}`")
        for key, value in sorted(facts.tags.items())
        if key.startswith(prefix)
    ]
    return "## Lineage\n\n" + _bullets(lineage)


def _metrics_table(facts: CardFacts) -> str:
    champion = (facts.decision.champion_metrics if facts.decision else None) or {}
    rows = [
        [name, format_number(facts.metrics.get(name)), format_number(champion.get(name))]
        for name in METRICS
    ]
    return _markdown_table(["metric", "this version", "champion on the same holdout"], rows)


def _bullets(pairs: list[tuple[str, str]]) -> str:
    return "\n".join(f"- {name}: {value}" for name, value in pairs)


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])
