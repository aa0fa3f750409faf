"""One registered model version, ready to serve: loaded once, compiled to score rows
without pandas. `load_served_model` refuses (`ModelLoadError`) a pipeline of another shape
than ``Pipeline(ColumnTransformer, LGBMClassifier)`` (the classifier bare or inside one
isotonic or sigmoid `CalibratedClassifierCV`), or one whose compiled path does not
reproduce the pipeline's own predictions on probe rows.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

from churnloop import registry
from churnloop.redaction import describe_error
from churnloop.serving.single_row import SingleRowPredictor
from churnloop.settings import Settings
from churnloop.training.pipeline import lightgbm_classifier

PROBE_TOLERANCE = 1e-12
"""How far the compiled path may stray from the pipeline on the probe rows (float noise)."""
LINEAGE_TAGS = (
    registry.FEATURE_SERVICE_TAG,
    registry.DATA_WINDOW_START_TAG,
    registry.TRAINING_DATA_END_TAG,
    registry.GIT_SHA_TAG,
)
"""The version tags ``GET /model`` shows as the served model's lineage."""


class ModelLoadError(Exception):
    """A version cannot be served; the message says why. The server keeps its old model."""


@dataclass(frozen=True)
class FeatureProblem:
    """One bad feature value of one row, in the terms of a pydantic validation error."""

    row: int
    feature: str
    message: str
    kind: str


class InvalidFeatures(ValueError):
    """Rows whose features do not fit the model; ``problems`` says which and why."""

    def __init__(self, problems: list[FeatureProblem]) -> None:
        self.problems = problems
        listed = "; ".join(f"row {p.row} {p.feature!r}: {p.message}" for p in problems[:5])
        super().__init__(f"{len(problems)} invalid feature value(s): {listed}")


@dataclass(frozen=True)
class FeatureColumn:
    """One model input: how a request value becomes the booster's float.

    ``codes`` is None for a number. For a category it maps each fitted category to its
    code; as in scikit-learn's ``OrdinalEncoder``, ``None`` is a category like any other
    (unknown unless seen in training) and NaN is missing only if training saw it.
    """

    name: str
    codes: dict[Any, float] | None = None
    unknown_code: float = math.nan
    nan_code: float = math.nan

    @property
    def categorical(self) -> bool:
        return self.codes is not None

    def encode(self, value: Any) -> float:
        """The booster's value for ``value``; raises TypeError naming the expected type."""
        if self.codes is None:
            if value is None:
                return math.nan
            if isinstance(value, int | float | np.number):
                return float(value)
            raise TypeError("Input should be a number or null")
        if isinstance(value, str) or value is None:
            return self.codes.get(value, self.unknown_code)
        if isinstance(value, float) and math.isnan(value):
            return self.nan_code
        raise TypeError("Input should be a string or null")


@dataclass(frozen=True)
class Calibration:
    """A calibrated model's map from the booster's raw score (log-odds) to the probability,
    replayed as `CalibratedClassifierCV` applies it to ``decision_function``: isotonic
    interpolates between its fitted thresholds (clipped at both ends), sigmoid is Platt's
    ``1 / (1 + exp(slope * raw + intercept))``."""

    method: str
    thresholds: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))
    slope: float = 0.0
    intercept: float = 0.0

    def apply(self, raw: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            return np.interp(raw, *self.thresholds)
        return expit(-(self.slope * raw + self.intercept))


@dataclass(frozen=True)
class ModelInfo:
    """What a served version is and where it came from (for ``GET /model`` and the log)."""

    name: str
    version: int
    alias: str
    run_id: str
    tags: dict[str, str]
    loaded_at: dt.datetime

    @property
    def lineage(self) -> dict[str, str | None]:
        """The version tags training writes to trace a model to its data and code."""
        return {"run_id": self.run_id, **{key: self.tags.get(key) for key in LINEAGE_TAGS}}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "training_window": {
                "start": self.tags.get(registry.DATA_WINDOW_START_TAG),
                "end": self.tags.get(registry.TRAINING_DATA_END_TAG),
            },
            "lineage": self.lineage,
            "tags": self.tags,
            "loaded_at": self.loaded_at.isoformat(),
        }


@dataclass(frozen=True)
class Explanation:
    """Per-feature contributions to one prediction's raw score (log-odds), LightGBM's SHAP.

    The raw score is the booster's; a calibrated model's probability is its calibrator's
    map of it, not its logistic."""

    probability: float
    raw_score: float
    base_value: float
    contributions: dict[str, float] = field(default_factory=dict)


class ServedModel:
    """A fitted churn pipeline, compiled for serving: each input a `FeatureColumn`, rows
    straight into a numpy matrix for the booster (pandas and scikit-learn's checks cost far
    more than LightGBM's own call on a few rows)."""

    def __init__(self, pipeline: Pipeline, info: ModelInfo) -> None:
        self.info = info
        self.pipeline = pipeline
        self.columns = _compile(pipeline)
        self.calibration = _calibration(pipeline.steps[-1][1])
        self.feature_names = tuple(column.name for column in self.columns)
        self._known = frozenset(self.feature_names)
        self._booster = lightgbm_classifier(pipeline).booster_
        self._single_row = SingleRowPredictor(self._booster, raw_score=self.calibration is not None)
        _check_against_pipeline(self)

    @property
    def version(self) -> int:
        return self.info.version

    def with_alias(self, alias: str) -> ServedModel:
        """The same loaded model under another alias (a challenger promoted to champion)."""
        twin = copy.copy(self)
        twin.info = dataclasses.replace(self.info, alias=alias)
        return twin

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The booster's matrix for ``rows``; raises `InvalidFeatures` listing every problem.

        Each row must give every feature (null for a missing value) and nothing else.
        """
        matrix = np.empty((len(rows), len(self.columns)))
        problems: list[FeatureProblem] = []
        for index, row in enumerate(rows):
            for position, column in enumerate(self.columns):
                if column.name not in row:
                    problems.append(FeatureProblem(index, column.name, "Field required", "missing"))
                    continue
                try:
                    matrix[index, position] = column.encode(row[column.name])
                except TypeError as error:
                    kind = "string_type" if column.categorical else "float_type"
                    problems.append(FeatureProblem(index, column.name, str(error), kind))
            # A row of the right size with nothing missing has no extra key either.
            if len(row) > len(self.columns) or problems:
                for name in row.keys() - self._known:
                    message = "Extra inputs are not permitted (not a feature of this model)"
                    problems.append(FeatureProblem(index, name, message, "extra_forbidden"))
        if problems:
            raise InvalidFeatures(problems)
        return matrix

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Churn probability of each encoded row, on one thread (OpenMP's fan-out costs more
        than it saves on a few rows); calibrated when the model is. One row, the usual
        request, takes LightGBM's single-row path (`SingleRowPredictor`)."""
        if len(matrix) == 1:
            scores = np.array([self._single_row.predict(matrix[0])])
        else:
            scores = self._booster.predict(
                matrix, raw_score=self.calibration is not None, num_threads=1
            )
        return scores if self.calibration is None else self.calibration.apply(scores)

    def explain(self, matrix: np.ndarray) -> Explanation:
        """LightGBM's ``pred_contrib`` for a one-row `encode` matrix, keyed by input feature.

        Each input maps to one booster column (passthrough or ordinal code), so a column's
        contribution is its feature's. They sum, with the base value, to the raw score.
        """
        contributions = self._booster.predict(matrix, pred_contrib=True, num_threads=1)[0]
        raw_score = float(self._booster.predict(matrix, raw_score=True, num_threads=1)[0])
        return Explanation(
            probability=float(self.probabilities(matrix)[0]),
            raw_score=raw_score,
            base_value=float(contributions[-1]),
            contributions=dict(zip(self.feature_names, contributions[:-1].tolist(), strict=True)),
        )


def load_served_model(settings: Settings, version: int, alias: str) -> ServedModel:
    """Fetch, deserialize and compile ``version``; any failure is a `ModelLoadError`."""
    label = f"{settings.model_name} v{version} (@{alias})"
    try:
        registered = registry.model_version(settings, version)
        pipeline = registry.load_model(settings, version)
    except Exception as error:  # corrupt artifact, untrusted type, unreachable store...
        raise ModelLoadError(f"cannot load {label}: {describe_error(error)}") from error
    info = ModelInfo(
        name=settings.model_name,
        version=version,
        alias=alias,
        run_id=registered.run_id,
        tags=dict(registered.tags),
        loaded_at=dt.datetime.now(dt.UTC),
    )
    try:
        return ServedModel(pipeline, info)
    except ModelLoadError as error:
        raise ModelLoadError(f"cannot serve {label}: {error}") from error


def _compile(pipeline: Any) -> list[FeatureColumn]:
    """The input columns of a ``Pipeline(ColumnTransformer, LGBMClassifier)``, in output order."""
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise ModelLoadError(
            f"expected a Pipeline of preprocessing and LightGBM, got {type(pipeline).__name__}"
        )
    (_, preprocess), (_, last) = pipeline.steps
    try:
        classifier = lightgbm_classifier(pipeline)
    except ValueError as error:
        raise ModelLoadError(str(error)) from error
    if not hasattr(classifier, "booster_"):
        raise ModelLoadError(f"the last step is not a fitted LGBMClassifier: {last!r}")
    if list(classifier.classes_) != [0, 1]:
        raise ModelLoadError(f"the classifier is not binary 0/1: classes {classifier.classes_}")
    if not isinstance(preprocess, ColumnTransformer):
        raise ModelLoadError(f"the first step is not a ColumnTransformer: {preprocess!r}")
    columns: list[FeatureColumn] = []
    for name, transformer, selected in preprocess.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        if not all(isinstance(column, str) for column in selected):
            raise ModelLoadError(f"transformer {name!r} selects columns by position: {selected}")
        if _is_passthrough(transformer):
            columns += [FeatureColumn(column) for column in selected]
        elif _is_lenient_ordinal_encoder(transformer):
            columns += [
                _categorical_column(column, categories, transformer)
                for column, categories in zip(selected, transformer.categories_, strict=True)
            ]
        else:
            raise ModelLoadError(
                f"transformer {name!r} ({transformer!r}) is not one serving replays: "
                "passthrough or OrdinalEncoder(handle_unknown='use_encoded_value'); "
                "teach churnloop.serving.model the new step"
            )
    produced = [column.name for column in columns]
    if produced != list(preprocess.get_feature_names_out()):
        raise ModelLoadError(
            f"compiled columns {produced} differ from the preprocessing's output "
            f"{list(preprocess.get_feature_names_out())}"
        )
    return columns


def _calibration(step: Any) -> Calibration | None:
    """The replayable calibrator of a calibrated last step; None for a bare classifier."""
    if isinstance(step, LGBMClassifier):
        return None
    if not isinstance(step, CalibratedClassifierCV):
        raise ModelLoadError(f"serving replays no {type(step).__name__} around LightGBM")
    pairs = getattr(step, "calibrated_classifiers_", [])
    if len(pairs) != 1 or len(pairs[0].calibrators) != 1:
        raise ModelLoadError(
            f"the calibrator holds {len(pairs)} fitted classifier(s); serving replays one "
            "binary calibrator around one classifier (ensemble=False)"
        )
    method, calibrator = pairs[0].method, pairs[0].calibrators[0]
    if method == "isotonic":
        return Calibration(method, (calibrator.X_thresholds_, calibrator.y_thresholds_))
    if method == "sigmoid":
        return Calibration(method, slope=float(calibrator.a_), intercept=float(calibrator.b_))
    raise ModelLoadError(f"calibration method {method!r} is not one serving replays")


def _is_passthrough(transformer: Any) -> bool:
    """``"passthrough"`` as written, or the identity FunctionTransformer fitting makes of it."""
    if isinstance(transformer, str):
        return transformer == "passthrough"
    return isinstance(transformer, FunctionTransformer) and transformer.func is None


def _is_lenient_ordinal_encoder(transformer: Any) -> bool:
    return (
        isinstance(transformer, OrdinalEncoder)
        and transformer.handle_unknown == "use_encoded_value"
        and not transformer._infrequent_enabled
    )


def _categorical_column(
    name: str, categories: np.ndarray, encoder: OrdinalEncoder
) -> FeatureColumn:
    codes: dict[Any, float] = {}
    seen_nan = False
    for code, category in enumerate(categories.tolist()):
        if isinstance(category, float) and math.isnan(category):
            seen_nan = True
        else:
            codes[category] = float(code)
    unknown = float(encoder.unknown_value)
    missing = float(encoder.encoded_missing_value) if seen_nan else unknown
    return FeatureColumn(name, codes, unknown_code=unknown, nan_code=missing)


def _probe_rows(columns: list[FeatureColumn]) -> list[dict[str, Any]]:
    """Rows that exercise every category, unknown and missing values, and distinct numbers.

    Numbers differ per column and row, so a column order mistake changes predictions.
    """
    widest = max((len(column.codes or ()) for column in columns), default=0)
    rows: list[dict[str, Any]] = []
    for index in range(widest + 2):
        row: dict[str, Any] = {}
        for position, column in enumerate(columns):
            if column.codes is None:
                row[column.name] = None if index == 0 else float(index * (position + 1))
            else:
                categories = list(column.codes)
                row[column.name] = (
                    categories[index]
                    if index < len(categories)
                    else (None if index == widest else "__unseen__")
                )
        rows.append(row)
    return rows


def _check_against_pipeline(model: ServedModel) -> None:
    """Refuse the version unless the compiled path predicts what the pipeline does, on the
    probe rows as a batch and each alone (LightGBM's single-row path)."""
    rows = _probe_rows(model.columns)
    frame = pd.DataFrame(rows, columns=list(model.feature_names))
    numeric = [column.name for column in model.columns if not column.categorical]
    frame[numeric] = frame[numeric].astype("float64")
    try:
        expected = model.pipeline.predict_proba(frame)[:, 1]
    except Exception as error:  # whatever breaks the pipeline must stop the load
        message = f"the pipeline fails on predict: {describe_error(error)}"
        raise ModelLoadError(message) from error
    matrix = model.encode(rows)
    alone = [model.probabilities(matrix[index : index + 1])[0] for index in range(len(rows))]
    served = np.concatenate([model.probabilities(matrix), alone])
    gap = float(np.max(np.abs(served - np.tile(expected, 2))))
    if not gap <= PROBE_TOLERANCE:
        raise ModelLoadError(
            f"the compiled serving path differs from the pipeline by {gap:.3g} on probe rows"
        )
