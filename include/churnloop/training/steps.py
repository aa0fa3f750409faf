"""The steps of a ``continuous_training`` run, one function per Airflow task, named after it.

Each takes the plan as its XCom dict (`TrainingPlan.to_dict`) and returns a small JSON-safe
value for the next task; every step after validation reads the validated training set.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pandas as pd

from churnloop import schema, storage
from churnloop.settings import Settings
from churnloop.training.plan import TrainingPlan

log = logging.getLogger(__name__)
"""Decisions go to the task's main log through logging: Airflow forwards printed lines on
another channel, so they could land after the log's collapsed "Post Execute" group."""


def build_training_set(settings: Settings, planned: dict[str, Any]) -> str:
    """Build the window's point-in-time training set (Feast) and stage it for validation.

    It is staged under ``raw/training_sets/dt=<as-of>``, as daily data is, until its suite
    publishes it to ``validated/`` or quarantines it.
    """
    from churnloop.features.training_set import training_set

    plan = TrainingPlan.from_dict(planned)
    table = training_set(settings, plan.window_start, plan.window_end)
    dataset = schema.raw_dataset(schema.TRAINING_SETS)
    uri = storage.lake(settings).write_table(dataset, plan.as_of, table)
    window = f"{plan.window_start}..{plan.window_end}"
    log.info("training set: %s labelled snapshots %s -> %s", f"{table.num_rows:,}", window, uri)
    return uri


def validate_training_set(settings: Settings, planned: dict[str, Any]) -> str | None:
    """Run the ``training_sets`` suite; returns its Data Docs URL.

    Raises ``DataValidationError`` naming each failed expectation; the set is then in
    quarantine with its result.
    """
    from churnloop.validation.partition import validate_partition

    plan = TrainingPlan.from_dict(planned)
    window = {
        "window_start": pd.Timestamp(plan.window_start, tz="UTC"),
        "window_end": pd.Timestamp(plan.window_end + dt.timedelta(days=1), tz="UTC"),
    }
    outcome = validate_partition(settings, schema.TRAINING_SETS, plan.as_of, window)
    return outcome.data_docs_url


def train_challenger(
    settings: Settings, planned: dict[str, Any], lineage: dict[str, str]
) -> dict[str, Any]:
    """Tune (within the plan's budget), fit, log and register the challenger; ``lineage``
    names the Airflow run.

    The MLflow run is named for the plan (``train as of <day> (<trigger>)``), its source is
    this task (``<dag_id>.train_challenger``), and its note and the version's description
    say why it trained and on what.
    """
    from churnloop.features.definition import FEATURE_SERVICE
    from churnloop.features.feast_config import feature_names
    from churnloop.training.challenger import base_params, train_and_register
    from churnloop.training.run_story import RunStory
    from churnloop.training.split import split_by_time
    from churnloop.training.tuning import tune

    plan = TrainingPlan.from_dict(planned)
    train_rows, holdout = split_by_time(load_training_set(settings, plan), plan.holdout_days)
    names = feature_names(settings)
    params, source = base_params(settings)
    tuning = tune(
        settings,
        train_rows,
        names,
        base_params=params,
        trials=plan.tuning_trials,
        timeout_seconds=plan.tuning_timeout_seconds,
        seed=settings.training_seed,
    )
    log.info("%s", tuning.describe())
    trained = train_and_register(
        settings,
        train_rows,
        holdout,
        feature_names=names,
        feature_service=FEATURE_SERVICE,
        lineage={
            **lineage,
            "logical_date": plan.as_of.isoformat(),
            "trigger": plan.trigger,
            "drift_events": json.dumps(plan.drift_events, sort_keys=True),
        },
        params=tuning.best_params,
        params_source="tuned" if tuning.best_cv_auc is not None else source,
        tuning=tuning,
        story=RunStory(
            name=plan.run_name(),
            source=f"{lineage.get('dag_id', 'continuous_training')}.train_challenger",
            why=plan.why(lineage.get("run_id")),
        ),
    )
    log.info("challenger: %s v%s, holdout %s", trained.name, trained.version, trained.metrics)
    return trained.to_dict()


def evaluate_challenger(
    settings: Settings, planned: dict[str, Any], trained: dict[str, Any]
) -> dict[str, Any]:
    """Judge the challenger against the champion and the baselines on the same holdout.

    The baselines are fitted here, on the challenger's training split; their metrics go on
    the challenger's run, the decision on its version. On that holdout, the ROC and
    precision-recall curves of challenger, champion and baselines on one figure each
    (``plots/roc_vs_champion.png``, ``plots/pr_vs_champion.png``) and the challenger's
    feature importance go on its run: informative, they do not change the verdict.
    """
    from churnloop import registry
    from churnloop.features.feast_config import feature_names
    from churnloop.training.baselines import fit_baselines
    from churnloop.training.gate import GateConfig, judge, score_holdout
    from churnloop.training.importance import feature_importance, log_importance
    from churnloop.training.plots import log_comparison_plots
    from churnloop.training.promotion import record_decision
    from churnloop.training.split import split_by_time

    plan = TrainingPlan.from_dict(planned)
    train_rows, holdout = split_by_time(load_training_set(settings, plan), plan.holdout_days)
    baselines = fit_baselines(
        train_rows, feature_names(settings), settings.training_seed, settings.baseline_max_rows
    )
    champion = registry.champion_version(settings)
    champion_model = None if champion is None else registry.load_model(settings, registry.CHAMPION)
    challenger_model = registry.load_model(settings, trained["version"])
    gate = GateConfig.from_settings(settings, **plan.gate_overrides)
    scored = score_holdout(champion_model, challenger_model, holdout, gate.slice_columns, baselines)
    decision = judge(scored, gate)
    record_decision(settings, trained["version"], decision)
    log.info("%s", decision.describe())
    contenders = {f"challenger v{trained['version']}": scored.challenger}
    if champion is not None:
        contenders[f"champion v{champion.version}"] = scored.champion
    plots = log_comparison_plots(
        settings, trained["run_id"], scored.labels, contenders, scored.baselines
    )
    curves = ", ".join([*contenders, *baselines])
    log.info("holdout curves of %s on the challenger's run: %s", curves, ", ".join(plots))
    importance = feature_importance(
        challenger_model,
        holdout,
        repeats=settings.importance_repeats,
        max_rows=settings.importance_max_rows,
        seed=settings.training_seed,
        confidence=gate.confidence,
    )
    log_importance(settings, trained["run_id"], importance)
    log.info("%s", importance.describe())
    return decision.to_dict()


def promote_challenger(
    settings: Settings, planned: dict[str, Any], trained: dict[str, Any], decision: dict[str, Any]
) -> dict[str, Any]:
    """Apply the decision, then log the model card, which tells both."""
    from churnloop.training.gate import Decision
    from churnloop.training.model_card import log_model_card
    from churnloop.training.promotion import promote_on_decision

    plan = TrainingPlan.from_dict(planned)
    result = promote_on_decision(
        settings,
        trained["version"],
        Decision.from_dict(decision),
        logical_date=plan.as_of,
        force_reason=plan.force_reason,
        dry_run=plan.dry_run,
        canary=bool(plan.canary_steps),
    )
    log.info("%s", result.describe())
    log.info("model card: %s", log_model_card(settings, result.version))
    return result.to_dict()


def load_training_set(settings: Settings, plan: TrainingPlan) -> pd.DataFrame:
    """The validated training set of the run; only what passed its suite is ever read."""
    dataset = schema.validated_dataset(schema.TRAINING_SETS)
    return storage.lake(settings).read_table(dataset, plan.as_of).to_pandas()
