"""A LocalExecutor whose workers start with the task libraries already imported.

Selected by ``AIRFLOW__CORE__EXECUTOR=churnloop.orchestration.executor.PreloadingLocalExecutor``.
`preload` imports ``PRELOADED_MODULES``, runs ``CACHE_WARMERS`` and freezes what they made
out of the garbage collector, so forked task processes inherit it all.
"""

from __future__ import annotations

import gc
import importlib
import pkgutil
import time

import structlog
from airflow.executors.local_executor import LocalExecutor

PRELOADED_MODULES = (
    "pandas",
    "pyarrow.parquet",
    "churnloop.validation.gx_imports",  # GX with its registration logger turned down first
    "feast",
    "feast.repo_operations",
    "feast.infra.offline_stores.duckdb",
    "feast.infra.data_sources.mlflow.mlflow_dataset_source",  # Feast's DuckDB reads import it
    "ibis.backends.duckdb",  # the DuckDB store's query engine, loaded on its first join
    "mlflow",
    "mlflow.sklearn",
    "mlflow.store.tracking.sqlalchemy_store",  # both profiles' MLflow backend (0.8 s)
    "mlflow.store.model_registry.sqlalchemy_store",
    "skops.io",  # how models are saved and loaded (1.8 s)
    "lightgbm",
    "sklearn.pipeline",
    "evidently",
    "churnloop.validation.ingest",
    "churnloop.validation.partition",
    "churnloop.features.build",
    "churnloop.features.materialize",
    "churnloop.features.training_set",
    "churnloop.training.steps",
    "churnloop.training.gate",  # steps import these three when called
    "churnloop.training.model_card",
    "churnloop.training.promotion",
    "churnloop.monitoring.daily_check",
    "churnloop.serving.deploy",
    "churnloop.canary.controller",  # every look of the canary sensor (statsmodels, scipy)
)
"""What the churnloop tasks import (churnloop's modules run nothing at import); a task
imports them again for free."""

CACHE_WARMERS = (
    "churnloop.validation.data_docs_views:warm",  # GX page templates, compiled (0.2 s)
    "churnloop.training.challenger:warm_requirement_checks",  # MLflow module map (1.2 s)
)
"""In-memory caches a task would fill on first use: ``module:function``, run after the imports."""

log = structlog.get_logger(__name__)


def preload(
    modules: tuple[str, ...] = PRELOADED_MODULES, warmers: tuple[str, ...] = CACHE_WARMERS
) -> None:
    started = time.monotonic()
    for name in modules:
        importlib.import_module(name)
    for warmer in warmers:
        pkgutil.resolve_name(warmer)()
    gc.freeze()
    log.info(
        "Preloaded task libraries",
        modules=modules,
        warmers=warmers,
        frozen_objects=gc.get_freeze_count(),
        seconds=time.monotonic() - started,
    )


class PreloadingLocalExecutor(LocalExecutor):
    """LocalExecutor that imports the task libraries before forking its workers."""

    def start(self) -> None:
        if self.is_mp_using_fork:
            preload()
        super().start()
