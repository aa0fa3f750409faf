"""The ROC AUC estimated before the labels, on shifts whose effect on the AUC is known.

A logistic model fitted on a well-specified logistic population is calibrated by
construction; the shifted populations then say what the estimate can see (covariate
drift, harmless or harmful) and what it cannot (concept drift).
"""

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from churnloop import schema
from churnloop.errors import DataError
from churnloop.monitoring.effect_sizes import compute_drift
from churnloop.monitoring.estimated_performance import (
    estimate_auc,
    estimate_performance,
    expected_roc_auc,
    simulated_aucs,
)
from churnloop.monitoring.verdict import decide, performance_drift, staleness
from churnloop.training.metrics import score

WEIGHTS = np.array([2.5, 0.05])
"""Churn's log-odds lean on ``signal``; ``noise`` barely matters."""
DAY = dt.date(2026, 3, 4)
FRESH = staleness(DAY - dt.timedelta(days=35), DAY, max_age_days=45)
SHIFTS = {
    "no drift": {},
    "harmless: a feature the model barely uses": {"noise": (3.0, 1.0)},
    "harmful: customers where the model is unsure": {"signal": (0.4, 0.15)},
}
"""Covariate drifts: the population moves, churn still follows the same log-odds."""


def population(
    seed: int, rows: int, *, signal=(0.0, 1.0), noise=(0.0, 1.0), concept: float = 1.0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Features and churn labels; ``concept`` -1 flips how churn depends on them."""
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(
        {"signal": rng.normal(*signal, rows), "noise": rng.normal(*noise, rows)}
    )
    probability = 1 / (1 + np.exp(1.0 - concept * features.to_numpy() @ WEIGHTS))
    return features, (rng.random(rows) < probability).astype("int8")


@pytest.fixture(scope="module")
def model() -> LogisticRegression:
    return LogisticRegression().fit(*population(seed=0, rows=20_000))


@pytest.fixture(scope="module")
def reference(model) -> pd.DataFrame:
    """The model's holdout: labels and scores, as the champion's reference holds them."""
    features, labels = population(seed=1, rows=5_000)
    scores = model.predict_proba(features)[:, 1]
    return features.assign(**{schema.LABEL: labels, schema.PREDICTION: scores})


def test_expected_auc_is_the_mean_auc_of_labels_drawn_from_the_scores():
    scores = np.random.default_rng(2).beta(1.0, 4.0, 2_000)

    assert expected_roc_auc(scores) == pytest.approx(simulated_aucs(scores, 2_000).mean(), abs=2e-3)


@pytest.mark.parametrize(
    ("scores", "expected"),
    [([0.0, 0.0, 1.0, 1.0], 1.0), ([0.3] * 10, 0.5), ([0.2, 0.2, 0.8, 0.8], 0.8)],
    ids=["certain", "all tied", "two groups"],
)
def test_expected_auc_of_hand_computed_cases(scores, expected):
    # two groups: 1.6 of 2 churners and 0.4 of 2 stayers expected at 0.8, so the expected
    # ROC curve runs (0, 0), (0.2, 0.8), (1, 1): area 0.2 * 0.4 + 0.8 * 0.9 = 0.8
    assert expected_roc_auc(np.array(scores)) == pytest.approx(expected)


def test_the_interval_narrows_as_the_square_root_of_the_sample():
    rng = np.random.default_rng(3)
    small = estimate_auc(rng.beta(1.0, 4.0, 500), confidence=0.95, simulations=400)
    large = estimate_auc(rng.beta(1.0, 4.0, 5_000), confidence=0.95, simulations=400)

    ratio = (small.high - small.low) / (large.high - large.low)
    assert np.sqrt(10) / 1.3 < ratio < np.sqrt(10) * 1.3


@pytest.mark.parametrize("shift", list(SHIFTS))
def test_under_covariate_drift_the_interval_covers_the_realized_auc(model, shift):
    """Stated bound: on 40 days of 2,000 rows the 95% interval covers the realized AUC on
    at least 34 (85%), and the estimate is never more than 0.03 from it."""
    covered, errors = 0, []
    for day in range(40):
        features, labels = population(seed=100 + day, rows=2_000, **SHIFTS[shift])
        scores = model.predict_proba(features)[:, 1]
        interval = estimate_auc(scores, confidence=0.95, simulations=200)
        realized = roc_auc_score(labels, scores)
        covered += interval.low <= realized <= interval.high
        errors.append(abs(interval.estimate - realized))

    assert covered >= 34, f"{shift}: covered {covered} of 40"
    assert max(errors) <= 0.03, f"{shift}: largest error {max(errors):.3f}"


@pytest.mark.parametrize(
    ("shift", "harmful"),
    [("no drift", False), ("harmless: a feature the model barely uses", False)]
    + [("harmful: customers where the model is unsure", True)],
)
def test_only_an_estimated_loss_lets_drift_retrain(model, reference, settings, shift, harmful):
    features, labels = population(seed=7, rows=2_000, **SHIFTS[shift])
    current = features.assign(**{schema.PREDICTION: model.predict_proba(features)[:, 1]})
    holdout_auc = roc_auc_score(reference[schema.LABEL], reference[schema.PREDICTION])
    matured = current.assign(**{schema.LABEL: labels})
    realized = performance_drift(matured, holdout_auc, max_drop=0.05, min_rows=200)

    estimate = estimate_performance(
        current[schema.PREDICTION], reference[schema.LABEL], reference[schema.PREDICTION], settings
    )
    drift = compute_drift(reference, current, ["signal", "noise"])
    verdict = decide(drift, None, FRESH, ["signal", "noise"], estimate=estimate)

    assert estimate.harmful is harmful is realized.degraded, estimate.summary
    assert verdict.triggered is harmful
    if harmful:
        assert verdict.reasons[-1].startswith("estimated performance drop: estimated ROC AUC")
    elif shift != "no drift":
        assert verdict.drift_without_harm[0].startswith("data drift on important columns: noise")


def test_concept_drift_is_invisible_to_the_estimate_but_not_to_the_realized_auc(
    model, reference, settings
):
    features, labels = population(seed=8, rows=2_000, concept=-1.0)
    scores = model.predict_proba(features)[:, 1]
    estimate = estimate_performance(
        scores, reference[schema.LABEL], reference[schema.PREDICTION], settings
    )
    matured = pd.DataFrame({schema.LABEL: labels, schema.PREDICTION: scores})
    realized = performance_drift(matured, baseline_auc=0.89, max_drop=0.05, min_rows=200)

    assert estimate.harm_ruled_out, estimate.summary
    assert estimate.estimate.low > 0.85 and realized.auc < 0.2
    no_drift = compute_drift(reference, features, ["signal", "noise"])
    verdict = decide(no_drift, realized, FRESH, ["signal"], estimate=estimate)
    assert [reason.split(":")[0] for reason in verdict.reasons] == ["performance drop"]


def test_too_few_expected_churners_are_not_estimated(reference, settings):
    scores = np.full(300, 0.05)  # about 19 churners expected, calibrated on the reference

    estimate = estimate_performance(
        scores, reference[schema.LABEL], reference[schema.PREDICTION], settings
    )

    assert not estimate.judged and not estimate.harmful and not estimate.harm_ruled_out
    assert re.search(
        r"the day expects 1\d\.\d churners in 300 rows, fewer than 30", estimate.summary
    )


def test_without_a_threshold_the_loss_is_reported_and_rules_nothing_out(reference, settings):
    settings = settings.model_copy(update={"drift_max_estimated_auc_drop": None})
    scores = reference[schema.PREDICTION]

    estimate = estimate_performance(scores, reference[schema.LABEL], scores, settings)

    assert estimate.judged and not estimate.harm_ruled_out
    assert estimate.loss == pytest.approx(estimate.reference_auc - estimate.estimate.high)
    assert "no limit set" in estimate.summary


@pytest.mark.parametrize(
    ("scores", "message"),
    [([0.2, np.nan], "current data has 1 missing score"), ([0.2, 1.5], r"outside \[0, 1\]")],
)
def test_bad_scores_name_what_is_wrong(reference, settings, scores, message):
    with pytest.raises(DataError, match=message):
        estimate_performance(
            scores, reference[schema.LABEL], reference[schema.PREDICTION], settings
        )


# -- the project's simulator and model --------------------------------------------------

SIMULATED_FEATURES = [*schema.CATEGORICAL, *schema.NUMERIC]
SIMULATED_START = dt.date(2026, 1, 1)
SIMULATED_DRIFT = SIMULATED_START + dt.timedelta(days=12)


def simulated_day(day: dt.date, scenario) -> pd.DataFrame:
    """A simulated day's snapshots with their labels, as if matured (a few thousand rows)."""
    from churnloop.demo.simulation import generate_labels, generate_snapshots

    snapshots = generate_snapshots(day, 2_000, scenario=scenario).to_pandas()
    labels = generate_labels(day, 2_000, scenario=scenario).to_pandas()
    return snapshots.merge(labels[[schema.ENTITY, schema.LABEL]], on=schema.ENTITY)


@pytest.fixture(scope="module")
def simulated_champion():
    """The challenger's LightGBM pipeline on 10 simulated days, and its next day as holdout."""
    from churnloop.demo.simulation import BASELINE
    from churnloop.settings import Settings
    from churnloop.training.pipeline import fit_pipeline

    days = [SIMULATED_START + dt.timedelta(days=offset) for offset in range(11)]
    frames = [simulated_day(day, BASELINE) for day in days]
    params = {**Settings().model_params, "n_jobs": 1}
    model = fit_pipeline(pd.concat(frames[:-1]), SIMULATED_FEATURES, params, seed=42)
    holdout = frames[-1].assign(**{schema.PREDICTION: score(model, frames[-1])})
    return model, holdout


@pytest.mark.parametrize("name", ["covariate_drift", "concept_drift"])
def test_on_the_simulator_the_estimate_sees_covariate_drift_only(
    simulated_champion, settings, name
):
    """The simulator's covariate drift (ages towards 65) costs less ROC AUC than the
    threshold (docs/staleness.md): drift without estimated harm, as the realized AUC
    later confirms. Its concept drift leaves the estimate where it was; the matured
    labels show the loss."""
    from churnloop.demo.simulation import Scenario

    model, holdout = simulated_champion
    scenario = Scenario(name, drift_start=SIMULATED_DRIFT, ramp_days=1)
    day = simulated_day(SIMULATED_DRIFT + dt.timedelta(days=2), scenario)
    day[schema.PREDICTION] = score(model, day)
    holdout_auc = roc_auc_score(holdout[schema.LABEL], holdout[schema.PREDICTION])

    estimate = estimate_performance(
        day[schema.PREDICTION], holdout[schema.LABEL], holdout[schema.PREDICTION], settings
    )
    realized = performance_drift(day, holdout_auc, max_drop=0.05, min_rows=200)

    assert estimate.harm_ruled_out, estimate.summary
    assert realized.degraded is (name == "concept_drift"), realized.summary
    if name == "covariate_drift":
        assert abs(estimate.estimate.estimate - realized.auc) <= 0.05
        drift = compute_drift(
            holdout, day, SIMULATED_FEATURES, categorical_columns=schema.CATEGORICAL
        )
        verdict = decide(drift, None, FRESH, ["age"], estimate=estimate)
        assert not verdict.triggered and "age" in verdict.drift_without_harm[0]


@pytest.mark.parametrize("sharpness", [0.5, 2.0], ids=["underconfident", "overconfident"])
def test_miscalibrated_scores_are_mapped_to_the_references_rates_before_estimating(
    settings, sharpness
):
    """Known truth: labels drawn from true probabilities, scores that rank the same but are
    under- or overconfident. Read as probabilities they misstate the AUC (the demo's
    champion: 0.813 estimated, 0.740 realized); mapped to the reference's churn rates first,
    the estimate is the realized AUC within 0.02, on the reference and on a new day."""
    rng = np.random.default_rng(11)
    truth = rng.beta(0.6, 8.0, 40_000)
    labels = rng.random(truth.size) < truth
    logit = np.log(truth / (1 - truth))
    scores = 1 / (1 + np.exp(-(sharpness * logit + np.log(0.07 / 0.93) * (1 - sharpness))))
    reference, day = slice(0, 20_000), slice(20_000, None)
    realized = {
        name: roc_auc_score(labels[part], scores[part])
        for name, part in (("reference", reference), ("day", day))
    }

    estimate = estimate_performance(scores[day], labels[reference], scores[reference], settings)

    assert abs(expected_roc_auc(scores[reference]) - realized["reference"]) > 0.03, "raw: biased"
    assert abs(estimate.reference_auc - realized["reference"]) < 0.02
    assert abs(estimate.estimate.estimate - realized["day"]) < 0.02
