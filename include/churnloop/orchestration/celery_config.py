"""Airflow's Celery configuration for the compose topology, with the task libraries preloaded.

Selected by
``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=churnloop.orchestration.celery_config.CELERY_CONFIG``;
importing it connects Celery's ``worker_init`` to `churnloop.orchestration.executor.preload`.
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
