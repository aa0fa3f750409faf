"""The training steps as the DAG runs them, on a validated training set in the lake and a
real MLflow store: what a person browsing MLflow sees of a run and of its evaluation."""

import datetime as dt
import logging

import mlflow
import pandas as pd
import pyarrow as pa
import pytest

from churnloop import registry, schema, storage
from churnloop.demo.simulation import generate_labels, generate_snapshots
from churnloop.features import definition
from churnloop.schema import ENTITY, TIMESTAMP
from churnloop.training import steps
from churnloop.training.plan import plan_training_run
from tests.churnloop.training_support import FAST_PARAMS, with_empty_mlflow

FIRST_DAY, DAYS, CUSTOMERS = dt.date(2026, 1, 1), 8, 300
AS_OF = FIRST_DAY + dt.timedelta(days=DAYS + schema.LABEL_DELAY_DAYS)
LINEAGE = {"dag_id": "continuous_training", "run_id": "asset_triggered__2026-02-08T02:00:00"}
DRIFT = {"timestamp": "2026-02-08T02:00:00+00:00", "day": "2026-02-07", "reasons": ["age"]}


@pytest.fixture(scope="module")
def training_set() -> pa.Table:
    """What `build_training_set` and its suite leave: each day's features with its labels."""
    days = [FIRST_DAY + dt.timedelta(days=offset) for offset in range(DAYS)]
    history = pd.concat([generate_snapshots(day, CUSTOMERS).to_pandas() for day in days])
    rows = [
        definition.build_features(history, day).merge(
            generate_labels(day, CUSTOMERS).to_pandas(), on=[ENTITY, TIMESTAMP]
        )
        for day in days
    ]
    return pa.Table.from_pandas(pd.concat(rows, ignore_index=True), preserve_index=False)


@pytest.fixture
def planned(settings, training_set):
    """A drift run's plan whose validated training set is in the lake."""
    dataset = schema.validated_dataset(schema.TRAINING_SETS)
    storage.lake(settings).write_table(dataset, AS_OF, training_set)
    params = {"training_window_days": DAYS, "holdout_days": 3, "tuning_trials": 0}
    plan = plan_training_run(
        settings, as_of=AS_OF, params=params, trigger="drift", drift_events=[DRIFT]
    )
    return plan.to_dict()


@pytest.fixture
def fast(settings):
    update = {"model_params": FAST_PARAMS, "importance_repeats": 1}
    return with_empty_mlflow(settings.model_copy(update=update))


def test_a_training_run_is_named_sourced_and_described_for_what_it_is(fast, planned):
    trained = steps.train_challenger(fast, planned, LINEAGE)

    run = mlflow.get_run(trained["run_id"])
    assert run.info.run_name == "train as of 2026-02-08 (drift)"
    assert run.data.tags["mlflow.source.name"] == "continuous_training.train_challenger"
    assert run.data.tags["mlflow.source.type"] == "JOB"
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith("Trained as of 2026-02-08 by a **drift** run of `continuous_training`")
    assert f"(Airflow run `{LINEAGE['run_id']}`)" in note
    assert "Drift events consumed (1):\n- 2026-02-07: age" in note
    assert "Trained on snapshots 2026-01-01 to 2026-01-08 of FeatureService" in note
    assert registry.model_version(fast, trained["version"]).description == note


def test_evaluation_overlays_the_challengers_curves_on_the_champions(fast, planned, caplog):
    """No champion at the first run: challenger and baselines; then the champion too."""
    caplog.set_level(logging.INFO, logger="churnloop")
    first = steps.train_challenger(fast, planned, LINEAGE)
    decision = steps.evaluate_challenger(fast, planned, first)
    forced = {**planned, "force_reason": "test: a champion to compare with"}
    assert steps.promote_challenger(fast, forced, first, decision)["promoted"]
    second = steps.train_challenger(fast, planned, LINEAGE)

    steps.evaluate_challenger(fast, planned, second)

    client = registry.connect(fast)
    overlays = {"plots/roc_vs_champion.png", "plots/pr_vs_champion.png"}
    for trained in (first, second):
        logged = {item.path for item in client.list_artifacts(trained["run_id"], "plots")}
        assert overlays <= logged, trained
    curves = [message for message in caplog.messages if message.startswith("holdout curves")]
    assert curves[0].startswith("holdout curves of challenger v1, logistic_regression,")
    assert curves[1].startswith("holdout curves of challenger v2, champion v1, logistic_reg")
