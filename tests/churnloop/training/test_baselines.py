"""The baselines: the best single feature is found and scores as a probability; the
logistic regression takes missing values, unseen categories and nullable dtypes."""

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churnloop.schema import LABEL, TIMESTAMP
from churnloop.training.baselines import (
    LOGISTIC,
    SINGLE_FEATURE,
    best_single_feature,
    fit_baselines,
)
from churnloop.training.metrics import score


def frame(rows: int = 4_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=rows)
    churned = (rng.random(rows) < 1 / (1 + np.exp(-(2 * signal - 1)))).astype(int)
    return pd.DataFrame(
        {
            TIMESTAMP: pd.Timestamp("2026-01-01", tz="UTC"),
            "signal": -signal,  # higher means less churn: the rule must orient it
            "noise": rng.normal(size=rows),
            "plan": rng.choice(["basic", "premium"], size=rows),
            LABEL: churned,
        }
    )


def test_the_most_informative_feature_is_chosen_and_scores_probabilities():
    data = frame()
    features = data[["signal", "noise", "plan"]]

    rule = best_single_feature(features, data[LABEL].to_numpy())
    scores = rule.predict_proba(features)[:, 1]

    assert rule.feature == "signal"
    assert roc_auc_score(data[LABEL], scores) > 0.75
    assert ((scores >= 0) & (scores <= 1)).all()


def test_baselines_score_rows_with_gaps_unseen_categories_and_nullable_dtypes():
    data = frame()
    baselines = fit_baselines(data, ["signal", "noise", "plan"], seed=0, max_rows=2_000)
    fresh = frame(rows=50, seed=1).astype({"signal": "Float64", "plan": "string"})
    fresh.loc[:4, "signal"] = pd.NA
    fresh.loc[5:9, "plan"] = pd.NA
    fresh.loc[10:14, "plan"] = "enterprise"

    for name, model in baselines.items():
        scores = score(model, fresh, name)
        assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all(), name
    assert set(baselines) == {LOGISTIC, SINGLE_FEATURE}
