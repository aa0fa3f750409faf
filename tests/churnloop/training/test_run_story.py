"""A training run's story in MLflow: the run's name, source and note, the version's description."""

import datetime as dt

import mlflow

from churnloop import registry
from churnloop.training.run_story import RunStory
from tests.churnloop.training_support import (
    FEATURE_SERVICE,
    labelled_days,
    register_challenger,
    with_empty_mlflow,
)

FIRST_DAY = dt.date(2026, 1, 1)


def test_the_run_is_named_and_described_by_its_story_and_the_version_too(settings):
    """What the MLflow UI shows first: the run's name, source and note, the version's
    description; all say why it trained and on what."""
    settings = with_empty_mlflow(settings)
    story = RunStory(
        name="train as of 2026-02-08 (drift)",
        source="continuous_training.train_challenger",
        why="Trained as of 2026-02-08 by a **drift** run of `continuous_training`.",
    )

    trained, holdout = register_challenger(settings, labelled_days(FIRST_DAY, 8, 300), story=story)

    run = mlflow.get_run(trained.run_id)
    assert run.info.run_name == "train as of 2026-02-08 (drift)"
    assert run.data.tags["mlflow.source.name"] == "continuous_training.train_challenger"
    assert run.data.tags["mlflow.source.type"] == "JOB"
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith(story.why + "\n\n")
    assert (
        f"Trained on snapshots 2026-01-01 to 2026-01-08 of FeatureService `{FEATURE_SERVICE}`: "
        f"1,500 training rows, {len(holdout):,} holdout rows from 2026-01-06; dataset digest "
        f"`{trained.dataset_digest}`. Parameters: settings; calibration: "
    ) in note
    version = registry.model_version(settings, trained.version)
    assert version.description == note
