"""Model cards: one Markdown page per model version, logged as ``model_card.md`` on its run.

Whoever decides to trust a version, or to roll back to one, should not need to piece it
together from five MLflow pages: the card states the data window, the features, metrics
overall and per slice, the gate's decision with every reason, the promotion outcome and
the lineage back to the code and the Airflow run. After Mitchell et al., "Model Cards for
Model Reporting" (2019), https://arxiv.org/abs/1810.03993.

Everything comes from the registry, so a card can be (re)written for any version at any
time; write it after `registry.promote` so it carries the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow

from churnloop import registry
from churnloop.schema import LABEL_DELAY_DAYS
from churnloop.settings import Settings
from churnloop.training.challenger import LINEAGE_TAG_PREFIX
from churnloop.training.gate import METRICS, Decision, format_number

CARD_ARTIFACT = "model_card.md"
HOLDOUT_PREFIX = "holdout_"


@dataclass(frozen=True)
class CardFacts:
    """What a card states about one version, gathered from the registry and its run."""

    model_name: str
    version: int
    aliases: list[str]
    run_id: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    features: list[str]
    decision: Decision | None


def card_facts(settings: Settings, version: int) -> CardFacts:
    client = registry.connect(settings)
    model_version = registry.model_version(settings, version)
    run = client.get_run(model_version.run_id)
    info = mlflow.models.get_model_info(registry.model_uri(settings, version))
    return CardFacts(
        model_name=settings.model_name,
        version=version,
        aliases=sorted(a for a, v in registry.aliases(settings).items() if v == version),
        run_id=model_version.run_id,
        tags=dict(model_version.tags),
        params=dict(run.data.params),
        metrics={
            key.removeprefix(HOLDOUT_PREFIX): value
            for key, value in run.data.metrics.items()
            if key.startswith(HOLDOUT_PREFIX)
        },
        features=info.signature.inputs.input_names() if info.signature else [],
        decision=registry.recorded_decision(settings, version),
    )


def render_model_card(facts: CardFacts) -> str:
    """The card as Markdown."""
    tags, params = facts.tags, facts.params
    aliases = ", ".join(f"`@{alias}`" for alias in facts.aliases) or "none"
    promotion = tags.get(registry.PROMOTION_TAG, "not decided yet")
    sections = [
        f"# Model card: {facts.model_name} version {facts.version}",
        f"Aliases now: {aliases}. Promotion: {promotion}.",
        "## Intended use\n\n"
        f"Ranks customers by the probability that they churn within {LABEL_DELAY_DAYS} days of "
        "a daily snapshot, so that retention work reaches the riskiest first. The scores are "
        "LightGBM's, not recalibrated: check `plots/calibration.png` before reading them as "
        f"probabilities. Labels mature {LABEL_DELAY_DAYS} days late, so the newest month is "
        "never in the training data.",
        "## Data\n\n"
        + _bullets(
            [
                (
                    "window",
                    f"{tags.get('data_window_start', '?')} to "
                    f"{tags.get(registry.TRAINING_DATA_END, '?')}",
                ),
                ("holdout from", params.get("holdout_start", "?")),
                ("training rows", params.get("train_rows", "?")),
                ("holdout rows", params.get("holdout_rows", "?")),
                ("training dataset digest", f"`{tags.get('dataset_digest', '?')}`"),
            ]
        ),
        f"## Features\n\nFeatureService `{tags.get('feature_service', '?')}`, "
        f"{len(facts.features)} model inputs: " + ", ".join(f"`{name}`" for name in facts.features),
        "## Metrics on the holdout\n\n" + _metrics_table(facts),
    ]
    decision = facts.decision
    if decision is None:
        sections.append("## Evaluation gate\n\nNot evaluated yet.")
    else:
        sections.append("## Metrics per slice\n\n" + _slices_table(decision))
        sections.append(
            f"## Evaluation gate: {decision.verdict}\n\n"
            + _markdown_table(
                ["check", "status", "observed", "threshold", "reason"],
                [
                    [
                        c.name,
                        c.status,
                        format_number(c.observed),
                        format_number(c.threshold),
                        c.message,
                    ]
                    for c in decision.checks
                ],
            )
        )
    forced = tags.get(registry.FORCED_REASON_TAG)
    if forced:
        sections.append(f"Promotion was forced by a person: {forced}")
    lineage = [
        ("MLflow run", f"`{facts.run_id}`"),
        ("model URI", f"`models:/{facts.model_name}/{facts.version}`"),
        ("git sha", f"`{tags.get('git_sha', 'unknown')}`"),
    ] + [
        (f"Airflow {key.removeprefix(LINEAGE_TAG_PREFIX)}", f"`{value}`")
        for key, value in sorted(tags.items())
        if key.startswith(LINEAGE_TAG_PREFIX)
    ]
    sections.append("## Lineage\n\n" + _bullets(lineage))
    return "\n\n".join(sections) + "\n"


def log_model_card(settings: Settings, version: int) -> str:
    """Render the card of ``version`` and log it on its run; returns the artifact's URI."""
    facts = card_facts(settings, version)
    client = registry.connect(settings)
    client.log_text(facts.run_id, render_model_card(facts), CARD_ARTIFACT)
    return f"{client.get_run(facts.run_id).info.artifact_uri}/{CARD_ARTIFACT}"


def _metrics_table(facts: CardFacts) -> str:
    champion = (facts.decision.champion_metrics if facts.decision else None) or {}
    rows = [
        [name, format_number(facts.metrics.get(name)), format_number(champion.get(name))]
        for name in METRICS
    ]
    return _markdown_table(["metric", "this version", "champion on the same holdout"], rows)


def _slices_table(decision: Decision) -> str:
    rows = [item.cells() for item in decision.slices]
    header = ["slice", "rows", "positives", "ROC AUC", "champion ROC AUC", "judged"]
    return _markdown_table(header, rows)


def _bullets(pairs: list[tuple[str, str]]) -> str:
    return "\n".join(f"- {name}: {value}" for name, value in pairs)


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])
