"""Airflow's Celery configuration for the compose topology, with the task libraries preloaded.

Selected by
``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=churnloop.orchestration.celery_config.CELERY_CONFIG``.
The configuration is Airflow's own default; importing this module also connects
Celery's ``worker_init`` signal, which runs in the worker's main process before its
prefork pool starts, to `churnloop.orchestration.executor.preload`. Every pool process, and
every task process forked from one, then finds GX, Feast, MLflow, LightGBM and
Evidently imported instead of paying 3-7 s of imports per task: what
`churnloop.orchestration.executor.PreloadingLocalExecutor` does for the embedded profile.
The scheduler and API server import this module too (they build the same Celery app);
the signal never fires there, so they load nothing extra.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_init

from churnloop.orchestration.executor import preload

__all__ = ["CELERY_CONFIG"]

CELERY_CONFIG: dict[str, Any] = DEFAULT_CELERY_CONFIG


@worker_init.connect
def _preload_task_libraries(**_: Any) -> None:
    preload()
