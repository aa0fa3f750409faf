"""The steps of a ``continuous_training`` run, one function per Airflow task.

Each step reads what it needs from the lake or the registry and returns a small
JSON-safe dict for the next task; nothing large travels through XCom. The training set
takes the same road as daily data: staged under ``raw/training_sets/dt=<as-of>``, judged
by its Great Expectations suite, then published to ``validated/`` or quarantined. Every
later step (and a person re-running one) works on the very rows the challenger was
trained and judged on.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pandas as pd

from churnloop import schema, storage
from churnloop.settings import Settings
from churnloop.training.plan import TrainingPlan


def save_training_set(settings: Settings, plan: TrainingPlan) -> str:
    """Build the window's point-in-time training set (Feast) and stage it for validation."""
    from churnloop.features.store import training_set

    table = training_set(settings, plan.window_start, plan.window_end)
    dataset = schema.raw_dataset(schema.TRAINING_SETS)
    uri = storage.lake(settings).write_table(dataset, plan.as_of, table)
    window = f"{plan.window_start}..{plan.window_end}"
    print(f"training set: {table.num_rows:,} labelled snapshots {window} -> {uri}")
    return uri


def load_training_set(settings: Settings, plan: TrainingPlan) -> pd.DataFrame:
    """The validated training set of the run; only what passed its suite is ever read."""
    dataset = schema.validated_dataset(schema.TRAINING_SETS)
    return storage.lake(settings).read_table(dataset, plan.as_of).to_pandas()


def check_training_set(settings: Settings, plan: TrainingPlan) -> str | None:
    """Run the ``training_sets`` suite; returns its Data Docs URL.

    Raises ``DataValidationError`` naming each failed expectation; the set is then in
    quarantine with its result.
    """
    from churnloop.validation.partition import validate_partition

    window = {
        "window_start": pd.Timestamp(plan.window_start, tz="UTC"),
        "window_end": pd.Timestamp(plan.window_end + dt.timedelta(days=1), tz="UTC"),
    }
    outcome = validate_partition(settings, schema.TRAINING_SETS, plan.as_of, window)
    return outcome.data_docs_url


def train(settings: Settings, plan: TrainingPlan, lineage: dict[str, str]) -> dict[str, Any]:
    from churnloop.features.store import FEATURE_SERVICE, feature_names
    from churnloop.training.challenger import split_by_time, train_challenger

    train_rows, holdout = split_by_time(load_training_set(settings, plan), plan.holdout_days)
    trained = train_challenger(
        settings,
        train_rows,
        holdout,
        feature_names=feature_names(settings),
        feature_service=FEATURE_SERVICE,
        lineage={
            **lineage,
            "logical_date": plan.as_of.isoformat(),
            "trigger": plan.trigger,
            "drift_events": json.dumps(plan.drift_events, sort_keys=True),
        },
    )
    print(f"challenger: {trained.name} v{trained.version}, holdout {trained.metrics}")
    return trained.to_dict()


def evaluate(settings: Settings, plan: TrainingPlan, trained: dict[str, Any]) -> dict[str, Any]:
    """Judge the challenger against the champion on the same holdout; tag the version."""
    from churnloop import registry
    from churnloop.training.challenger import split_by_time
    from churnloop.training.gate import GateConfig
    from churnloop.training.gate import evaluate as judge

    _, holdout = split_by_time(load_training_set(settings, plan), plan.holdout_days)
    champion = registry.champion_version(settings)
    champion_model = None if champion is None else registry.load_model(settings, registry.CHAMPION)
    challenger_model = registry.load_model(settings, trained["version"])
    gate = GateConfig.from_settings(settings, **plan.gate_overrides)
    decision = judge(champion_model, challenger_model, holdout, gate)
    registry.record_decision(settings, trained["version"], decision)
    print(decision.as_table())
    return decision.to_dict()


def promote(
    settings: Settings, plan: TrainingPlan, trained: dict[str, Any], decision: dict[str, Any]
) -> dict[str, Any]:
    """Apply the decision, then log the model card, which tells both."""
    from dataclasses import asdict

    from churnloop import registry
    from churnloop.training.gate import Decision
    from churnloop.training.model_card import log_model_card

    result = registry.promote(
        settings,
        trained["version"],
        decision=Decision.from_dict(decision),
        logical_date=plan.as_of,
        force_reason=plan.force_reason,
        dry_run=plan.dry_run,
    )
    verb = "promoted" if result.promoted else "not promoted"
    print(f"v{result.version} {verb}: {result.reason}")
    print(f"model card: {log_model_card(settings, result.version)}")
    return asdict(result)
