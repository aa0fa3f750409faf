"""Shared by the serving and deployment tests: a home with small real models and the
lake's feature partitions, built once per process and copied into each test's home, and a
real server (uvicorn on a free loopback port, in a thread of the test process).

The template's registry holds: v1 and v2, two models trained on the feature service's
columns (they score differently); v3, whose artifact is corrupt (its skops file is
garbage); v4, a pipeline that loads but was never fitted. A copy's registry rows still
point at the template's artifacts, which no test changes.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import functools
import os
import shutil
import tempfile
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from prometheus_client.parser import text_string_to_metric_families

from churnloop import registry, storage
from churnloop.demo.simulation import generate_labels, generate_snapshots
from churnloop.features import definition
from churnloop.schema import ENTITY, TIMESTAMP
from churnloop.serving.prediction_log import read_predictions
from churnloop.settings import Settings
from churnloop.training.challenger import train_and_register
from churnloop.training.pipeline import build_pipeline
from churnloop.training.split import split_by_time
from tests.churnloop.training_support import LINEAGE, with_empty_mlflow

FIRST_DAY = dt.date(2026, 3, 1)
DAYS = 6
CUSTOMERS = 300
LAST_DAY = FIRST_DAY + dt.timedelta(days=DAYS - 1)
FEATURES = list(definition.FEATURE_SCHEMA.names)
PARAMS = {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 20, "n_jobs": 1}
GOOD, OTHER, CORRUPT, UNFITTED = 1, 2, 3, 4


def labelled_features(settings: Settings) -> pd.DataFrame:
    """Every day's feature partition written to the lake, joined with the day's labels."""
    lake = storage.lake(settings)
    days = [FIRST_DAY + dt.timedelta(days=offset) for offset in range(DAYS)]
    history = pd.concat([generate_snapshots(day, CUSTOMERS).to_pandas() for day in days])
    frames = []
    for day in days:
        rows = definition.build_features(history, day)
        table = pa.Table.from_pandas(rows, schema=definition.TABLE_SCHEMA, preserve_index=False)
        lake.write_table(definition.DATASET, day, table)
        labels = generate_labels(day, CUSTOMERS).to_pandas()
        frames.append(rows.merge(labels, on=[ENTITY, TIMESTAMP], validate="one_to_one"))
    return pd.concat(frames, ignore_index=True)


def _train(settings: Settings, frame: pd.DataFrame, n_estimators: int) -> int:
    train, holdout = split_by_time(frame, holdout_days=2)
    trained = train_and_register(
        settings,
        train,
        holdout,
        feature_names=FEATURES,
        feature_service=definition.FEATURE_SERVICE,
        lineage=LINEAGE,
        params={**PARAMS, "n_estimators": n_estimators},
    )
    return trained.version


def _register_unfitted(settings: Settings) -> int:
    """A version whose pipeline deserializes fine but was never fitted."""
    client = registry.connect(settings)
    experiment = client.get_experiment_by_name(settings.mlflow_experiment).experiment_id
    pipeline = build_pipeline(["age"], ["plan"], PARAMS, seed=1)
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            registered_model_name=settings.model_name,
            pip_requirements=["lightgbm"],
            skops_trusted_types=registry.SKOPS_TRUSTED_TYPES,
        )
    return int(info.registered_model_version)


def _corrupt(settings: Settings, version: int) -> None:
    client = registry.connect(settings)
    location = Path(client.get_model_version_download_uri(settings.model_name, str(version)))
    for path in location.rglob("*.skops"):
        path.write_bytes(b"not a skops file")


def isolated_settings(home: Path) -> Settings:
    """Embedded-profile settings rooted at ``home``, whatever ``CHURNLOOP_*`` variables say
    (module-scoped set-up runs before the per-test ``settings`` fixture clears them)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("CHURNLOOP_")]:
            patch.delenv(name)
        return Settings(home=home)


@functools.cache
def template_home() -> Path:
    """The models and feature partitions every test starts from (built once per process)."""
    home = Path(tempfile.mkdtemp(prefix="churnloop-serving-"))
    atexit.register(shutil.rmtree, home, True)
    settings = with_empty_mlflow(isolated_settings(home))
    frame = labelled_features(settings)
    versions = [_train(settings, frame, 30), _train(settings, frame, 45)]
    versions += [_register_unfitted(settings), _register_unfitted(settings)]
    assert versions == [GOOD, OTHER, CORRUPT, UNFITTED], versions
    _corrupt(settings, CORRUPT)
    for alias in list(registry.aliases(settings)):
        registry.connect(settings).delete_registered_model_alias(settings.model_name, alias)
    return home


def install_template(settings: Settings, template: Path) -> Settings:
    shutil.copytree(template, settings.home, dirs_exist_ok=True)
    return settings


def logged_predictions(settings: Settings) -> pd.DataFrame:
    """What the servers logged yesterday and today (UTC), oldest first: a test that
    crosses midnight reads the rows it wrote before it, under yesterday's partition."""
    today = dt.datetime.now(dt.UTC).date()
    frames = []
    for day in (today - dt.timedelta(days=1), today):
        with contextlib.suppress(storage.PartitionNotFound):
            frames.append(read_predictions(settings, day))
    if not frames:
        raise storage.PartitionNotFound(f"no predictions logged on {today} or the day before")
    return pd.concat(frames, ignore_index=True)


def point(settings: Settings, alias: str, version: int | None) -> None:
    """Move (or with None, delete) an alias, as the promotion step would."""
    client = registry.connect(settings)
    if version is not None:
        client.set_registered_model_alias(settings.model_name, alias, str(version))
    elif alias in registry.aliases(settings):
        client.delete_registered_model_alias(settings.model_name, alias)


def served_version(url: str) -> int | None:
    return httpx.get(f"{url}/model", timeout=10).json()["version"]


# -- what the serving tests read back -----------------------------------------------------

TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def last_day_features(settings: Settings) -> pd.DataFrame:
    """What the online store holds: the last day's feature partition."""
    frame = storage.lake(settings).read_table(definition.DATASET, LAST_DAY).to_pandas()
    return frame.set_index(ENTITY)


def offline(settings: Settings, version: int, rows: pd.DataFrame) -> np.ndarray:
    return registry.load_model(settings, version).predict_proba(rows[FEATURES])[:, 1]


def as_json_row(frame: pd.DataFrame, customer: int) -> dict:
    return frame.loc[customer, FEATURES].astype(object).to_dict()


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of a Prometheus exposition, or None if absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


OUT_OF_CONTRACT = "churnloop_input_out_of_contract_total"


def out_of_contract(text: str) -> dict[tuple[str, str], float]:
    """Every sample of the out-of-contract counter, by (feature, reason)."""
    return {
        (sample.labels["feature"], sample.labels["reason"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == OUT_OF_CONTRACT
    }
