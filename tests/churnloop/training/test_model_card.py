"""The model card: rendered from the registry, logged next to the version it describes."""

import dataclasses
import datetime as dt

import mlflow

from churnloop import registry
from churnloop.training.baselines import fit_baselines
from churnloop.training.gate import FAILED, Check, Decision, GateConfig, evaluate
from churnloop.training.importance import (
    FeatureImportance,
    Importance,
    feature_importance,
    log_importance,
)
from churnloop.training.intervals import Interval
from churnloop.training.model_card import (
    CARD_ARTIFACT,
    CardFacts,
    log_model_card,
    render_model_card,
)
from churnloop.training.promotion import promote_on_decision
from churnloop.training.split import split_by_time
from tests.churnloop.training_support import (
    FEATURE_SERVICE,
    FEATURES,
    HOLDOUT_DAYS,
    RECORDS_GATE,
    labelled_days,
    register_challenger,
    with_empty_mlflow,
)


def test_card_of_a_promoted_version_states_data_features_metrics_decision_and_lineage(settings):
    settings = with_empty_mlflow(settings)
    frame = labelled_days(dt.date(2026, 1, 1), 8, 300)
    trained, holdout = register_challenger(settings, frame)
    train, _ = split_by_time(frame, HOLDOUT_DAYS)
    baselines = fit_baselines(train, FEATURES, seed=1, max_rows=10_000)
    gate = GateConfig.from_settings(settings, **RECORDS_GATE)
    decision = evaluate(None, trained.model, holdout, gate, baselines)
    promote_on_decision(settings, 1, decision, logical_date=dt.date(2026, 2, 7))
    importance = feature_importance(
        trained.model, holdout, repeats=3, max_rows=10_000, seed=1, confidence=0.95
    )
    log_importance(settings, trained.run_id, importance)

    uri = log_model_card(settings, 1)

    assert uri.endswith(f"/{CARD_ARTIFACT}")
    card = mlflow.artifacts.load_text(f"runs:/{trained.run_id}/{CARD_ARTIFACT}")
    assert card.startswith(f"# Model card: {settings.model_name} version 1")
    assert "Aliases now" not in card and "@challenger" not in card, "aliases move; cards do not"
    assert f"the registered model `{settings.model_name}` in MLflow's Model Registry" in card
    assert "- window: 2026-01-01 to 2026-01-08" in card
    assert f"FeatureService `{FEATURE_SERVICE}`, {len(FEATURES)} model inputs" in card
    assert all(f"`{name}`" in card for name in FEATURES)
    assert f"| roc_auc | {trained.metrics['roc_auc']:.4g} | - |" in card
    assert "## Evaluation gate: blessed" in card
    assert "## Evaluation gate: blessed (bootstrap)" in card
    assert "| noninferiority | skipped | - | 0.01 | no champion yet (bootstrap) |" in card
    assert "## Baselines on the same holdout" in card
    assert "| metric | challenger | champion | logistic_regression | single_feature |" in card
    assert f"ROC AUC gain over the best baseline ({decision.best_baseline})" in card
    assert "| plan=basic |" in card and "| age_band=" in card and "| tenure_bucket=" in card
    assert "Promotion decision: blessed by the evaluation gate." in card
    assert f"- MLflow run: `{trained.run_id}`" in card
    assert "- Airflow dag_id: `continuous_training`" in card
    assert f"- training dataset digest: `{trained.dataset_digest}`" in card
    unearned = card.split("## Features that do not earn their place")[1].split("## ")[0]
    assert f"{len(importance.unearned)} of {len(FEATURES)} features" in unearned
    assert importance.unearned, "some of the simulator's columns carry no signal"
    for feature in importance.features:
        row = f"| {feature.name} | {feature.gain:.4g} | {feature.drop.describe()} |"
        assert (row in unearned) == (not feature.earns), feature.name


def test_card_of_a_forced_or_unjudged_version_says_so():
    rejected = Decision(
        blessed=False,
        comparison="inferior",
        checks=(Check("min_roc_auc", FAILED, 0.55, 0.65, "ROC AUC 0.55 | below 0.65"),),
        slices=(),
        challenger_metrics={"roc_auc": 0.55},
        champion_metrics={"roc_auc": 0.8},
        baseline_metrics={},
        change=None,
        best_baseline=None,
        baseline_gain=None,
    )
    facts = CardFacts(
        model_name="churn-model",
        version=4,
        run_id="abc",
        tags={registry.FORCED_REASON_TAG: "INC-42", registry.PROMOTION_TAG: "forced: INC-42"},
        params={},
        metrics={"roc_auc": 0.55},
        features=["age"],
        decision=rejected,
    )

    card = render_model_card(facts)
    unjudged = render_model_card(CardFacts(**{**facts.__dict__, "decision": None, "tags": {}}))

    assert "## Evaluation gate: rejected (inferior)" in card
    assert "| min_roc_auc | failed | 0.55 | 0.65 | ROC AUC 0.55 \\| below 0.65 |" in card
    assert "| roc_auc | 0.55 | 0.8 |" in card
    assert "Promotion was forced by a person: INC-42" in card
    assert "Not evaluated yet." in unjudged and "Promotion decision: not decided yet." in unjudged


def test_card_lists_features_that_do_not_earn_their_place_or_says_there_are_none():
    def feature(name: str, gain: float, low: float) -> FeatureImportance:
        return FeatureImportance(name, gain, Interval(low + 0.01, low, low + 0.02, 0.9))

    measured = Importance(
        (feature("age", 12.5, 0.003), feature("re|gion", 0.0, 0.0), feature("plan", 3.0, -0.01)),
        rows=5_000,
        repeats=4,
        seed=9,
        confidence=0.9,
    )
    facts = CardFacts("churn-model", 2, "abc", {}, {}, {}, ["age"], None, measured)

    card = render_model_card(facts)
    earning = dataclasses.replace(measured, features=measured.features[:1])
    clean = render_model_card(CardFacts(**{**facts.__dict__, "importance": earning}))
    older = render_model_card(CardFacts(**{**facts.__dict__, "importance": None}))

    section = card.split("## Features that do not earn their place\n\n")[1].split("\n## ")[0]
    assert "2 of 3 features do not earn their place" in section and "90% interval" in section
    assert "5000 holdout rows, 4 shuffles each, seed 9" in section
    assert "| re\\|gion | 0 | 0.01 [0, 0.02] |" in section
    assert "| plan | 3 | 0 [-0.01, 0.01] |" in section
    assert "| age |" not in section
    assert "## Features that do not earn their place\n\nNone. " in clean
    assert "Not recorded: this version was not evaluated" in older
