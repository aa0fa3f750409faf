"""The churn model: column preprocessing and a seeded LightGBM classifier in one Pipeline.

The preprocessing ships inside the registered model, so serving cannot drift from
training; the same data, parameters and seed give the same predictions. A calibrated
model keeps that shape with a calibrator around the classifier (`churnloop.training.
calibration`); `lightgbm_classifier` finds the classifier in either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from churnloop.errors import DataError
from churnloop.schema import LABEL, TIMESTAMP
from churnloop.training.frames import with_numpy_dtypes
from churnloop.training.metrics import binary_labels


def build_pipeline(
    numeric: list[str], categorical: list[str], params: Mapping[str, Any], seed: int
) -> Pipeline:
    """Preprocessing and a seeded LightGBM classifier, as one deployable object.

    Numbers pass through (LightGBM handles missing values itself); categories become
    integer codes that LightGBM splits on natively (`fit_pipeline` names them), and a
    category unseen in training maps to -1, which LightGBM treats as missing.
    """
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
    )
    preprocess = ColumnTransformer(
        [("numeric", "passthrough", numeric), ("categorical", encoder, categorical)],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    classifier = LGBMClassifier(
        **{**params, "random_state": seed, "deterministic": True, "force_col_wise": True},
        verbose=-1,
    )
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def fit_pipeline(
    train: pd.DataFrame, feature_names: list[str], params: Mapping[str, Any], seed: int
) -> Pipeline:
    """Fit `build_pipeline` on ``train``; columns are numeric or categorical by dtype."""
    require_training_columns(train, "training split", feature_names)
    labels = binary_labels(train, "training split")
    features = with_numpy_dtypes(train[feature_names])
    numeric, categorical = column_kinds(features, feature_names)
    pipeline = build_pipeline(numeric, categorical, params, seed)
    return pipeline.fit(features, labels, classifier__categorical_feature=categorical)


def lightgbm_classifier(model: Pipeline) -> LGBMClassifier:
    """The fitted LGBMClassifier of a churn model, calibrated or not.

    The last step is the classifier itself, or a calibrator that holds it as ``estimator``
    (a `CalibratedClassifierCV` around a `FrozenEstimator`). Code that reads the booster or
    the LightGBM parameters goes through this rather than ``named_steps``.
    """
    step = model.steps[-1][1]
    while not isinstance(step, LGBMClassifier) and hasattr(step, "estimator"):
        step = step.estimator
    if not isinstance(step, LGBMClassifier):
        raise ValueError(f"no LGBMClassifier in the model's last step {model.steps[-1][1]!r}")
    return step


def column_kinds(frame: pd.DataFrame, feature_names: list[str]) -> tuple[list[str], list[str]]:
    """The numeric and the categorical ones among ``feature_names``, by dtype."""
    numeric, categorical = [], []
    for name in feature_names:
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            numeric.append(name)
        elif pd.api.types.is_object_dtype(dtype) or isinstance(
            dtype, pd.StringDtype | pd.CategoricalDtype
        ):
            categorical.append(name)
        else:
            raise DataError(f"feature {name!r} has dtype {dtype}: neither numeric nor categorical")
    return numeric, categorical


def require_training_columns(frame: pd.DataFrame, role: str, columns: list[str]) -> None:
    """The timestamp, the label and ``columns`` must all be in ``frame``."""
    missing = [column for column in [TIMESTAMP, LABEL, *columns] if column not in frame.columns]
    if missing:
        raise DataError(f"the {role} lacks column(s): {', '.join(missing)}")
