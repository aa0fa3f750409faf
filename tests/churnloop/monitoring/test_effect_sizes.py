import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from churnloop.errors import DataError
from churnloop.monitoring.effect_sizes import DriftThresholds, compute_drift, compute_score_drift

PLANS = ("basic", "standard", "premium")


def thresholds(method: str = "psi") -> DriftThresholds:
    return DriftThresholds(
        numeric_method=method, psi=0.2, psi_bins=10, wasserstein=0.1, jensenshannon=0.1, share=0.5
    )


def customers(
    rows: int,
    seed: int,
    *,
    spend_mean: float = 50.0,
    spend_scale: float = 10.0,
    plans: tuple[str, ...] = PLANS,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(rows),
            "spend": rng.normal(spend_mean, spend_scale, rows),
            "logins": rng.poisson(3, rows).astype("int32"),
            "plan": rng.choice(plans, rows),
            "prediction": rng.random(rows),
        }
    )


REFERENCE = customers(20_000, seed=1)
FEATURES = ["spend", "logins", "plan"]


@pytest.mark.parametrize("method", ["psi", "wasserstein"])
@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        ({}, []),
        ({"spend_mean": 57.0}, ["spend"]),
        ({"spend_scale": 20.0}, ["spend"]),
        ({"plans": (*PLANS, "enterprise")}, ["plan"]),
    ],
    ids=["no shift", "mean shift", "scale change", "new category"],
)
def test_constructed_shifts_are_flagged_and_only_they(method, shift, expected):
    result = compute_drift(
        REFERENCE, customers(20_000, seed=2, **shift), thresholds=thresholds(method)
    )

    assert result.drifted_columns == expected, result.summary
    assert result.column_names == FEATURES, "id and scores are not compared by default"
    assert [(c.kind, c.method) for c in result.columns] == [
        ("numeric", method),
        ("numeric", method),
        ("categorical", "jensenshannon"),
    ]
    assert not result.dataset_drift, "one drifted column of three is below the 50% share"


def test_two_samples_of_one_distribution_at_1m_rows_are_not_flagged():
    reference, current = customers(1_000_000, seed=3), customers(1_000_000, seed=4)

    result = compute_drift(reference, current, thresholds=thresholds())

    assert result.drifted_columns == []
    assert max(column.score for column in result.columns) < 0.01


def test_a_negligible_shift_at_1m_rows_fails_a_p_value_test_but_is_not_drift():
    reference = customers(1_000_000, seed=3)
    current = customers(1_000_000, seed=4, spend_mean=50.2)  # 0.02 standard deviations

    assert ks_2samp(reference["spend"], current["spend"]).pvalue < 1e-6
    assert compute_drift(reference, current, ["spend"], thresholds()).drifted_columns == []


def test_result_is_stable_under_row_order():
    current = customers(5_000, seed=5, spend_mean=55.0)
    current.loc[current.index[::7], ["spend", "plan"]] = None
    shuffled_reference = REFERENCE.sample(frac=1.0, random_state=1)
    shuffled_current = current.sample(frac=1.0, random_state=2)

    result = compute_drift(REFERENCE, current, thresholds=thresholds())
    shuffled = compute_drift(shuffled_reference, shuffled_current, thresholds=thresholds())

    assert shuffled.to_dict() == result.to_dict()


def test_missing_values_count_as_drift_and_are_reported():
    current = customers(20_000, seed=2)
    current.loc[current.index[:6_000], "spend"] = np.nan
    current.loc[current.index[:6_000], "plan"] = None

    result = compute_drift(REFERENCE, current, thresholds=thresholds())

    assert result.drifted_columns == ["spend", "plan"]
    assert result.dataset_drift, "two drifted columns of three reach the 50% share"
    spend = result.column("spend")
    assert (spend.missing_reference, spend.missing_current) == (0.0, 0.3)
    assert result.column("plan").missing_current == 0.3


def test_a_column_gone_missing_is_drift_for_psi_and_an_error_for_wasserstein():
    current = customers(5_000, seed=2)
    current["spend"] = np.nan

    assert compute_drift(REFERENCE, current, thresholds=thresholds()).column("spend").drifted
    with pytest.raises(DataError, match="'spend' has no values in the current data"):
        compute_drift(REFERENCE, current, thresholds=thresholds("wasserstein"))


@pytest.mark.parametrize(
    ("current", "columns", "message"),
    [
        (REFERENCE.iloc[:0], None, "the current data has no rows"),
        (REFERENCE.drop(columns="plan"), FEATURES, r"current data lacks column\(s\) \['plan'\]"),
        (REFERENCE.assign(spend="n/a"), FEATURES, "'spend' is numeric, but the current data holds"),
        (REFERENCE.assign(spend=np.inf), FEATURES, "'spend' holds infinite values"),
        (REFERENCE.assign(seen=pd.Timestamp("2026-03-04")), ["seen"], "'seen' holds datetime"),
    ],
    ids=["empty", "missing column", "text in numeric", "infinite", "datetime"],
)
def test_bad_input_names_what_is_wrong(current, columns, message):
    reference = REFERENCE.assign(seen=pd.Timestamp("2026-03-01"))
    with pytest.raises(DataError, match=message):
        compute_drift(reference, current, columns, thresholds())


def test_numeric_codes_can_be_declared_categorical():
    result = compute_drift(
        REFERENCE, customers(5_000, seed=2), thresholds=thresholds(), categorical_columns={"logins"}
    )
    assert (result.column("logins").kind, result.column("logins").method) == (
        "categorical",
        "jensenshannon",
    )


def test_record_is_json_and_summary_names_the_drifted_columns():
    result = compute_drift(
        REFERENCE, customers(5_000, seed=2, spend_mean=60.0), thresholds=thresholds()
    )

    record = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert record["drifted_columns"] == ["spend"]
    assert record["columns"][0] | {"score": None} == {
        "column": "spend",
        "kind": "numeric",
        "method": "psi",
        "score": None,
        "threshold": 0.2,
        "drifted": True,
        "missing_reference": 0.0,
        "missing_current": 0.0,
    }
    assert "spend psi" in result.summary and "1 of 3 columns drifted" in result.summary


def test_thresholds_default_to_the_settings(settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_DRIFT_PSI_THRESHOLD", "5")

    result = compute_drift(REFERENCE, customers(5_000, seed=2, spend_mean=60.0))

    assert result.column("spend").threshold == 5.0
    assert result.drifted_columns == []


def test_score_drift_compares_score_distributions():
    rng = np.random.default_rng(7)
    reference = rng.beta(2, 5, 10_000)

    same = compute_score_drift(reference, rng.beta(2, 5, 10_000), thresholds())
    shifted = compute_score_drift(reference, pd.Series(rng.beta(5, 2, 10_000)), thresholds())

    assert (same.column, same.method, same.drifted) == ("prediction", "psi", False)
    assert shifted.drifted and shifted.score > 1.0
    with pytest.raises(DataError, match="no current scores"):
        compute_score_drift(reference, [], thresholds())
