"""Promotion through the gate, backfill safety, history and rollback on a real MLflow registry."""

import datetime as dt
import json

import mlflow
import numpy as np
import pytest

from churnloop import champion, cli, registry
from churnloop.errors import DataError
from churnloop.schema import LABEL
from churnloop.settings import Settings
from churnloop.training.gate import GateConfig, evaluate
from churnloop.training.promotion import promote_on_decision, recorded_decision
from tests.churnloop.training_support import (
    FEATURES,
    labelled_days,
    register_challenger,
    with_empty_mlflow,
)

OLDER_START, NEWER_START = dt.date(2026, 1, 1), dt.date(2026, 1, 9)
# Lenient on purpose: these tests are about what promotion does with a decision.
GATE = GateConfig.from_settings(
    Settings(),
    min_holdout_positives=2,
    min_holdout_negatives=2,
    min_roc_auc=0.6,
    noninferiority_margin=0.1,
    min_gain_over_baseline=None,
    slice_columns=("plan", "region"),
    max_slice_drop=0.25,
    min_slice_auc=None,
    max_slice_gap=None,
)


@pytest.fixture(scope="module")
def older():
    return labelled_days(OLDER_START, days=8, customers=300)


@pytest.fixture(scope="module")
def newer():
    return labelled_days(NEWER_START, days=8, customers=300)


@pytest.fixture
def mlflow_settings(settings):
    return with_empty_mlflow(settings)


def logical_date_for(trained):
    """A scheduled run's logical date: labels mature 30 days after the window ends."""
    return trained.training_data_end + dt.timedelta(days=30)


def bootstrap_champion(settings, frame):
    trained, holdout = register_challenger(settings, frame)
    decision = evaluate(None, trained.model, holdout, GATE)
    result = promote_on_decision(
        settings, trained.version, decision, logical_date=logical_date_for(trained)
    )
    assert result.promoted, result.reason
    return trained


@pytest.fixture
def two_champions(mlflow_settings, older, newer):
    """v1 promoted at bootstrap, then v2 (newer data) promoted over it."""
    first = bootstrap_champion(mlflow_settings, older)
    second, holdout = register_challenger(mlflow_settings, newer)
    served = registry.load_model(mlflow_settings, registry.CHAMPION)
    decision = evaluate(served, second.model, holdout, GATE)
    assert decision.blessed, decision.describe()
    result = promote_on_decision(
        mlflow_settings, 2, decision, logical_date=logical_date_for(second)
    )
    return first, second, holdout, result


def test_blessed_challenger_becomes_champion_and_the_old_one_stays_reachable(
    mlflow_settings, two_champions, monkeypatch
):
    _, second, holdout, result = two_champions

    assert (result.promoted, result.champion, result.previous_champion) == (True, 2, 1)
    assert result.describe() == "v2 promoted: blessed by the evaluation gate"
    assert json.loads(json.dumps(result.to_dict()))["version"] == 2
    assert registry.aliases(mlflow_settings) == {
        "champion": 2,
        "previous-champion": 1,
        "challenger": 2,
    }
    tags = registry.model_version(mlflow_settings, 2).tags
    assert tags["gate.decision"] == "blessed"
    assert tags["gate.min_roc_auc"].startswith("passed: challenger ROC AUC")
    assert tags[registry.PROMOTION_TAG] == "blessed by the evaluation gate"
    assert recorded_decision(mlflow_settings, 2).blessed

    history = champion.champion_history(mlflow_settings)
    assert [(h.version, h.kind, h.replaced) for h in history] == [
        (1, "promotion", None),
        (2, "promotion", 1),
    ]
    assert history[0].until == history[1].since and history[1].until is None
    assert history[1].logical_date == logical_date_for(second).isoformat()

    expected = second.model.predict_proba(holdout[FEATURES])
    served = registry.load_model(mlflow_settings, registry.CHAMPION)
    np.testing.assert_array_equal(served.predict_proba(holdout[FEATURES]), expected)
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    pyfunc = mlflow.pyfunc.load_model(f"models:/{mlflow_settings.model_name}@champion")
    np.testing.assert_allclose(np.asarray(pyfunc.predict(holdout[FEATURES])), expected)


def test_rejected_challenger_stays_out_until_a_person_forces_it_with_a_reason(
    mlflow_settings, older, newer
):
    bootstrap_champion(mlflow_settings, older)
    rng = np.random.default_rng(0)
    noise = newer.assign(**{LABEL: rng.permutation(newer[LABEL].to_numpy())})
    challenger, holdout = register_challenger(mlflow_settings, noise)
    served = registry.load_model(mlflow_settings, registry.CHAMPION)
    decision = evaluate(served, challenger.model, holdout, GATE)
    day = logical_date_for(challenger)

    rejected = promote_on_decision(mlflow_settings, 2, decision, logical_date=day)
    dry = promote_on_decision(
        mlflow_settings, 2, decision, logical_date=day, force_reason="x", dry_run=True
    )
    with pytest.raises(ValueError, match="needs a reason"):
        promote_on_decision(mlflow_settings, 2, decision, logical_date=day, force_reason=" ")
    assert registry.aliases(mlflow_settings)["champion"] == 1
    forced = promote_on_decision(
        mlflow_settings, 2, decision, logical_date=day, force_reason="INC-42 hotfix"
    )

    assert not rejected.promoted
    assert rejected.reason.startswith("rejected by the evaluation gate: challenger ROC AUC")
    assert (
        not dry.promoted
        and dry.reason == "dry run, nothing promoted; otherwise: would promote (forced)"
    )
    assert forced.promoted and forced.reason == "forced: INC-42 hotfix"
    tags = registry.model_version(mlflow_settings, 2).tags
    assert tags["gate.decision"] == "rejected"
    assert tags[registry.FORCED_REASON_TAG] == "INC-42 hotfix"
    last = champion.champion_history(mlflow_settings)[-1]
    assert (last.version, last.kind, last.reason) == (2, "forced", "forced: INC-42 hotfix")


def test_dry_run_promotes_nothing(mlflow_settings, older):
    trained, holdout = register_challenger(mlflow_settings, older)
    decision = evaluate(None, trained.model, holdout, GATE)

    result = promote_on_decision(
        mlflow_settings, 1, decision, logical_date=logical_date_for(trained), dry_run=True
    )

    assert decision.blessed and not result.promoted
    assert result.reason == "dry run, nothing promoted; otherwise: would promote (promotion)"
    assert registry.aliases(mlflow_settings) == {"challenger": 1}
    assert champion.champion_history(mlflow_settings) == []
    assert registry.model_version(mlflow_settings, 1).tags[registry.PROMOTION_TAG] == result.reason


def test_backfill_never_replaces_a_champion_trained_on_newer_data(mlflow_settings, older, newer):
    newest = bootstrap_champion(mlflow_settings, newer)
    backfilled, holdout = register_challenger(mlflow_settings, older)
    decision = evaluate(None, backfilled.model, holdout, GATE)
    backfill_day = newest.training_data_end - dt.timedelta(days=1)

    plain = promote_on_decision(mlflow_settings, 2, decision, logical_date=backfill_day)
    forced = promote_on_decision(
        mlflow_settings, 2, decision, logical_date=backfill_day, force_reason="try"
    )
    # Even on a current logical date, a model trained on older data is not newer.
    later = promote_on_decision(mlflow_settings, 2, decision, logical_date=logical_date_for(newest))

    assert decision.blessed
    for result in (plain, forced, later):
        assert not result.promoted
        assert result.reason.startswith("stale: champion v1 was trained on data up to 2026-01-16")
    assert registry.aliases(mlflow_settings)["champion"] == 1
    assert "stale" in registry.model_version(mlflow_settings, 2).tags[registry.PROMOTION_TAG]


def test_rollback_restores_the_previous_champion_and_is_recorded(
    mlflow_settings, two_champions, capsys
):
    first, _, holdout, _ = two_champions

    entry = champion.rollback(mlflow_settings, None, "v2 over-predicts churn in the south")

    assert (entry.version, entry.replaced, entry.kind) == (1, 2, "rollback")
    assert registry.aliases(mlflow_settings)["champion"] == 1
    assert registry.aliases(mlflow_settings)["previous-champion"] == 2
    served = registry.load_model(mlflow_settings, registry.CHAMPION)
    np.testing.assert_array_equal(
        served.predict_proba(holdout[FEATURES]), first.model.predict_proba(holdout[FEATURES])
    )
    with pytest.raises(DataError, match="already the champion"):
        champion.rollback(mlflow_settings, 1, "again")

    assert cli.main(["rollback", "--to", "2", "--reason", "south fixed upstream"]) == 0
    assert cli.main(["rollback", "--to", "9", "--reason", "typo"]) == 2
    assert cli.main(["champion-history"]) == 0

    output = capsys.readouterr()
    assert "@champion is now version 2 (was 1): south fixed upstream" in output.out
    assert "has no version 9" in output.err
    lines = output.out.strip().splitlines()[1:]
    assert [line.split()[0] for line in lines] == ["v1", "v2", "v1", "v2"]
    assert "rollback, replaced v2: v2 over-predicts churn in the south" in lines[2]
    assert lines[3].split()[4] == "now"


def test_rollback_needs_a_champion_and_a_target(mlflow_settings, capsys):
    with pytest.raises(DataError, match="has no champion to roll back from"):
        champion.rollback(mlflow_settings, None, "nothing to undo")
    with pytest.raises(ValueError, match="needs a reason"):
        champion.rollback(mlflow_settings, None, "")
    assert champion.champion_history(mlflow_settings) == []
    assert registry.champion_version(mlflow_settings) is None

    assert cli.main(["champion-history"]) == 0
    assert "has had no champion yet" in capsys.readouterr().out


def test_the_registered_models_description_tells_the_champion_history_newest_first(
    mlflow_settings, two_champions
):
    """The history tags are JSON for code; MLflow's UI shows people the description."""
    champion.rollback(mlflow_settings, None, "v2 <over-predicts> churn")

    description = (
        registry.connect(mlflow_settings)
        .get_registered_model(mlflow_settings.model_name)
        .description
    )

    history = champion.champion_history(mlflow_settings)
    assert [(h.version, h.kind) for h in history] == [
        (1, "promotion"),
        (2, "promotion"),
        (1, "rollback"),
    ]
    lines = [line for line in description.splitlines() if line.startswith("- ")]
    assert lines == [
        f"- {entry.describe()}".replace("<", "&lt;").replace(">", "&gt;")
        for entry in reversed(history)
    ]
    assert (
        lines[0].startswith("- v1 ")
        and "rollback, replaced v2: v2 &lt;over-predicts&gt;" in lines[0]
    )
    assert description.startswith("**Champion history**, newest first")


def test_with_a_canary_a_blessed_challenger_becomes_candidate_and_its_events_keep_the_periods(
    mlflow_settings, older, newer
):
    bootstrap_champion(mlflow_settings, older)
    challenger, holdout = register_challenger(mlflow_settings, newer)
    served = registry.load_model(mlflow_settings, registry.CHAMPION)
    decision = evaluate(served, challenger.model, holdout, GATE)
    day = logical_date_for(challenger)

    started = promote_on_decision(mlflow_settings, 2, decision, logical_date=day, canary=True)
    again = promote_on_decision(mlflow_settings, 2, decision, logical_date=day, canary=True)

    assert started.candidate and not started.promoted and again.candidate
    assert started.describe().startswith("v2 made @candidate for a canary beside champion v1")
    assert registry.aliases_and_split(mlflow_settings)[1] == registry.TrafficSplit(2, 0.0)
    with pytest.raises(DataError, match="not @candidate"):
        champion.promote_candidate(mlflow_settings, 1, "v1 was never on canary")
    champion.record_canary_step(mlflow_settings, 2, "step 1/1 passed")
    champion.promote_candidate(mlflow_settings, 2, "canary passed 100%")

    assert registry.aliases(mlflow_settings) == {
        "champion": 2,
        "previous-champion": 1,
        "challenger": 2,
    }
    assert registry.aliases_and_split(mlflow_settings)[1] == registry.TrafficSplit()
    events = champion.history_events(mlflow_settings)
    assert [(e.version, e.kind) for e in events] == [
        (1, "promotion"),
        (2, "candidate"),
        (2, "canary-step"),
        (2, "canary"),
    ], "a retried start is recorded once"
    periods = champion.champion_history(mlflow_settings)
    assert [(p.version, p.kind) for p in periods] == [(1, "promotion"), (2, "canary")]
    assert periods[0].until == periods[1].since, "v1 was champion until v2 passed its canary"
    description = registry.connect(mlflow_settings).get_registered_model("churn-model").description
    assert "canary-step: step 1/1 passed" in description


def test_an_ended_canary_leaves_the_champion_and_routes_nobody(mlflow_settings, older, newer):
    bootstrap_champion(mlflow_settings, older)
    register_challenger(mlflow_settings, newer)
    champion.promote(
        mlflow_settings, 2, blessed=True, gate_failures=[], logical_date=NEWER_START, canary=True
    )
    registry.set_canary_share(mlflow_settings, 2, 0.5)

    champion.end_candidate(mlflow_settings, 2, "canary rolled back: latency_p99 tripped")

    assert registry.aliases(mlflow_settings)["champion"] == 1
    assert registry.aliases_and_split(mlflow_settings) == (
        {"champion": 1, "challenger": 2},
        registry.TrafficSplit(),
    )
    assert (
        registry.model_version(mlflow_settings, 2)
        .tags[registry.PROMOTION_TAG]
        .startswith("canary rolled back: latency_p99")
    )
    assert champion.history_events(mlflow_settings)[-1].kind == "canary-rollback"
