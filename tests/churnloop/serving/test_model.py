"""The compiled serving path of a registered pipeline, against the pipeline itself."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder, StandardScaler

from churnloop import registry
from churnloop.schema import LABEL, TIMESTAMP
from churnloop.serving.model import PROBE_TOLERANCE, ModelInfo, ModelLoadError, ServedModel
from churnloop.training.calibration import with_calibrator
from churnloop.training.pipeline import fit_pipeline, lightgbm_classifier


def _info() -> ModelInfo:
    return ModelInfo("m", 1, "champion", "run", {}, dt.datetime.now(dt.UTC))


def _tiny_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    return pd.DataFrame(
        {
            TIMESTAMP: pd.Timestamp("2026-01-01", tz="UTC"),
            "x": x,
            "plan": rng.choice(["basic", "premium", None], size=200),
            LABEL: (rng.uniform(size=200) < 1 / (1 + np.exp(-2 * x))).astype(int),
        }
    )


def _calibrated(method: str, ensemble: bool = False) -> Pipeline:
    """A pipeline whose classifier's scores pass through a calibrator, as training builds it."""
    frame = _tiny_frame()
    pipeline = fit_pipeline(frame, ["x", "plan"], {"n_estimators": 5}, 1)
    rows = pipeline[:-1].transform(frame[["x", "plan"]])
    frozen = FrozenEstimator(pipeline.steps[-1][1])
    calibrator = CalibratedClassifierCV(frozen, method=method, ensemble=ensemble, cv=2)
    return with_calibrator(pipeline, calibrator.fit(rows, frame[LABEL]))


_ROWS = [
    {"x": 0.3, "plan": "basic"},
    {"x": None, "plan": None},
    {"x": 1.0, "plan": "unseen"},
    {"x": -2, "plan": float("nan")},
    {"x": 40.0, "plan": "premium"},
]


def _plain_pipeline() -> Pipeline:
    return fit_pipeline(_tiny_frame(), ["x", "plan"], {"n_estimators": 5}, 1)


def test_compiled_encoding_replays_the_fitted_encoder_on_unknown_and_missing_values():
    pipeline = _plain_pipeline()
    model = ServedModel(pipeline, _info())

    served = model.probabilities(model.encode(_ROWS))

    expected = pipeline.predict_proba(pd.DataFrame(_ROWS).astype({"x": "float64"}))[:, 1]
    assert np.array_equal(served, expected)


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_a_calibrated_model_serves_on_the_compiled_path_after_a_skops_round_trip(method):
    pipeline = _calibrated(method)
    loaded = skops.io.loads(skops.io.dumps(pipeline), trusted=registry.SKOPS_TRUSTED_TYPES)

    model = ServedModel(loaded, _info())
    served = model.probabilities(model.encode(_ROWS))

    assert model.calibration is not None and model.calibration.method == method
    frame = pd.DataFrame(_ROWS).astype({"x": "float64"})
    expected = pipeline.predict_proba(frame)[:, 1]
    np.testing.assert_allclose(served, expected, rtol=0, atol=PROBE_TOLERANCE)
    raw = lightgbm_classifier(pipeline).predict_proba(pipeline[:-1].transform(frame))[:, 1]
    assert not np.allclose(served, raw)


@pytest.mark.parametrize("calibrated", [False, True])
def test_a_row_alone_takes_the_single_row_path_to_the_pipelines_answer(calibrated):
    """One row (the usual request) skips ``Booster.predict``; it must answer as the pipeline
    does, with as many trees (the best iteration when training stopped early)."""
    pipeline = _calibrated("sigmoid") if calibrated else _plain_pipeline()
    lightgbm_classifier(pipeline).booster_.best_iteration = 3
    model = ServedModel(pipeline, _info())
    matrix = model.encode(_ROWS)

    alone = [model.probabilities(matrix[index : index + 1])[0] for index in range(len(_ROWS))]

    expected = pipeline.predict_proba(pd.DataFrame(_ROWS).astype({"x": "float64"}))[:, 1]
    np.testing.assert_allclose(alone, expected, rtol=0, atol=PROBE_TOLERANCE)
    booster = lightgbm_classifier(pipeline).booster_
    all_trees = booster.predict(matrix, num_iteration=-1)
    assert not np.allclose(booster.predict(matrix), all_trees), "the best iteration must matter"


def test_a_calibrator_serving_cannot_replay_is_refused():
    with pytest.raises(ModelLoadError, match="holds 2 fitted classifier"):
        ServedModel(_calibrated("sigmoid", ensemble=True), _info())


def test_a_pipeline_serving_cannot_replay_is_refused_naming_the_step():
    frame = _tiny_frame()
    pipeline = fit_pipeline(frame, ["x", "plan"], {"n_estimators": 5}, 1)
    scaled = ColumnTransformer(
        [("numeric", StandardScaler(), ["x"]), ("categorical", OrdinalEncoder(), ["plan"])]
    ).fit(frame[["x", "plan"]].fillna("none"))
    altered = Pipeline([("preprocess", scaled), ("classifier", pipeline.steps[-1][1])])

    with pytest.raises(ModelLoadError, match="transformer 'numeric' .*StandardScaler"):
        ServedModel(altered, _info())
