"""The churn pipeline: reproducible fits, tolerant scoring, data errors that name the column."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from churnloop.errors import DataError
from churnloop.schema import LABEL
from churnloop.training.calibration import with_calibrator
from churnloop.training.metrics import score
from churnloop.training.pipeline import fit_pipeline, lightgbm_classifier
from churnloop.training.split import split_by_time
from tests.churnloop.training_support import FAST_PARAMS, FEATURES, labelled_days


@pytest.fixture(scope="module")
def frame():
    return labelled_days(dt.date(2026, 1, 1), days=8, customers=300)


def test_same_inputs_give_identical_predictions_and_the_seed_matters(frame):
    train, holdout = split_by_time(frame, holdout_days=3)
    params = {**FAST_PARAMS, "subsample": 0.7, "subsample_freq": 1, "colsample_bytree": 0.7}

    first = fit_pipeline(train, FEATURES, params, seed=3).predict_proba(holdout[FEATURES])
    again = fit_pipeline(train, FEATURES, params, seed=3).predict_proba(holdout[FEATURES])
    other = fit_pipeline(train, FEATURES, params, seed=4).predict_proba(holdout[FEATURES])

    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_unseen_category_and_missing_numbers_are_scored_not_rejected(frame):
    train, holdout = split_by_time(frame, holdout_days=3)
    model = fit_pipeline(train, FEATURES, FAST_PARAMS, seed=1)
    odd = holdout.head(3).assign(plan="enterprise", monthly_charges=np.nan)

    scores = model.predict_proba(odd[FEATURES])[:, 1]

    assert np.isfinite(scores).all()


def test_missing_feature_or_label_problems_are_data_errors(frame):
    with pytest.raises(DataError, match="lacks column.*tenure_months"):
        fit_pipeline(frame.drop(columns=["tenure_months"]), FEATURES, FAST_PARAMS, seed=1)
    with pytest.raises(DataError, match="must be 0/1"):
        fit_pipeline(frame.assign(**{LABEL: 2}), FEATURES, FAST_PARAMS, seed=1)


def test_nullable_dtypes_with_missing_values_are_fitted_and_scored(frame):
    train, holdout = split_by_time(frame, holdout_days=3)
    nullable = {
        "plan": "string",
        "region": "category",
        "age": "Int64",
        "monthly_charges": "Float64",
    }
    train, holdout = train.astype(nullable), holdout.astype(nullable)
    for part in (train, holdout):
        part.loc[part.index[:20], ["plan", "age", "monthly_charges"]] = pd.NA

    model = fit_pipeline(train, FEATURES, FAST_PARAMS, seed=1)
    scores = score(model, holdout, "challenger")

    assert np.isfinite(scores).all() and len(scores) == len(holdout)


def test_the_lightgbm_classifier_is_found_in_a_plain_or_calibrated_model(frame):
    train, holdout = split_by_time(frame, holdout_days=3)
    model = fit_pipeline(train, FEATURES, FAST_PARAMS, seed=1)
    classifier = model.steps[-1][1]
    rows = model[:-1].transform(holdout[FEATURES])
    calibrator = CalibratedClassifierCV(FrozenEstimator(classifier), method="sigmoid")
    calibrated = with_calibrator(model, calibrator.fit(rows, holdout[LABEL]))

    assert lightgbm_classifier(model) is classifier
    assert lightgbm_classifier(calibrated) is classifier
    with pytest.raises(ValueError, match="no LGBMClassifier"):
        lightgbm_classifier(Pipeline([("classifier", LogisticRegression())]))
