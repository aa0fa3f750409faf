import datetime as dt
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnloop.errors import DataError
from churnloop.monitoring.effect_sizes import DriftResult, compute_drift, compute_score_drift
from churnloop.monitoring.estimated_performance import EstimatedPerformance
from churnloop.monitoring.slice_drift import compute_slice_drift
from churnloop.monitoring.verdict import decide, performance_drift, staleness
from churnloop.training.intervals import Interval
from tests.churnloop.monitoring.drift_support import THRESHOLDS

DAY = dt.date(2026, 3, 4)


def labelled_scores(rows: int, seed: int, *, signal: float) -> pd.DataFrame:
    """Churn labels and scores that separate them more the larger ``signal`` is."""
    rng = np.random.default_rng(seed)
    churned = (rng.random(rows) < 0.3).astype("int8")
    score = 1 / (1 + np.exp(-(signal * churned + rng.normal(0, 1, rows))))
    return pd.DataFrame({"churned": churned, "prediction": score})


def test_a_performance_drop_beyond_the_threshold_is_flagged():
    served = labelled_scores(2_000, seed=1, signal=0.0)

    check = performance_drift(served, baseline_auc=0.80, max_drop=0.05, min_rows=200)

    assert check.judged and check.degraded
    assert check.auc == pytest.approx(roc_auc_score(served["churned"], served["prediction"]))
    assert "vs baseline 0.800" in check.summary


def test_performance_within_the_threshold_is_not_flagged():
    served = labelled_scores(2_000, seed=1, signal=2.0)
    auc = roc_auc_score(served["churned"], served["prediction"])

    check = performance_drift(served, baseline_auc=auc + 0.04, max_drop=0.05, min_rows=200)

    assert check.judged and not check.degraded
    assert check.to_dict()["drop"] == pytest.approx(0.04)


def test_too_few_matured_labels_are_not_judged():
    served = labelled_scores(1_000, seed=2, signal=0.0).astype({"churned": "Int8"})
    served.loc[150:, "churned"] = pd.NA  # labels of those rows have not matured yet

    check = performance_drift(served, baseline_auc=0.80, max_drop=0.05, min_rows=200)

    assert not check.judged and not check.degraded
    assert check.rows == 150
    assert "150 labelled rows, fewer than 200 (850 rows without a label yet)" in check.summary


def test_a_single_class_is_not_judged():
    served = labelled_scores(500, seed=3, signal=1.0).assign(churned=0)

    check = performance_drift(served, baseline_auc=0.80, max_drop=0.05, min_rows=200)

    assert not check.judged
    assert "all 500 labelled rows are of class 0" in check.summary


def test_min_rows_defaults_to_the_settings(settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_DRIFT_PERFORMANCE_MIN_ROWS", "5000")

    check = performance_drift(labelled_scores(2_000, 1, signal=0.0), 0.8, 0.05)

    assert not check.judged and "fewer than 5000" in check.summary


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"churned": [0, 1]}), r"needs columns \[.prediction.\]"),
        (
            pd.DataFrame({"churned": [0, 2], "prediction": [0.1, 0.9]}),
            r"must be 0 or 1; found \[2.0\]",
        ),
        (pd.DataFrame({"churned": [0, 1], "prediction": [0.1, None]}), "1 labelled rows have no"),
    ],
)
def test_bad_performance_input_names_what_is_wrong(frame, message):
    with pytest.raises(DataError, match=message):
        performance_drift(frame, baseline_auc=0.8, max_drop=0.05, min_rows=1)


@pytest.mark.parametrize(
    ("training_data_end", "stale"),
    [(DAY - dt.timedelta(days=46), True), (DAY - dt.timedelta(days=45), False), (DAY, False)],
)
def test_staleness_counts_days_since_the_training_data_ends(training_data_end, stale):
    check = staleness(training_data_end, DAY, max_age_days=45)

    assert check.stale is stale
    assert check.to_dict()["age_days"] == (DAY - training_data_end).days


def drift_result(*drifted: str) -> DriftResult:
    """Three columns compared on 2,000 rows a side; the ``drifted`` ones moved by 3 sd."""
    rng = np.random.default_rng(0)
    names = ["spend", "logins", "tenure_months"]
    reference = pd.DataFrame({name: rng.normal(0.0, 1.0, 2_000) for name in names})
    current = pd.DataFrame(
        {name: rng.normal(3.0 if name in drifted else 0.0, 1.0, 2_000) for name in names}
    )
    return compute_drift(reference, current, names)


FRESH = staleness(DAY - dt.timedelta(days=35), DAY, max_age_days=45)
STALE = staleness(DAY - dt.timedelta(days=90), DAY, max_age_days=45)
HEALTHY = performance_drift(labelled_scores(2_000, 1, signal=2.0), 0.70, 0.05, min_rows=200)
DEGRADED = performance_drift(labelled_scores(2_000, 1, signal=0.0), 0.80, 0.05, min_rows=200)


@pytest.mark.parametrize(
    ("result", "performance", "age", "expected"),
    [
        (drift_result(), HEALTHY, FRESH, []),
        (drift_result("logins"), None, FRESH, []),
        (drift_result("spend"), HEALTHY, FRESH, ["data drift on important columns: spend psi"]),
        (drift_result("logins", "tenure_months"), None, FRESH, ["dataset drift: 2 of 3 columns"]),
        (drift_result(), DEGRADED, FRESH, ["performance drop: ROC AUC"]),
        (drift_result(), HEALTHY, STALE, ["stale champion: training data ends 2025-12-04"]),
    ],
    ids=["quiet", "unimportant column", "important column", "share", "performance", "stale"],
)
def test_decide_gives_every_reason_to_retrain(result, performance, age, expected):
    verdict = decide(result, performance, age, important_columns=["spend"])

    assert verdict.triggered is bool(expected)
    assert len(verdict.reasons) == len(expected)
    for reason, start in zip(verdict.reasons, expected, strict=True):
        assert reason.startswith(start)


def test_decide_refuses_important_columns_that_were_not_compared():
    with pytest.raises(ValueError, match=r"\['plan'\] were not compared"):
        decide(drift_result(), None, FRESH, important_columns=["spend", "plan"])


def estimated(auc: float, high: float, *, max_drop: float | None = 0.05) -> EstimatedPerformance:
    """A judged estimate against a reference estimated at 0.82."""
    return EstimatedPerformance(
        rows=2_000,
        expected_positives=250.0,
        reference_auc=0.82,
        reference_realized_auc=0.83,
        max_drop=max_drop,
        estimate=Interval(auc, 2 * auc - high, high, 0.95),
    )


NO_HARM = estimated(0.80, high=0.83)
HARM = estimated(0.70, high=0.74)
NOT_ESTIMATED = EstimatedPerformance(500, 20.0, None, 0.83, 0.05, None, "too few churners")
SCORE_DRIFT = compute_score_drift(np.linspace(0.0, 0.5, 2_000), np.linspace(0.5, 1.0, 2_000))


@pytest.mark.parametrize(
    ("result", "estimate", "expected", "without_harm"),
    [
        (drift_result("spend"), NO_HARM, [], ["data drift on important columns"]),
        (drift_result("spend"), None, ["data drift on important columns"], []),
        (drift_result("spend"), NOT_ESTIMATED, ["data drift on important columns"], []),
        (
            drift_result("spend"),
            estimated(0.80, high=0.83, max_drop=None),
            ["data drift on important columns"],
            [],
        ),
        (drift_result(), HARM, ["estimated performance drop: estimated ROC AUC 0.700"], []),
        (
            drift_result("spend"),
            HARM,
            ["data drift on important columns", "estimated performance drop"],
            [],
        ),
    ],
    ids=["no harm", "no estimate", "not judged", "no threshold", "harm alone", "drift and harm"],
)
def test_drift_triggers_only_when_harm_is_not_ruled_out(result, estimate, expected, without_harm):
    verdict = decide(result, None, FRESH, ["spend"], estimate=estimate)

    assert len(verdict.reasons) == len(expected), verdict.reasons
    for reason, start in zip(verdict.reasons, expected, strict=True):
        assert reason.startswith(start)
    assert [reason.split(":")[0] for reason in verdict.drift_without_harm] == [
        start.split(":")[0] for start in without_harm
    ]
    assert verdict.to_dict()["drift_without_harm"] == verdict.drift_without_harm


def test_score_drift_is_drift_and_held_back_without_harm():
    with_harm_unknown = decide(drift_result(), None, FRESH, [], prediction_drift=SCORE_DRIFT)
    without_harm = decide(
        drift_result(), None, FRESH, [], estimate=NO_HARM, prediction_drift=SCORE_DRIFT
    )

    assert with_harm_unknown.reasons == [f"prediction drift: {SCORE_DRIFT.describe()}"]
    assert not without_harm.triggered
    assert without_harm.drift_without_harm == with_harm_unknown.reasons


def test_a_realized_drop_and_staleness_trigger_whatever_the_estimate_says():
    verdict = decide(drift_result("spend"), DEGRADED, STALE, ["spend"], estimate=NO_HARM)

    assert [reason.split(":")[0] for reason in verdict.reasons] == [
        "performance drop",
        "stale champion",
    ]


def test_the_realized_auc_is_shown_beside_the_estimate_of_the_same_scores():
    check = replace(HEALTHY, estimated_auc=Interval(0.78, 0.75, 0.81, 0.95))

    assert check.summary.endswith("; estimated before the labels 0.780 [0.750, 0.810]")


def test_an_important_column_drifted_within_one_slice_is_drift_too():
    rng = np.random.default_rng(3)
    reference, current = region_customers(20_000, rng), region_customers(20_000, rng)
    current.loc[current["region"] == "north", "age"] += 8
    columns = ["age", "spend", "plan"]
    whole = compute_drift(reference, current, columns, THRESHOLDS)
    slices = compute_slice_drift(reference, current, columns, ["region"], THRESHOLDS)
    age = staleness(dt.date(2026, 5, 1), dt.date(2026, 5, 10), 45)

    verdict = decide(whole, None, age, ["age"], slices=slices)
    harmless = decide(whole, None, age, ["age"], slices=slices, estimate=estimated(0.8, 0.82))
    unimportant = decide(whole, None, age, ["plan"], slices=slices)

    assert "age" not in whole.drifted_columns, "the whole day dilutes the slice's shift"
    assert verdict.reasons == ["data drift in slice region=north on important columns: ['age']"]
    assert not harmless.triggered and harmless.drift_without_harm == verdict.reasons
    assert not unimportant.triggered


def region_customers(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "plan": rng.choice(["basic", "standard", "premium"], rows),
            "age": rng.integers(18, 90, rows),
            "spend": rng.normal(50, 10, rows),
        }
    )
