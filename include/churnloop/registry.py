"""The model registry: which version each alias names, what a version holds, what was decided.

MLflow aliases (``@champion``, ``@challenger``, ``@candidate``, ``@previous-champion``), the
canary's traffic split (``@candidate`` and the ``canary_share`` tag of the registered model),
the names of every model-version tag, reading versions and loading their models, and the gate's
decision stored on a version. Moving ``@champion`` (promotion, rollback, its history) is
`churnloop.champion`'s job.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from churnloop.errors import DataError, excerpt
from churnloop.settings import Settings

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

CHAMPION = "champion"
CHALLENGER = "challenger"
CANDIDATE = "candidate"
"""A gate-blessed version on trial: the model server routes `CANARY_SHARE_TAG` of customers
to it, beside ``@champion``."""
PREVIOUS_CHAMPION = "previous-champion"
CANARY_SHARE_TAG = "canary_share"
"""Tag of the registered model (not of a version): ``<version>:<share>``, the share of
customers, in [0, 1], that ``@candidate`` serves while it names that version. Held in the
registry so every server process routes alike; bound to a version so that a share left by
one canary never routes customers to the next candidate."""

# -- model-version tags: every reader and writer names them through these -------------
TRAINING_DATA_END_TAG = "training_data_end"
"""ISO date of the last snapshot day the version's training set holds."""
DATA_WINDOW_START_TAG = "data_window_start"
"""ISO date of the first snapshot day the version's training set holds."""
FEATURE_SERVICE_TAG = "feature_service"
DATASET_DIGEST_TAG = "dataset_digest"
GIT_SHA_TAG = "git_sha"
GIT_DIRTY_TAG = "git_dirty"
PARAMS_SOURCE_TAG = "params_source"
CALIBRATION_TAG = "calibration"
"""The calibrator the version applies: ``isotonic``, ``sigmoid`` or ``none``."""
CALIBRATION_REASON_TAG = "calibration.reason"
"""Why that calibrator (or none), with its numbers."""
LINEAGE_TAG_PREFIX = "airflow."
"""``airflow.<key>``: the Airflow run that trained the version (dag_id, run_id, ...)."""
LOGICAL_DATE_TAG = f"{LINEAGE_TAG_PREFIX}logical_date"
"""The as-of day of the run that trained the version (its lineage key ``logical_date``)."""
GATE_TAG_PREFIX = "gate."
"""``gate.<check>``: one tag per check of the evaluation gate, ``<status>: <message>``."""
GATE_DECISION_TAG = f"{GATE_TAG_PREFIX}decision"
"""The gate's verdict, ``blessed`` or ``rejected``."""
PROMOTION_TAG = "promotion"
FORCED_REASON_TAG = "promotion.forced_reason"
HISTORY_TAG_PREFIX = "champion_history."
"""Tags of the registered model (not of a version): one champion-history event each."""
DESCRIPTION_MAX_CHARS = 5_000
"""The longest description MLflow stores for a registered model or a version (its column
is ``VARCHAR(5000)``, enforced by PostgreSQL)."""

DECISION_FOLDER = "evaluation"
DECISION_ARTIFACT = f"{DECISION_FOLDER}/decision.json"

SKOPS_TRUSTED_TYPES = [
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
]
"""Types beyond the ones skops trusts that a churn pipeline's skops file holds (the last two
are scikit-learn's private parts of a calibrated model). MLflow checks the list when
saving; `load_model` passes this list (from code, not from the artifact)."""


def connect(settings: Settings) -> MlflowClient:
    """A client on the settings' tracking store, also made the target of MLflow's fluent API."""
    uri = settings.mlflow_tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return _client(uri)


@functools.lru_cache(maxsize=8)
def _client(uri: str) -> MlflowClient:
    """One client per store, built once: a promotion makes dozens of calls."""
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@dataclass(frozen=True)
class TrafficSplit:
    """The canary as the registry holds it: ``@candidate``'s version (None without one) and
    the share of customers routed to it. ``problem`` says why a stored share was unusable;
    ``share`` is then 0 (the champion serves everyone)."""

    candidate: int | None = None
    share: float = 0.0
    problem: str | None = None


def _registered_model(settings: Settings) -> RegisteredModel | None:
    """The registered model (aliases and tags in one call), None before the first version."""
    try:
        return connect(settings).get_registered_model(settings.model_name)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def _aliases_of(model: RegisteredModel | None) -> dict[str, int]:
    if model is None:
        return {}
    return {alias: int(version) for alias, version in model.aliases.items()}


def aliases(settings: Settings) -> dict[str, int]:
    """Alias -> version of the registered model; empty when nothing is registered yet.

    Read from the registered model because ``search_model_versions`` returns no aliases.
    """
    return _aliases_of(_registered_model(settings))


def aliases_and_split(settings: Settings) -> tuple[dict[str, int], TrafficSplit]:
    """The aliases and the traffic split, from one registry call (the model server polls it)."""
    model = _registered_model(settings)
    found = _aliases_of(model)
    candidate = found.get(CANDIDATE)
    stored = (model.tags if model else {}).get(CANARY_SHARE_TAG)
    share, problem = _canary_share(stored, candidate)
    return found, TrafficSplit(candidate, share, problem)


def _canary_share(stored: str | None, candidate: int | None) -> tuple[float, str | None]:
    """The share a tag value gives ``candidate``, or 0 and why it is unusable. No tag, or a
    share written for another version (a canary that ended), is a share of 0."""
    if stored is None:
        return 0.0, None
    version, _, value = stored.partition(":")
    try:
        share = float(value) if version.isdigit() else math.nan
    except ValueError:
        share = math.nan
    if not 0 <= share <= 1:  # NaN too
        return 0.0, (
            f"the registered model's tag {CANARY_SHARE_TAG}={excerpt(stored, 40)!r} is not "
            "<version>:<share in [0, 1]>, so the champion serves everyone: set a valid share "
            "or delete it"
        )
    return (share, None) if int(version) == candidate else (0.0, None)


def set_canary_share(settings: Settings, version: int, share: float) -> None:
    """Route ``share`` (in [0, 1]) of customers to ``version`` while it is ``@candidate``;
    servers follow on their next poll or admin reload."""
    if not 0 <= share <= 1:
        raise ValueError(f"a canary share is a number in [0, 1], got {share!r}")
    client = connect(settings)
    client.set_registered_model_tag(
        settings.model_name, CANARY_SHARE_TAG, f"{int(version)}:{float(share)}"
    )


def clear_canary_share(settings: Settings) -> None:
    """Remove the share: whatever ``@candidate`` names then serves nobody."""
    connect(settings).delete_registered_model_tag(settings.model_name, CANARY_SHARE_TAG)


def model_version(settings: Settings, version: int) -> ModelVersion:
    try:
        return connect(settings).get_model_version(settings.model_name, str(version))
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise DataError(f"model {settings.model_name!r} has no version {version}") from error
        raise


def champion_version(settings: Settings) -> ModelVersion | None:
    """The version ``@champion`` points at, or None before the first promotion."""
    version = aliases(settings).get(CHAMPION)
    return None if version is None else model_version(settings, version)


def training_data_end(version: ModelVersion) -> dt.date | None:
    value = version.tags.get(TRAINING_DATA_END_TAG)
    return dt.date.fromisoformat(value) if value else None


def model_uri(settings: Settings, alias_or_version: str | int) -> str:
    reference = str(alias_or_version)
    separator = "/" if reference.isdigit() else "@"
    return f"models:/{settings.model_name}{separator}{reference}"


def load_model(settings: Settings, alias_or_version: str | int) -> Pipeline:
    """The scikit-learn pipeline of a version (``3``) or alias (``"champion"``).

    Loaded with skops and `SKOPS_TRUSTED_TYPES`, a list this code owns: MLflow's own loader
    would trust the list stored inside the artifact, and so refuses unless
    ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is set.
    """
    import skops.io  # slow to import (it enumerates scikit-learn); only loading needs it

    uri = model_uri(settings, alias_or_version)
    connect(settings)
    with tempfile.TemporaryDirectory(prefix="churnloop-model-") as folder:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder))
        flavor = Model.load(local).flavors.get("sklearn", {})
        if flavor.get("serialization_format") != "skops":
            raise DataError(f"{uri} is not a skops-serialised scikit-learn model: {flavor}")
        return skops.io.load(local / flavor["pickled_model"], trusted=SKOPS_TRUSTED_TYPES)


def within_description_limit(text: str) -> str:
    """``text`` cut to `DESCRIPTION_MAX_CHARS`, with an ellipsis where it was cut."""
    if len(text) <= DESCRIPTION_MAX_CHARS:
        return text
    return text[: DESCRIPTION_MAX_CHARS - 1] + "…"


# -- the gate's decision on the version --------------------------------------------------


def save_decision(
    settings: Settings,
    version: int,
    tags: Mapping[str, str],
    document: Mapping[str, Any],
    metrics: Mapping[str, float] | None = None,
) -> None:
    """Write a decision as version tags (for the UI), as JSON on its run (for the card) and
    its ``metrics`` (e.g. the baselines') as metrics of the run."""
    client = connect(settings)
    target = model_version(settings, version)
    for key, value in tags.items():
        client.set_model_version_tag(settings.model_name, str(version), key, value)
    client.log_dict(target.run_id, dict(document), DECISION_ARTIFACT)
    stamp = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    logged = [Metric(key, float(value), stamp, 0) for key, value in (metrics or {}).items()]
    if logged:
        client.log_batch(target.run_id, metrics=logged)


def load_decision(settings: Settings, version: int) -> dict[str, Any] | None:
    """The JSON document `save_decision` stored for a version, or None if it was never judged."""
    client = connect(settings)
    run_id = model_version(settings, version).run_id
    stored = {item.path for item in client.list_artifacts(run_id, DECISION_FOLDER)}
    if DECISION_ARTIFACT not in stored:
        return None
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{DECISION_ARTIFACT}")
