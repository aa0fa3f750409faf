"""How a training run presents itself in MLflow: its name, what ran it, why and on what it trained.

A `RunStory` names the run and its source; its `run_tags` are given at the run's start, where
they win over what MLflow guesses (the process's script, ``LOCAL``). `describe_training` is
the Markdown of the run's note and of the version's description, within MLflow's limit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE, MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE

from churnloop import registry
from churnloop.training.calibration import CalibrationChoice
from churnloop.training.split import snapshot_days


@dataclass(frozen=True)
class RunStory:
    """How a training run presents itself in MLflow: its name, what ran it, why it trained.

    ``source`` and ``source_type`` replace MLflow's guess (the process's script, ``LOCAL``);
    ``why`` is Markdown, to which the run's note and the version's description add what
    the model was trained on (`describe_training`).
    """

    name: str
    source: str
    why: str
    source_type: str = "JOB"

    @classmethod
    def outside_airflow(cls, training_data_end: dt.date, called: Callable[..., Any]) -> RunStory:
        """The story of a run started by a direct call of ``called`` (a shell, a test, a
        benchmark), which it names as the run's source."""
        return cls(
            name=f"train on data up to {training_data_end}",
            source=f"{called.__module__}.{called.__qualname__}",
            why=f"Trained by a direct call of `{called.__name__}`, outside Airflow.",
            source_type="LOCAL",
        )

    def run_tags(self, note: str) -> dict[str, str]:
        """MLflow's source and note tags of the run, ``note`` being its Markdown note."""
        return {
            MLFLOW_SOURCE_NAME: self.source,
            MLFLOW_SOURCE_TYPE: self.source_type,
            MLFLOW_RUN_NOTE: note,
        }


def describe_training(
    story: RunStory,
    tags: Mapping[str, str],
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    calibration: CalibrationChoice,
) -> str:
    """Why the version was trained and on what, as Markdown (the run's note and the
    version's description): the story's why, then window, FeatureService, rows, dataset
    digest, where its parameters came from and its calibration."""
    holdout_start = snapshot_days(holdout, "holdout").min().date()
    trained_on = (
        f"Trained on snapshots {tags[registry.DATA_WINDOW_START_TAG]} to "
        f"{tags[registry.TRAINING_DATA_END_TAG]} of FeatureService "
        f"`{tags[registry.FEATURE_SERVICE_TAG]}`: {len(train):,} training rows, "
        f"{len(holdout):,} holdout rows from {holdout_start}; dataset digest "
        f"`{tags[registry.DATASET_DIGEST_TAG]}`. Parameters: "
        f"{tags[registry.PARAMS_SOURCE_TAG]}; calibration: {calibration.method}."
    )
    return registry.within_description_limit(f"{story.why}\n\n{trained_on}")
