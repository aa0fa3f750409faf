"""Does every feature earn its place? LightGBM's gain and permutation importance on the holdout.

A feature earns its place when the model splits on it (total gain above zero) and
shuffling it on the holdout lowers ROC AUC by an amount whose interval lies above zero.
The result is informative: the gate does not read it. It is logged on the challenger's run
(``importance/importance.json``), printed in the decision log and listed on the model card.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from churnloop import registry
from churnloop.settings import Settings
from churnloop.training.decision_text import importance_text
from churnloop.training.frames import at_most, with_numpy_dtypes
from churnloop.training.intervals import Interval, auc_difference
from churnloop.training.metrics import binary_labels, score
from churnloop.training.pipeline import lightgbm_classifier

IMPORTANCE_FOLDER = "importance"
IMPORTANCE_ARTIFACT = f"{IMPORTANCE_FOLDER}/importance.json"
UNEARNED_METRIC = "importance_unearned_features"


@dataclass(frozen=True)
class FeatureImportance:
    """One input's total gain in the booster and the ROC AUC drop when it is shuffled."""

    name: str
    gain: float
    drop: Interval

    @property
    def earns(self) -> bool:
        return self.gain > 0 and self.drop.low > 0


@dataclass(frozen=True)
class Importance:
    """Every input's importance, in the model's input order, and how it was measured."""

    features: tuple[FeatureImportance, ...]
    rows: int
    repeats: int
    seed: int
    confidence: float

    @property
    def unearned(self) -> list[FeatureImportance]:
        return [feature for feature in self.features if not feature.earns]

    def describe(self) -> str:
        """The features that do not earn their place as a text table, for the task log."""
        return importance_text(self)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Importance:
        features = tuple(
            FeatureImportance(item["name"], item["gain"], Interval(**item["drop"]))
            for item in data["features"]
        )
        return cls(**{**data, "features": features})


def feature_importance(
    model: Pipeline,
    holdout: pd.DataFrame,
    *,
    repeats: int,
    max_rows: int,
    seed: int,
    confidence: float,
) -> Importance:
    """Gain and permutation importance of each of ``model``'s inputs on ``holdout``.

    At most ``max_rows`` rows (a seeded sample) are scored; each input the booster splits
    on is shuffled ``repeats`` times with a generator seeded by ``seed``, so the result
    repeats exactly. An input it never splits on cannot move a score: its drop is exactly
    zero, and no prediction is spent on it.
    """
    rows = at_most(holdout, max_rows, seed)
    labels = binary_labels(rows, "holdout")
    scores = score(model, rows, "challenger")
    names = list(model.feature_names_in_)
    inputs = model[:-1].transform(with_numpy_dtypes(rows[names])).reset_index(drop=True)
    gains = total_gain(model)
    generator = np.random.default_rng(seed)
    unmoved = Interval(0.0, 0.0, 0.0, confidence)
    features = tuple(
        FeatureImportance(
            name,
            gains[name],
            shuffled_drop(model[-1], inputs, name, labels, scores, repeats, generator, confidence)
            if gains[name] > 0
            else unmoved,
        )
        for name in names
    )
    return Importance(features, len(rows), repeats, seed, confidence)


def shuffled_drop(
    classifier: Any,
    inputs: pd.DataFrame,
    name: str,
    labels: np.ndarray,
    scores: np.ndarray,
    repeats: int,
    generator: np.random.Generator,
    confidence: float,
) -> Interval:
    """ROC AUC(``scores``) - ROC AUC(scores with ``name`` shuffled), averaged over repeats.

    ``inputs`` are the rows as the pipeline's preprocessing hands them to ``classifier``
    (its last step): the preprocessing maps each column on its own, under its own name
    (`total_gain` checks the names), so shuffling a transformed column is shuffling the
    input, without transforming the rows again per shuffle.

    Each repeat's paired DeLong interval covers the holdout's sampling error, which an
    interval over repeats alone (mean +- t * std / sqrt(repeats)) misses: a pure-noise
    column's original order is just one more shuffle, so that interval often lies above
    zero for noise (measured in docs/ablation.md). The half-width is the mean of the
    repeats' half-widths, an upper bound of the mean's: the interval is conservative.
    """
    column = inputs[name].to_numpy()
    drops, halves = [], []
    for _ in range(repeats):
        shuffled = inputs.assign(**{name: column[generator.permutation(len(column))]})
        shuffled_scores = classifier.predict_proba(shuffled)[:, 1]
        drop = auc_difference(labels, scores, shuffled_scores, confidence)
        drops.append(drop.estimate)
        halves.append((drop.high - drop.low) / 2)
    estimate, half = float(np.mean(drops)), float(np.mean(halves))
    return Interval(estimate, estimate - half, estimate + half, confidence)


def total_gain(model: Pipeline) -> dict[str, float]:
    """LightGBM's total split gain per input of ``model``, by the pipeline's input names.

    The preprocessing keeps one column per input under its own name, so the booster's
    feature names are the inputs'; anything else (e.g. one-hot columns) is refused.
    """
    booster = lightgbm_classifier(model).booster_
    gains = booster.feature_importance(importance_type="gain")
    by_name = dict(zip(booster.feature_name(), gains.astype(float).tolist(), strict=True))
    inputs = set(model.feature_names_in_)
    if set(by_name) != inputs:
        unmatched = sorted(set(by_name) ^ inputs)
        raise ValueError(f"the booster's features are not the pipeline's inputs: {unmatched}")
    return by_name


def log_importance(settings: Settings, run_id: str, importance: Importance) -> None:
    """Keep ``importance`` as JSON on the run (for the card) and count what does not earn."""
    client = registry.connect(settings)
    client.log_dict(run_id, importance.to_dict(), IMPORTANCE_ARTIFACT)
    client.log_metric(run_id, UNEARNED_METRIC, len(importance.unearned))


def recorded_importance(settings: Settings, run_id: str) -> Importance | None:
    """What `log_importance` kept on a run, or None (a version from before it existed)."""
    client = registry.connect(settings)
    stored = {item.path for item in client.list_artifacts(run_id, IMPORTANCE_FOLDER)}
    if IMPORTANCE_ARTIFACT not in stored:
        return None
    return Importance.from_dict(mlflow.artifacts.load_dict(f"runs:/{run_id}/{IMPORTANCE_ARTIFACT}"))
