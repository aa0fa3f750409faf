"""A LocalExecutor whose workers start with the task libraries already imported.

Every task process is forked from a LocalExecutor worker, which is forked from the
scheduler. Importing Great Expectations, Feast, MLflow, LightGBM and Evidently costs
each task 5-13 s of CPU (docs/benchmarks.md); imported once in the scheduler before its
workers fork, they cost the tasks nothing (copy-on-write pages). A few caches the
libraries fill on first use are filled then too (`CACHE_WARMERS`). Nothing else is run:
no connection or thread is shared across the fork.

Then everything the preload made is frozen out of the garbage collector (`gc.freeze`,
as Python's documentation advises before a fork without exec): the libraries hold
millions of objects, and without it every full collection in a task walks them all
again (~0.45 s each at the loop's scale, e.g. the first plot of "train + log") and
dirties their copy-on-write pages.

Select it with ``AIRFLOW__CORE__EXECUTOR=churnloop.orchestration.executor.PreloadingLocalExecutor``
(the embedded Airflow of ``make airflow``, the demo and the integration tests do). The
CeleryExecutor of the compose topology preloads the same list through
`churnloop.orchestration.celery_config`.
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
    "great_expectations",
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
    "churnloop.features.store",
    "churnloop.training.steps",
    "churnloop.monitoring.daily_check",
    "churnloop.serving.deploy",
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
