"""Training the challenger: fit it, log its MLflow run, register it as ``@challenger``.

`train_and_register` returns a `TrainedModel`. Its run holds what it takes to trust or
redo the version (parameters, metrics, plots, the dataset's digest, git sha and lineage
tags, the calibration chosen and its evidence) and the holdout sample with scores that
drift checks compare to (`reference_data`). A `RunStory` (`churnloop.training.run_story`)
names the run and what ran it; the run's note and the version's description say why it
trained and on what.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.data.digest_utils import get_normalized_md5_digest
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from sklearn.pipeline import Pipeline

from churnloop import registry
from churnloop.errors import DataError
from churnloop.schema import ENTITY, LABEL, PREDICTION, TIMESTAMP
from churnloop.settings import Settings
from churnloop.training.calibration import CalibrationChoice, fit_calibrated
from churnloop.training.frames import at_most
from churnloop.training.metrics import binary_labels, classification_metrics, score
from churnloop.training.pipeline import lightgbm_classifier, require_training_columns
from churnloop.training.plots import holdout_plots
from churnloop.training.run_story import RunStory, describe_training
from churnloop.training.split import snapshot_days
from churnloop.training.tuning import SEARCH_SPACE, TuningResult, log_trials

MODEL_ARTIFACT = "model"
REFERENCE_ARTIFACT = "reference/reference.parquet"
SCHEMA_SAMPLE_ROWS = 1_000
"""Rows the logged training dataset's schema is inferred from (see `_dataset_record`)."""
MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "lightgbm", "skops", "pandas", "numpy", "scipy")
"""Pinned to the installed versions: MLflow would otherwise infer them, slowly, per model."""


@dataclass(frozen=True)
class TrainedModel:
    """A registered challenger: where it is, what it scored, and the fitted pipeline."""

    name: str
    version: int
    run_id: str
    metrics: dict[str, float]
    training_data_end: dt.date
    dataset_digest: str
    model: Pipeline

    def to_dict(self) -> dict[str, Any]:
        """What a task hands to the next one (small and JSON-safe; no model)."""
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "metrics": self.metrics,
            "training_data_end": self.training_data_end.isoformat(),
            "dataset_digest": self.dataset_digest,
        }


@dataclass(frozen=True)
class FittedChallenger:
    """A fitted pipeline with its holdout scores and metrics and its calibration, before
    anything is logged."""

    model: Pipeline
    holdout_scores: np.ndarray
    holdout_metrics: dict[str, float]
    train_metrics: dict[str, float]
    calibration: CalibrationChoice

    def run_metrics(self) -> dict[str, float]:
        """The metrics its run logs: ``holdout_*``, ``train_*`` and ``calibration_*``."""
        return {
            **{f"holdout_{key}": value for key, value in self.holdout_metrics.items()},
            **{f"train_{key}": value for key, value in self.train_metrics.items()},
            **{f"calibration_{key}": value for key, value in self.calibration.metrics.items()},
        }


def train_and_register(
    settings: Settings,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    feature_names: list[str],
    feature_service: str,
    lineage: Mapping[str, str],
    params: Mapping[str, Any] | None = None,
    params_source: str = "settings",
    tuning: TuningResult | None = None,
    story: RunStory | None = None,
) -> TrainedModel:
    """Fit on ``train``, log everything to MLflow, register a version tagged ``@challenger``.

    ``lineage`` (``dag_id``, ``run_id``, ...) becomes ``airflow.<key>`` tags; ``story`` names
    the run (`RunStory.outside_airflow` by default); ``params`` default to the settings'.
    A commit that cannot be told is refused where settings require one (production).
    """
    params = dict(settings.model_params if params is None else params)
    commit = provenance(settings)
    fitted = fit_challenger(settings, train, holdout, feature_names, params)
    window_start = snapshot_days(train, "training split").min().date()
    window_end = snapshot_days(holdout, "holdout").max().date()
    dataset = _dataset_record(train, f"{feature_service} {window_start}..{window_end}")
    tags = {
        **commit,
        registry.PARAMS_SOURCE_TAG: params_source,
        registry.FEATURE_SERVICE_TAG: feature_service,
        registry.DATA_WINDOW_START_TAG: window_start.isoformat(),
        registry.TRAINING_DATA_END_TAG: window_end.isoformat(),
        registry.DATASET_DIGEST_TAG: dataset.digest,
        **fitted.calibration.tags(),
        **{f"{registry.LINEAGE_TAG_PREFIX}{key}": str(value) for key, value in lineage.items()},
    }
    story = story or RunStory.outside_airflow(window_end, train_and_register)
    description = describe_training(story, tags, train, holdout, fitted.calibration)
    run_id, version = log_challenger_run(
        settings,
        fitted,
        train,
        holdout,
        feature_names=feature_names,
        params=params,
        tags=tags,
        dataset=dataset,
        story=story,
        description=description,
        tuning=tuning,
    )
    mark_as_challenger(settings, version, tags, description)
    return TrainedModel(
        name=settings.model_name,
        version=version,
        run_id=run_id,
        metrics=fitted.holdout_metrics,
        training_data_end=window_end,
        dataset_digest=dataset.digest,
        model=fitted.model,
    )


def fit_challenger(
    settings: Settings,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    feature_names: list[str],
    params: Mapping[str, Any],
) -> FittedChallenger:
    """Fit the seeded pipeline on ``train``, calibrated when that helps (`fit_calibrated`);
    score the holdout and a sample of ``train``.

    The training metrics come from at most ``settings.train_metrics_max_rows`` rows: enough
    to see overfitting, without scoring all of a large split.
    """
    seed = settings.training_seed
    require_training_columns(holdout, "holdout", feature_names)
    model, calibration = fit_calibrated(settings, train, feature_names, params)
    holdout_scores = score(model, holdout, "challenger")
    holdout_metrics = classification_metrics(binary_labels(holdout, "holdout"), holdout_scores)
    scored = at_most(train, settings.train_metrics_max_rows, seed)
    train_metrics = classification_metrics(scored[LABEL], score(model, scored, "challenger"))
    return FittedChallenger(model, holdout_scores, holdout_metrics, train_metrics, calibration)


def log_challenger_run(
    settings: Settings,
    fitted: FittedChallenger,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    feature_names: list[str],
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    dataset: PandasDataset,
    story: RunStory,
    description: str,
    tuning: TuningResult | None = None,
) -> tuple[str, int]:
    """Log the run (name, source, note, tags, parameters, metrics, dataset, plots, drift
    reference, tuning trials, model).

    MLflow's source and note tags are given at the run's start, where they win over what
    MLflow guesses. Logging the model registers it: returns the run id and the new
    version's number.
    """
    experiment_id = _experiment_id(settings)
    story_tags = story.run_tags(description)
    with mlflow.start_run(experiment_id=experiment_id, run_name=story.name, tags=story_tags) as run:
        mlflow.set_tags(tags)
        mlflow.log_params(_run_params(settings, fitted, params, feature_names, train, holdout))
        mlflow.log_metrics(fitted.run_metrics())
        mlflow.log_input(dataset, context="training")
        _log_holdout_plots(fitted, holdout)
        _log_reference(holdout, fitted.holdout_scores, feature_names, settings)
        if tuning is not None and tuning.trials:
            log_trials(tuning)
        info = _log_model(settings, fitted.model, train[feature_names])
    return run.info.run_id, int(info.registered_model_version)


def _run_params(
    settings: Settings,
    fitted: FittedChallenger,
    params: Mapping[str, Any],
    feature_names: list[str],
    train: pd.DataFrame,
    holdout: pd.DataFrame,
) -> dict[str, Any]:
    """The run's parameters: the model's, then the seed, the data's sizes and the calibration."""
    return {
        **params,
        "seed": settings.training_seed,
        "features": len(feature_names),
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "holdout_start": snapshot_days(holdout, "holdout").min().date().isoformat(),
        "calibration": fitted.calibration.method,
        "calibration_days": fitted.calibration.days,
    }


def _log_holdout_plots(fitted: FittedChallenger, holdout: pd.DataFrame) -> None:
    """`holdout_plots` as PNGs under the run's ``plots/``."""
    labels = holdout[LABEL].to_numpy()
    for name, figure in holdout_plots(fitted.model, labels, fitted.holdout_scores).items():
        mlflow.log_figure(figure, f"plots/{name}.png")


def mark_as_challenger(
    settings: Settings, version: int, tags: Mapping[str, str], description: str
) -> None:
    """Copy the run's tags and description onto the model version and point
    ``@challenger`` at it."""
    client = registry.connect(settings)
    for key, value in tags.items():
        client.set_model_version_tag(settings.model_name, str(version), key, value)
    client.update_model_version(settings.model_name, str(version), description=description)
    client.set_registered_model_alias(settings.model_name, registry.CHALLENGER, str(version))


def reference_data(settings: Settings, version: int) -> pd.DataFrame:
    """The drift reference of a version: a seeded sample of its holdout, with scores.

    The holdout, not the training split, because its scores are out-of-sample like live
    ones and its days are the newest the model was judged on. Columns: the entity, the
    timestamp, the features, the label and `PREDICTION`.
    """
    run_id = registry.model_version(settings, version).run_id
    with tempfile.TemporaryDirectory(prefix="churnloop-reference-") as folder:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=folder
        )
        return pd.read_parquet(path)


def warm_requirement_checks() -> None:
    """Build MLflow's map of installed modules to distributions, once, before a fork.

    `log_model` checks the pinned `MODEL_REQUIREMENTS` against the environment, which
    makes MLflow map every installed distribution's files to its modules, once per
    process. The preloading executor calls this before its workers fork
    (`churnloop.orchestration.executor.CACHE_WARMERS`), so no training task pays it. The map
    is MLflow's own cache and no public call fills it.
    """
    from mlflow.utils.requirements_utils import _init_modules_to_packages_map

    _init_modules_to_packages_map()


def base_params(settings: Settings) -> tuple[dict[str, Any], str]:
    """The parameters a run starts from, and where they come from.

    ``CHURNLOOP_MODEL_PARAMS`` set by a person wins ("override"); else the champion's
    ("champion vN"), so a run without tuning repeats what is served; else the settings'.
    """
    if "model_params" in settings.model_fields_set:
        return dict(settings.model_params), "override"
    champion = registry.champion_version(settings)
    if champion is None:
        return dict(settings.model_params), "settings"
    classifier = lightgbm_classifier(registry.load_model(settings, registry.CHAMPION))
    chosen = classifier.get_params()
    keys = set(settings.model_params) | set(SEARCH_SPACE)
    return {
        key: chosen[key] for key in sorted(keys) if key in chosen
    }, f"champion v{champion.version}"


def provenance(settings: Settings) -> dict[str, str]:
    """The commit tags of a new version; refuses an unknown commit if settings require one."""
    commit = settings.git_sha or git_sha(settings.project_root)
    if commit == "unknown" and settings.require_known_commit:
        raise DataError(
            "refusing to register a model whose commit is unknown: build the image with "
            "--build-arg GIT_SHA=$(git rev-parse HEAD) or set CHURNLOOP_GIT_SHA"
        )
    dirty = "unknown" if settings.git_sha else _git_dirty(settings.project_root)
    return {registry.GIT_SHA_TAG: commit, registry.GIT_DIRTY_TAG: dirty}


def git_sha(root: Path) -> str:
    """The checkout's commit, or ``"unknown"`` outside a git repository."""
    return _git(root, "rev-parse", "HEAD") or "unknown"


def _git_dirty(root: Path) -> str:
    """``"true"`` when tracked files differ from the commit, ``"unknown"`` outside git."""
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    if status is None:
        return "unknown"
    return "true" if status else "false"


def _git(root: Path, *arguments: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *arguments], cwd=root, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def _experiment_id(settings: Settings) -> str:
    """The project's experiment, created with its artifact root on first use."""
    client = registry.connect(settings)
    name = settings.mlflow_experiment
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = f"{settings.mlflow_artifact_uri.rstrip('/')}/{name}"
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def _dataset_record(train: pd.DataFrame, name: str) -> PandasDataset:
    """MLflow's record of the training split: its digest over every row, its schema from a sample.

    MLflow's own digest hashes the first 10,000 rows only (and slowly); pandas' hashes of
    every row tell apart splits that differ past row 10,000. MLflow infers a schema value
    by value, as long as the fit itself on a large split; a schema holds each column's
    type and whether it may be missing, so the first rows plus, for each column with a
    missing value, one row where it is missing give the same schema.
    """
    row_hashes = pd.util.hash_pandas_object(train, index=False).to_numpy()
    digest = get_normalized_md5_digest([row_hashes, *(str(c).encode() for c in train.columns)])
    dataset = mlflow.data.from_pandas(train, name=name, targets=LABEL, digest=digest)
    missing = train.isna()
    gaps = {int(missing[column].to_numpy().argmax()) for column in train.columns[missing.any()]}
    rows = sorted({*range(min(len(train), SCHEMA_SAMPLE_ROWS)), *gaps})
    with warnings.catch_warnings():
        # MLflow's hint about integer columns concerns serving schemas, not dataset records.
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer")
        dataset.schema = infer_signature(train.iloc[rows]).inputs  # a cached_property
    return dataset


def _log_model(settings: Settings, model: Pipeline, rows: pd.DataFrame) -> ModelInfo:
    """Log the pipeline with skops, its signature and pinned requirements; registers it."""
    example = _as_schema_example(rows.head(5))
    return mlflow.sklearn.log_model(
        model,
        name=MODEL_ARTIFACT,
        registered_model_name=settings.model_name,
        signature=infer_signature(example, model.predict_proba(example)),
        input_example=example,
        pip_requirements=[f"{name}=={installed_version(name)}" for name in MODEL_REQUIREMENTS],
        skops_trusted_types=registry.SKOPS_TRUSTED_TYPES,
        pyfunc_predict_fn="predict_proba",
    )


def _as_schema_example(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows whose integer columns are doubles, to declare the model's input schema with.

    MLflow accepts ints for a double column, but a missing value in an int column (which
    LightGBM would handle) fails schema enforcement at serving time.
    """
    integers = rows.select_dtypes(include="integer").columns
    return rows.astype({column: "float64" for column in integers})


def _log_reference(
    holdout: pd.DataFrame, scores: np.ndarray, feature_names: list[str], settings: Settings
) -> None:
    columns = [c for c in (ENTITY, TIMESTAMP) if c in holdout.columns] + [*feature_names, LABEL]
    reference = holdout[columns].assign(**{PREDICTION: scores})
    reference = at_most(reference, settings.reference_max_rows, settings.training_seed)
    with tempfile.TemporaryDirectory(prefix="churnloop-reference-") as folder:
        path = Path(folder) / Path(REFERENCE_ARTIFACT).name
        reference.reset_index(drop=True).to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))
