"""Simple models the challenger must beat: a regularized logistic regression and the best
single feature.

`fit_baselines` fits both on the challenger's training split; each is a `Scorer`, so the
gate scores them on the same holdout and compares with paired intervals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churnloop.training.frames import with_numpy_dtypes
from churnloop.training.metrics import binary_labels
from churnloop.training.pipeline import column_kinds

LOGISTIC = "logistic_regression"
SINGLE_FEATURE = "single_feature"


class SingleFeatureRule:
    """Scores a row by one feature: the training churn rate of its category, or of its
    quantile bin for numbers (missing values a bin of their own); a probability."""

    def __init__(self, feature: str, categorical: bool, bins: int = 20) -> None:
        self.feature = feature
        self.categorical = categorical
        self.bins = bins
        self.feature_names_in_ = np.array([feature])
        self.edges = np.array([])
        self.rates: dict[object, float] = {}
        self.fallback = 0.0

    def fit(self, values: pd.Series, labels: np.ndarray) -> SingleFeatureRule:
        if not self.categorical:
            numbers = values.to_numpy(dtype=float, na_value=np.nan)
            self.edges = np.unique(np.nanquantile(numbers, np.linspace(0, 1, self.bins + 1)))
        keys = pd.Series(self._keys(values), index=values.index)
        self.rates = pd.Series(labels, index=values.index).groupby(keys).mean().to_dict()
        self.fallback = float(labels.mean())
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        keys = pd.Series(self._keys(frame[self.feature]))
        churn = keys.map(self.rates).fillna(self.fallback).to_numpy(dtype=float)
        return np.column_stack([1.0 - churn, churn])

    def _keys(self, values: pd.Series) -> np.ndarray:
        if self.categorical:
            return values.astype(object).where(values.notna(), "<missing>").to_numpy()
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        bins = np.searchsorted(self.edges[1:-1], numbers, side="right")
        return np.where(np.isnan(numbers), -1, bins)


def fit_baselines(
    train: pd.DataFrame, feature_names: Sequence[str], seed: int, max_rows: int
) -> dict[str, object]:
    """Both baselines, fitted on at most ``max_rows`` seeded rows of ``train``."""
    if len(train) > max_rows:
        train = train.sample(n=max_rows, random_state=seed)
    frame = with_numpy_dtypes(train[list(feature_names)])
    labels = binary_labels(train, "training split")
    return {
        LOGISTIC: fit_logistic(frame, labels),
        SINGLE_FEATURE: best_single_feature(frame, labels),
    }


def fit_logistic(frame: pd.DataFrame, labels: np.ndarray) -> Pipeline:
    """L2-regularized logistic regression on standardized numbers and one-hot categories."""
    numeric, categorical = column_kinds(frame, list(frame.columns))
    preprocess = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="<missing>"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ]
    )
    model = make_pipeline(preprocess, LogisticRegression(C=1.0, max_iter=1_000))
    return model.fit(frame, labels)


def best_single_feature(frame: pd.DataFrame, labels: np.ndarray) -> SingleFeatureRule:
    """The feature whose value alone ranks the training rows best (highest ROC AUC)."""
    _, categorical = column_kinds(frame, list(frame.columns))
    rules = [
        SingleFeatureRule(name, name in categorical).fit(frame[name], labels)
        for name in frame.columns
    ]
    return max(rules, key=lambda rule: roc_auc_score(labels, rule.predict_proba(frame)[:, 1]))
