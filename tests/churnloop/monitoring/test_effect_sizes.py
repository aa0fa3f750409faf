import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from churnloop.errors import DataError
from churnloop.monitoring.column_checks import FEATURE_COLUMNS
from churnloop.monitoring.effect_sizes import DriftThresholds, compute_drift, compute_score_drift

PLANS = ("basic", "standard", "premium")


def thresholds(method: str = "psi", *, min_rows: int = 100) -> DriftThresholds:
    return DriftThresholds(
        numeric_method=method,
        psi=0.2,
        psi_bins=10,
        wasserstein=0.1,
        jensenshannon=0.1,
        share=0.5,
        min_rows=min_rows,
        alpha=0.05,
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
        REFERENCE, customers(20_000, seed=2, **shift), FEATURES, thresholds(method)
    )

    assert result.drifted_columns == expected, result.summary
    assert [(c.kind, c.method) for c in result.columns] == [
        ("numeric", method),
        ("numeric", method),
        ("categorical", "jensenshannon"),
    ]
    assert not result.dataset_drift, "one drifted column of three is below the 50% share"


def test_a_negligible_shift_at_1m_rows_is_significant_but_not_drift():
    reference = customers(1_000_000, seed=3)
    current = customers(1_000_000, seed=4, spend_mean=50.2)  # 0.02 standard deviations

    spend = compute_drift(reference, current, ["spend"], thresholds()).column("spend")

    assert ks_2samp(reference["spend"], current["spend"]).pvalue < 1e-6
    assert spend.p_adjusted < 1e-6, "the test alone would call it drift"
    assert spend.score < 0.01 and spend.status == "stable"


def test_a_large_effect_on_few_rows_needs_the_test_too():
    """100 rows of a 200-category column reach the Jensen-Shannon threshold from noise alone
    (the effect size flagged such a column in 30 of 30 draws): the test keeps it stable but
    for its level's share (alpha 5%, one comparison, no correction)."""
    rng = np.random.default_rng(8)
    postcodes = [f"p{i:03d}" for i in range(200)]
    weights = 1 / np.arange(1, 201)
    draw = lambda rows: pd.DataFrame(  # noqa: E731
        {"postcode": rng.choice(postcodes, rows, p=weights / weights.sum())}
    )
    reference = draw(20_000)

    noisy = [
        compute_drift(reference, draw(100), ["postcode"], thresholds()).column("postcode")
        for _ in range(30)
    ]

    assert all(column.score >= column.threshold for column in noisy)
    assert sum(column.drifted for column in noisy) <= 3, "one comparison, tested at 5%"


def test_result_is_stable_under_row_order():
    current = customers(5_000, seed=5, spend_mean=55.0)
    current.loc[current.index[::7], ["spend", "plan"]] = None
    shuffled_reference = REFERENCE.sample(frac=1.0, random_state=1)
    shuffled_current = current.sample(frac=1.0, random_state=2)

    result = compute_drift(REFERENCE, current, FEATURES, thresholds())
    shuffled = compute_drift(shuffled_reference, shuffled_current, FEATURES, thresholds())

    assert shuffled.to_dict() == result.to_dict()


def test_missing_values_count_as_drift_and_are_reported():
    current = customers(20_000, seed=2)
    current.loc[current.index[:6_000], "spend"] = np.nan
    current.loc[current.index[:6_000], "plan"] = None

    result = compute_drift(REFERENCE, current, FEATURES, thresholds())

    assert result.drifted_columns == ["spend", "plan"]
    assert result.dataset_drift, "two drifted columns of three reach the 50% share"
    spend = result.column("spend")
    assert (spend.missing_reference, spend.missing_current) == (0.0, 0.3)
    assert result.column("plan").missing_current == 0.3


def test_a_column_gone_missing_is_drift_for_psi_and_an_error_for_wasserstein():
    current = customers(5_000, seed=2)
    current["spend"] = np.nan

    assert compute_drift(REFERENCE, current, FEATURES, thresholds()).column("spend").drifted
    with pytest.raises(DataError, match="'spend' has no values in the current data"):
        compute_drift(REFERENCE, current, FEATURES, thresholds("wasserstein"))


@pytest.mark.parametrize("rows", [0, 3, 99])
def test_too_few_rows_are_insufficient_data_never_drift(rows):
    """Three requests once made a report say "dataset drift, 33 of 34 columns"."""
    current = customers(rows, seed=2, spend_mean=90.0, plans=("enterprise",))

    result = compute_drift(REFERENCE, current, FEATURES, thresholds())

    assert result.insufficient_data and not result.dataset_drift
    assert result.drifted_columns == [] and result.judged_columns == []
    assert {column.status for column in result.columns} == {"insufficient data"}
    assert all(column.score is None and column.p_value is None for column in result.columns)
    assert result.summary.startswith(f"insufficient data: reference 20,000 rows, current {rows}")
    json.dumps(result.to_dict(), allow_nan=False)


def test_the_minimum_applies_to_each_side():
    result = compute_drift(REFERENCE.head(99), customers(5_000, seed=2), FEATURES, thresholds())
    judged = compute_drift(REFERENCE.head(100), customers(5_000, seed=2), FEATURES, thresholds())

    assert result.insufficient_data
    assert not judged.insufficient_data


def test_default_columns_are_the_models_features_never_ids_labels_or_scores():
    rng = np.random.default_rng(9)
    frame = pd.DataFrame({column: rng.random(500) for column in FEATURE_COLUMNS})
    frame = frame.assign(customer_id=np.arange(500), churned=rng.integers(0, 2, 500))
    frame["prediction"] = rng.random(500)
    frame["event_timestamp"] = pd.Timestamp("2026-03-04", tz="UTC")

    result = compute_drift(frame, frame.sample(frac=1.0, random_state=1), None, thresholds())

    assert result.column_names == list(FEATURE_COLUMNS)
    assert "plan" in FEATURE_COLUMNS and "customer_id" not in FEATURE_COLUMNS
    with pytest.raises(DataError, match="not \\['customer_id', 'prediction'\\]"):
        compute_drift(frame, frame, ["age", "customer_id", "prediction"], thresholds())
    with pytest.raises(DataError, match="lacks column.*without columns drift compares the model"):
        compute_drift(REFERENCE, REFERENCE, None, thresholds())


@pytest.mark.parametrize(
    ("reference", "current", "columns", "message"),
    [
        (
            REFERENCE,
            REFERENCE.drop(columns="plan"),
            FEATURES,
            r"current data lacks column\(s\) \['plan'\]",
        ),
        (
            REFERENCE,
            REFERENCE.assign(spend="n/a"),
            FEATURES,
            "'spend' holds number values in the reference data and text values in the current",
        ),
        (
            REFERENCE.assign(code=REFERENCE["logins"].astype(str)),
            REFERENCE.assign(code=REFERENCE["logins"]),
            ["code"],
            "'code' holds text values in the reference data and number values in the current",
        ),
        (
            REFERENCE,
            REFERENCE.assign(plan=[1, "basic"] * 10_000),
            FEATURES,
            "'plan' holds mixed-integer values in the current data",
        ),
        (REFERENCE, REFERENCE.assign(spend=np.inf), FEATURES, "'spend' holds infinite values"),
        (
            REFERENCE.assign(seen=pd.Timestamp("2026-03-01")),
            REFERENCE.assign(seen=pd.Timestamp("2026-03-04")),
            ["seen"],
            "'seen' holds datetime",
        ),
    ],
    ids=["missing column", "text for numbers", "numbers for text", "mixed", "infinite", "datetime"],
)
def test_bad_input_names_the_column_and_what_is_wrong(reference, current, columns, message):
    """A type change would otherwise score the maximum distance: it is an error instead."""
    with pytest.raises(DataError, match=message):
        compute_drift(reference, current, columns, thresholds())


def test_numeric_codes_can_be_declared_categorical():
    result = compute_drift(
        REFERENCE, customers(5_000, seed=2), FEATURES, thresholds(), categorical_columns={"logins"}
    )
    assert (result.column("logins").kind, result.column("logins").method) == (
        "categorical",
        "jensenshannon",
    )


def test_record_is_json_and_summary_names_the_drifted_columns():
    result = compute_drift(
        REFERENCE, customers(5_000, seed=2, spend_mean=60.0), FEATURES, thresholds()
    )

    record = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert record["drifted_columns"] == ["spend"]
    assert record["columns"][0] | {"score": None, "p_value": None, "p_adjusted": None} == {
        "column": "spend",
        "kind": "numeric",
        "method": "psi",
        "score": None,
        "threshold": 0.2,
        "drifted": True,
        "status": "drifted",
        "missing_reference": 0.0,
        "missing_current": 0.0,
        "reference_rows": 20_000,
        "current_rows": 5_000,
        "p_value": None,
        "p_adjusted": None,
    }
    assert record["columns"][0]["p_adjusted"] < 1e-10
    assert "spend psi" in result.summary and "1 of 3 columns drifted" in result.summary


def test_thresholds_default_to_the_settings(settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_DRIFT_PSI_THRESHOLD", "5")
    monkeypatch.setenv("CHURNLOOP_DRIFT_MIN_ROWS", "6000")

    result = compute_drift(REFERENCE, customers(5_000, seed=2, spend_mean=60.0), FEATURES)
    judged = compute_drift(REFERENCE, customers(6_000, seed=2, spend_mean=60.0), FEATURES)

    assert result.insufficient_data
    assert judged.column("spend").threshold == 5.0
    assert judged.drifted_columns == []


def test_score_drift_compares_score_distributions():
    rng = np.random.default_rng(7)
    reference = rng.beta(2, 5, 10_000)

    same = compute_score_drift(reference, rng.beta(2, 5, 10_000), thresholds())
    shifted = compute_score_drift(reference, pd.Series(rng.beta(5, 2, 10_000)), thresholds())
    few = compute_score_drift(reference, rng.beta(5, 2, 3), thresholds())

    assert (same.column, same.method, same.drifted) == ("prediction", "psi", False)
    assert shifted.drifted and shifted.score > 1.0
    assert few.status == "insufficient data" and few.score is None
