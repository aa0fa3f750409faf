import json

import numpy as np
import pandas as pd
import pytest

from churnloop.errors import DataError
from churnloop.monitoring.effect_sizes import compute_drift
from churnloop.monitoring.significance import holm_adjusted
from churnloop.monitoring.slice_drift import compute_slice_drift
from tests.churnloop.monitoring.drift_support import THRESHOLDS

COLUMNS = ["age", "tenure_months", "spend", "plan"]
REGIONS = ("north", "south", "east", "west")


def customers(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": rng.choice(REGIONS, rows),
            "plan": rng.choice(["basic", "standard", "premium"], rows),
            "age": rng.integers(18, 90, rows),
            "tenure_months": rng.integers(0, 72, rows),
            "spend": rng.normal(50, 10, rows),
        }
    )


def test_a_shift_confined_to_one_region_is_found_in_that_slice_alone():
    rng = np.random.default_rng(1)
    reference, current = customers(20_000, rng), customers(20_000, rng)
    current.loc[current["region"] == "north", "spend"] += 8

    slices = compute_slice_drift(reference, current, COLUMNS, ["plan", "region"], THRESHOLDS)

    assert compute_drift(reference, current, COLUMNS, THRESHOLDS).drifted_columns == [], (
        "a quarter of the rows shifted by 0.8 sd stays under the whole data's threshold"
    )
    assert [(item.name, item.drifted_columns) for item in slices.drifted_slices] == [
        ("region=north", ["spend"])
    ]
    assert "region=north: spend" in slices.summary


def test_same_distribution_slices_are_rarely_flagged():
    flagged = checks = 0
    for draw in range(10):
        rng = np.random.default_rng([2, draw])
        slices = compute_slice_drift(
            customers(10_000, rng),
            customers(1_000, rng),
            COLUMNS,
            ["plan", "region", "tenure_bucket", "age_band"],
            THRESHOLDS,
        )
        flagged += sum(len(item.drifted_columns) for item in slices.slices)
        checks += slices.comparisons

    assert checks > 10 * 40
    assert flagged / checks <= 0.01, f"{flagged} of {checks} checks flagged"


def test_a_small_slice_is_insufficient_data_however_it_moved():
    rng = np.random.default_rng(3)
    reference, current = customers(20_000, rng), customers(2_000, rng)
    few = current.index[current["region"] == "north"][:50]
    current = current.drop(current.index[current["region"] == "north"].difference(few))
    current.loc[few, "spend"] += 100

    slices = compute_slice_drift(reference, current, COLUMNS, ["region"], THRESHOLDS)

    north = next(item for item in slices.slices if item.name == "region=north")
    assert (north.current_rows, north.status) == (50, "insufficient data")
    assert slices.drifted_slices == [] and slices.insufficient_slices == [north]


def test_the_correction_spans_every_column_of_every_slice():
    rng = np.random.default_rng(4)
    reference, current = customers(5_000, rng), customers(1_000, rng)
    current.loc[current["plan"] == "basic", "age"] += 5

    slices = compute_slice_drift(reference, current, COLUMNS, ["plan", "region"], THRESHOLDS)

    tested = [column for item in slices.slices for column in item.columns if column.judged]
    assert slices.comparisons == len(tested) == 3 * 3 + 4 * 4
    np.testing.assert_allclose(
        [column.p_adjusted for column in tested],
        holm_adjusted([column.p_value for column in tested]),
    )


def test_derived_slices_are_cut_as_the_gate_cuts_them_and_leave_their_column_out(settings):
    rng = np.random.default_rng(5)
    reference, current = customers(5_000, rng), customers(1_000, rng)

    slices = compute_slice_drift(reference, current, COLUMNS, None, THRESHOLDS)

    assert settings.drift_slice_columns == ["plan", "region", "tenure_bucket"]
    names = [item.name for item in slices.slices]
    assert names[-4:] == [
        "tenure_bucket=12-23m",
        "tenure_bucket=24m+",
        "tenure_bucket=6-11m",
        "tenure_bucket=<6m",
    ]
    tenure = slices.slices[-1]
    assert [column.column for column in tenure.columns] == ["age", "spend", "plan"]
    record = json.loads(json.dumps(slices.to_dict(), allow_nan=False))
    assert record["comparisons"] == slices.comparisons
    assert record["slices"][-1]["slice"] == "tenure_bucket=<6m"


def test_a_missing_slice_column_is_named():
    rng = np.random.default_rng(6)
    reference, current = customers(500, rng), customers(500, rng).drop(columns="tenure_months")

    with pytest.raises(DataError, match=r"current data lacks column\(s\) \['tenure_months'\]"):
        compute_slice_drift(reference, current, ["age"], ["tenure_bucket"], THRESHOLDS)
