"""Training the challenger: a time-based split, a seeded pipeline, and its MLflow record.

The model is one scikit-learn ``Pipeline`` (column preprocessing, then LightGBM), so the
preprocessing ships inside the registered model and serving cannot drift from training.
Fitting is deterministic: the same data, code, parameters and seed give the same
predictions, which is what lets a later run, a backfill or a reviewer reproduce a model.

Everything needed to trust or redo a version is logged on its MLflow run: parameters,
holdout metrics, curves and plots, the training dataset with its digest, the git sha, the
FeatureService and the Airflow run that produced it. The holdout sample with its scores is
kept as the version's drift reference (`reference_data`).
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
from lightgbm import LGBMClassifier
from matplotlib.figure import Figure
from mlflow.data.digest_utils import get_normalized_md5_digest
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from sklearn.calibration import calibration_curve
from sklearn.compose import ColumnTransformer
from sklearn.metrics import precision_recall_curve, roc_curve
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from churnloop import registry
from churnloop.errors import DataError
from churnloop.schema import ENTITY, LABEL, PREDICTION, TIMESTAMP
from churnloop.settings import Settings
from churnloop.training.gate import binary_labels, classification_metrics, score

MODEL_ARTIFACT = "model"
REFERENCE_ARTIFACT = "reference/reference.parquet"
LINEAGE_TAG_PREFIX = "airflow."
SCHEMA_SAMPLE_ROWS = 1_000
"""Rows the logged training dataset's schema is inferred from (see `_dataset_record`)."""
MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "lightgbm", "skops", "pandas", "numpy", "scipy")
"""Pinned to the installed versions; inferring them costs MLflow 15-20 s per model."""


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


def split_by_time(df: pd.DataFrame, holdout_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on the earlier snapshot days, hold out the latest ``holdout_days`` days.

    A random split would let the model see the same customers' later days it is judged
    on; holding out the newest days measures what serving faces: the future.
    """
    if holdout_days < 1:
        raise ValueError(f"holdout_days must be at least 1, got {holdout_days}")
    days = _snapshot_days(df, "training set")
    first_held_day = days.max() - pd.Timedelta(days=holdout_days - 1)
    held = (days >= first_held_day).to_numpy()
    if held.all():
        raise DataError(
            f"every snapshot of the training set ({days.min().date()} to {days.max().date()}) "
            f"falls in the {holdout_days}-day holdout: widen the training window"
        )
    return _renumbered(df[~held]), _renumbered(df[held])


def _renumbered(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (a fresh selection) numbered from 0 in place: ``reset_index`` would copy
    every column again (0.2 s a split at 700k rows)."""
    rows.index = pd.RangeIndex(len(rows))
    return rows


def build_pipeline(
    numeric: list[str], categorical: list[str], params: Mapping[str, Any], seed: int
) -> Pipeline:
    """Preprocessing and a seeded LightGBM classifier, as one deployable object.

    Numbers pass through (LightGBM handles missing values itself); categories become
    integer codes that LightGBM splits on natively (`fit_pipeline` names them), and a
    category unseen in training maps to -1, which LightGBM treats as missing.
    """
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
    )
    preprocess = ColumnTransformer(
        [("numeric", "passthrough", numeric), ("categorical", encoder, categorical)],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    classifier = LGBMClassifier(
        **{**params, "random_state": seed, "deterministic": True, "force_col_wise": True},
        verbose=-1,
    )
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def fit_pipeline(
    train: pd.DataFrame, feature_names: list[str], params: Mapping[str, Any], seed: int
) -> Pipeline:
    """Fit `build_pipeline` on ``train``; columns are numeric or categorical by dtype."""
    _require_columns(train, "training split", feature_names)
    labels = binary_labels(train, "training split")
    numeric, categorical = [], []
    for name in feature_names:
        dtype = train[name].dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            numeric.append(name)
        elif pd.api.types.is_object_dtype(dtype) or isinstance(
            dtype, pd.StringDtype | pd.CategoricalDtype
        ):
            categorical.append(name)
        else:
            raise DataError(f"feature {name!r} has dtype {dtype}: neither numeric nor categorical")
    pipeline = build_pipeline(numeric, categorical, params, seed)
    return pipeline.fit(train[feature_names], labels, classifier__categorical_feature=categorical)


def train_challenger(
    settings: Settings,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    feature_names: list[str],
    feature_service: str,
    lineage: Mapping[str, str],
    params: Mapping[str, Any] | None = None,
) -> TrainedModel:
    """Fit on ``train``, log everything to MLflow, register a version tagged ``@challenger``.

    ``lineage`` holds the Airflow run (``dag_id``, ``run_id``, ``logical_date``, ...),
    written as ``airflow.<key>`` tags; ``params`` default to ``settings.model_params``.
    """
    params = dict(settings.model_params if params is None else params)
    seed = settings.training_seed
    _require_columns(holdout, "holdout", feature_names)
    model = fit_pipeline(train, feature_names, params, seed)
    holdout_scores = score(model, holdout, "challenger")
    metrics = classification_metrics(binary_labels(holdout, "holdout"), holdout_scores)
    # Scoring all of a large split takes seconds (2.9 s at 500k rows); a 100k-row
    # sample's AUC is within a few thousandths, enough to see overfitting.
    scored = _at_most(train, settings.train_metrics_max_rows, seed)
    train_metrics = classification_metrics(scored[LABEL], score(model, scored, "challenger"))

    window_start = _snapshot_days(train, "training split").min().date()
    window_end = _snapshot_days(holdout, "holdout").max().date()
    dataset = _dataset_record(train, f"{feature_service} {window_start}..{window_end}")
    tags = {
        "git_sha": git_sha(settings.project_root),
        "feature_service": feature_service,
        "data_window_start": window_start.isoformat(),
        registry.TRAINING_DATA_END: window_end.isoformat(),
        "dataset_digest": dataset.digest,
        **{f"{LINEAGE_TAG_PREFIX}{key}": str(value) for key, value in lineage.items()},
    }
    client = registry.connect(settings)
    with mlflow.start_run(
        experiment_id=_experiment_id(settings), run_name=f"challenger-{window_end}"
    ) as run:
        mlflow.set_tags(tags)
        mlflow.log_params(
            {
                **params,
                "seed": seed,
                "features": len(feature_names),
                "train_rows": len(train),
                "holdout_rows": len(holdout),
                "holdout_start": _snapshot_days(holdout, "holdout").min().date().isoformat(),
            }
        )
        mlflow.log_metrics({f"holdout_{key}": value for key, value in metrics.items()})
        mlflow.log_metrics({f"train_{key}": value for key, value in train_metrics.items()})
        mlflow.log_input(dataset, context="training")
        labels = holdout[LABEL].to_numpy()
        for name, figure in _plots(model, labels, holdout_scores).items():
            mlflow.log_figure(figure, f"plots/{name}.png")
        _log_reference(holdout, holdout_scores, feature_names, settings)
        example = _as_schema_example(train[feature_names].head(5))
        info = mlflow.sklearn.log_model(
            model,
            name=MODEL_ARTIFACT,
            registered_model_name=settings.model_name,
            signature=infer_signature(example, model.predict_proba(example)),
            input_example=example,
            pip_requirements=[f"{name}=={installed_version(name)}" for name in MODEL_REQUIREMENTS],
            skops_trusted_types=registry.SKOPS_TRUSTED_TYPES,
            pyfunc_predict_fn="predict_proba",
        )
    version = int(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(settings.model_name, str(version), key, value)
    client.set_registered_model_alias(settings.model_name, registry.CHALLENGER, str(version))
    return TrainedModel(
        name=settings.model_name,
        version=version,
        run_id=run.info.run_id,
        metrics=metrics,
        training_data_end=window_end,
        dataset_digest=dataset.digest,
        model=model,
    )


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
    makes MLflow map every installed distribution's files to its modules (~1.2 s, once
    per process). The preloading executor calls this before its workers fork
    (`churnloop.orchestration.executor.CACHE_WARMERS`), so no training task pays it. The map
    is MLflow's own cache and no public call fills it.
    """
    from mlflow.utils.requirements_utils import _init_modules_to_packages_map

    _init_modules_to_packages_map()


def git_sha(root: Path) -> str:
    """The checkout's commit, or ``"unknown"`` outside a git repository."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def _require_columns(frame: pd.DataFrame, role: str, columns: list[str]) -> None:
    missing = [column for column in [TIMESTAMP, LABEL, *columns] if column not in frame.columns]
    if missing:
        raise DataError(f"the {role} lacks column(s): {', '.join(missing)}")


def _snapshot_days(frame: pd.DataFrame, role: str) -> pd.Series:
    if frame.empty:
        raise DataError(f"the {role} is empty")
    if TIMESTAMP not in frame.columns:
        raise DataError(f"the {role} has no {TIMESTAMP!r} column")
    timestamps = frame[TIMESTAMP]
    if not isinstance(timestamps.dtype, pd.DatetimeTZDtype):
        raise DataError(
            f"the {role}'s {TIMESTAMP!r} must be timezone-aware (UTC), got {timestamps.dtype}"
        )
    return timestamps.dt.tz_convert("UTC").dt.normalize()


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

    MLflow's own digest hashes the first 10,000 rows only, yet first maps ``type`` over
    every cell of the frame (1.9 s at 500k rows); pandas' hashes of every row take ~0.1 s
    and tell apart splits that differ past row 10,000.
    MLflow infers a logged dataset's schema value by value in Python: ~35 s of CPU for
    500k rows, as long as the fit itself (docs/benchmarks.md). A schema holds each
    column's type and whether it may be missing, so the first rows plus, for each column
    with a missing value, one row where it is missing give the same schema.
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


def _as_schema_example(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows whose integer columns are doubles, to declare the model's input schema with.

    MLflow accepts ints for a double column, but a missing value in an int column (which
    LightGBM would handle) fails schema enforcement at serving time.
    """
    integers = rows.select_dtypes(include="integer").columns
    return rows.astype({column: "float64" for column in integers})


def _at_most(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """``frame``, or a seeded sample of ``rows`` of its rows in their original order."""
    if len(frame) <= rows:
        return frame
    return frame.sample(n=rows, random_state=seed).sort_index()


def _log_reference(
    holdout: pd.DataFrame, scores: np.ndarray, feature_names: list[str], settings: Settings
) -> None:
    columns = [c for c in (ENTITY, TIMESTAMP) if c in holdout.columns] + [*feature_names, LABEL]
    reference = holdout[columns].assign(**{PREDICTION: scores})
    reference = _at_most(reference, settings.reference_max_rows, settings.training_seed)
    with tempfile.TemporaryDirectory(prefix="churnloop-reference-") as folder:
        path = Path(folder) / Path(REFERENCE_ARTIFACT).name
        reference.reset_index(drop=True).to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))


def _plots(model: Pipeline, labels: np.ndarray, scores: np.ndarray) -> dict[str, Figure]:
    """Holdout ROC, precision-recall and calibration curves, and gain importances.

    Drawn on bare ``Figure`` objects (the Agg canvas), so no pyplot state or GUI backend
    is touched in a worker process.
    """
    figures = {}

    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    false_positive_rate, true_positive_rate, _ = roc_curve(labels, scores)
    axes.plot(false_positive_rate, true_positive_rate, label="challenger")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (holdout)")
    axes.legend(loc="lower right")
    figures["roc_curve"] = figure

    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    precision, recall, _ = precision_recall_curve(labels, scores)
    axes.plot(recall, precision, label="challenger")
    axes.axhline(labels.mean(), linestyle="--", color="grey", label="base rate")
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall (holdout)")
    axes.legend(loc="upper right")
    figures["pr_curve"] = figure

    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    observed, predicted = calibration_curve(labels, scores, n_bins=10, strategy="quantile")
    axes.plot(predicted, observed, marker="o", label="challenger")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axes.set(xlabel="mean predicted", ylabel="observed churn rate", title="Calibration (holdout)")
    axes.legend(loc="upper left")
    figures["calibration"] = figure

    booster = model.named_steps["classifier"].booster_
    importance = pd.Series(
        booster.feature_importance(importance_type="gain"), index=booster.feature_name()
    ).sort_values()
    figure = Figure(figsize=(6, max(3, 0.3 * len(importance))))
    axes = figure.subplots()
    axes.barh(importance.index, importance.to_numpy())
    axes.set(xlabel="total gain", title="Feature importance")
    figure.tight_layout()
    figures["feature_importance"] = figure
    return figures
