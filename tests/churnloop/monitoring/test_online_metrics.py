"""The served ROC AUC per version, from the prediction log joined with matured labels."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnloop import schema
from churnloop.errors import DataError
from churnloop.monitoring.online_metrics import served_aucs, served_with_labels

SNAPSHOT_DAY = dt.date(2026, 2, 1)
MIDNIGHT = pd.Timestamp(SNAPSHOT_DAY, tz="UTC")
HOLDOUT = {3: 0.83, 4: 0.81}


def labels(customers: np.ndarray, churned: np.ndarray, day: pd.Timestamp = MIDNIGHT):
    return pd.DataFrame(
        {schema.ENTITY: customers, schema.TIMESTAMP: day, schema.LABEL: churned.astype("int8")}
    )


def served(customers, versions, scores, hours) -> pd.DataFrame:
    return pd.DataFrame(
        {
            schema.ENTITY: customers,
            schema.TIMESTAMP: [MIDNIGHT + pd.Timedelta(hours=hour) for hour in hours],
            "model_version": versions,
            schema.PREDICTION: scores,
        }
    )


@pytest.fixture
def canary_day() -> tuple[pd.DataFrame, pd.DataFrame]:
    """2,000 customers: v3 (champion) ranks them well, v4 (a canary's candidate) by chance.

    Every customer is scored twice by its version (morning, then evening), customers
    1-1,500 by v3 and the rest by v4.
    """
    rng = np.random.default_rng(0)
    customers = np.arange(1, 2_001)
    churned = rng.random(customers.size) < 0.2
    versions = np.where(customers <= 1_500, 3, 4)
    informative = 1 / (1 + np.exp(-(2.0 * churned + rng.normal(0, 1, customers.size) - 1.5)))
    evening = np.where(versions == 3, informative, rng.random(customers.size))
    morning = rng.random(customers.size)  # replaced by the evening's score
    log = pd.concat(
        [
            served(customers, versions, evening, hours=[20] * customers.size),
            served(customers, versions, morning, hours=[8] * customers.size),
        ]
    )
    return log, labels(customers, churned)


def test_each_version_gets_its_served_auc_beside_its_holdout_auc(canary_day, settings):
    log, matured = canary_day

    rows = served_with_labels(log, matured, SNAPSHOT_DAY)
    champion, candidate = served_aucs(rows, SNAPSHOT_DAY, HOLDOUT.get, settings)

    assert len(rows) == 2_000, "one row per customer and version: the day's last score"
    last = rows[rows["model_version"] == 3]
    assert champion.auc.estimate == pytest.approx(
        roc_auc_score(last[schema.LABEL], last[schema.PREDICTION])
    )
    assert champion.auc.low > 0.8 and champion.holdout_auc == 0.83
    assert candidate.auc.low < 0.5 < candidate.auc.high, "a chance ranking's interval holds 0.5"
    assert champion.describe().startswith(f"v3: served ROC AUC {champion.auc.estimate:.3f} [")
    assert "on 1,500 served customers of 2026-02-01" in champion.describe()
    assert champion.describe().endswith("holdout 0.830")


def test_rows_of_other_days_and_customers_without_labels_are_left_out(canary_day):
    log, matured = canary_day
    other_day = labels(
        matured[schema.ENTITY].to_numpy(), np.ones(2_000), MIDNIGHT - pd.Timedelta(days=1)
    )
    unlabelled = served([9_999], [3], [0.5], hours=[12])
    next_day = served([1], [3], [0.99], hours=[30])
    own_features = served([None], [3], [0.98], hours=[23])  # no customer_id: not labelled

    rows = served_with_labels(
        pd.concat([log, unlabelled, next_day, own_features]),
        pd.concat([matured, other_day]),
        SNAPSHOT_DAY,
    )

    assert len(rows) == 2_000 and 9_999 not in set(rows[schema.ENTITY])
    assert 0.98 not in set(rows[schema.PREDICTION])
    assert 0.99 not in set(rows[schema.PREDICTION]), "a score of the next day is not this day's"


def test_too_few_churners_are_reported_not_judged(settings):
    customers = np.arange(1, 501)
    churned = customers <= 20
    rows = served_with_labels(
        served(customers, [3] * 500, np.linspace(0, 1, 500), hours=[9] * 500),
        labels(customers, churned),
        SNAPSHOT_DAY,
    )

    (only,) = served_aucs(rows, SNAPSHOT_DAY, HOLDOUT.get, settings)

    assert only.auc is None and only.rows == 500 and only.positives == 20
    assert only.describe() == (
        "v3: served ROC AUC not judged (20 churned, fewer than 30); holdout 0.830"
    )


def test_a_version_without_a_holdout_auc_says_so(canary_day, settings):
    rows = served_with_labels(*canary_day, SNAPSHOT_DAY)

    results = served_aucs(rows, SNAPSHOT_DAY, lambda version: None, settings)

    assert all(result.describe().endswith("; no holdout AUC recorded") for result in results)


def test_labels_that_name_a_customer_twice_are_refused(canary_day):
    log, matured = canary_day

    with pytest.raises(DataError, match=r"label 1 customer\(s\) twice, e.g. \[7\]"):
        served_with_labels(log, pd.concat([matured, matured.iloc[[6]]]), SNAPSHOT_DAY)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (schema.LABEL, 2, r"'churned' of the matured labels must be 0 or 1; found \[2.0\]"),
        (schema.PREDICTION, 1.5, r"prediction log of v3 has 1 score\(s\) outside \[0, 1\]"),
    ],
)
def test_bad_values_name_what_is_wrong(canary_day, settings, column, value, message):
    rows = served_with_labels(*canary_day, SNAPSHOT_DAY)
    rows.loc[rows.index[0], column] = value

    with pytest.raises(DataError, match=message):
        served_aucs(rows, SNAPSHOT_DAY, HOLDOUT.get, settings)


def test_a_log_without_versions_is_refused(canary_day):
    log, matured = canary_day

    with pytest.raises(DataError, match=r"prediction log lacks column\(s\) \['model_version'\]"):
        served_with_labels(log.drop(columns="model_version"), matured, SNAPSHOT_DAY)
