"""The compiled serving path of a registered pipeline, against the pipeline itself."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder, StandardScaler

from churnloop.schema import TIMESTAMP
from churnloop.serving.model import ModelInfo, ModelLoadError, ServedModel
from churnloop.training.pipeline import fit_pipeline


def _info() -> ModelInfo:
    return ModelInfo("m", 1, "champion", "run", {}, dt.datetime.now(dt.UTC))


def _tiny_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            TIMESTAMP: pd.Timestamp("2026-01-01", tz="UTC"),
            "x": rng.normal(size=200),
            "plan": rng.choice(["basic", "premium", None], size=200),
            "churned": rng.integers(0, 2, size=200),
        }
    )


def test_compiled_encoding_replays_the_fitted_encoder_on_unknown_and_missing_values():
    frame = _tiny_frame()
    pipeline = fit_pipeline(frame, ["x", "plan"], {"n_estimators": 5}, 1)
    model = ServedModel(pipeline, _info())
    rows = [
        {"x": 0.3, "plan": "basic"},
        {"x": None, "plan": None},
        {"x": 1.0, "plan": "unseen"},
        {"x": -2, "plan": float("nan")},
    ]

    served = model.probabilities(model.encode(rows))

    expected = pipeline.predict_proba(pd.DataFrame(rows).astype({"x": "float64"}))[:, 1]
    assert np.array_equal(served, expected)


def test_a_pipeline_serving_cannot_replay_is_refused_naming_the_step():
    frame = _tiny_frame()
    pipeline = fit_pipeline(frame, ["x", "plan"], {"n_estimators": 5}, 1)
    scaled = ColumnTransformer(
        [("numeric", StandardScaler(), ["x"]), ("categorical", OrdinalEncoder(), ["plan"])]
    ).fit(frame[["x", "plan"]].fillna("none"))
    altered = Pipeline([("preprocess", scaled), ("classifier", pipeline.steps[-1][1])])

    with pytest.raises(ModelLoadError, match="transformer 'numeric' .*StandardScaler"):
        ServedModel(altered, _info())
