"""A real Celery worker on Airflow's Celery app, configured by orchestration.celery_config,
starts its pool processes with the task libraries already imported."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from churnloop.processes import process_stats, stop_process_group

pytestmark = pytest.mark.services

AIRFLOW_CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"
CHURNLOOP_CONFIG = "churnloop.orchestration.celery_config.CELERY_CONFIG"
LIGHTGBM_LIBRARY = "lib_lightgbm.so"
"""Mapped into a process by ``import lightgbm``, which the worker itself never does."""


def _children(pid: int) -> list[int]:
    return [child for child, fields in process_stats() if int(fields[1]) == pid]


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


def _pool_processes(worker: subprocess.Popen, log: Path, seconds: float = 120) -> list[int]:
    """The worker's pool processes, once the worker says it is ready."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            pytest.fail(f"the Celery worker exited ({worker.returncode}):\n{log.read_text()}")
        if "ready." in log.read_text():
            return _children(worker.pid)
        time.sleep(0.5)
    pytest.fail(f"the Celery worker was not ready within {seconds} s:\n{log.read_text()}")


@pytest.mark.parametrize("preloading", [True, False], ids=["churnloop config", "Airflow default"])
def test_worker_pool_processes_start_with_the_task_libraries_imported(
    redis_address, tmp_path, preloading
):
    broker = f"redis://{redis_address}/15"
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": broker,
    }
    if preloading:
        environment["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] = CHURNLOOP_CONFIG
    celery = Path(sys.executable).parent / "celery"
    log = tmp_path / "worker.log"
    command = [str(celery), "--app", AIRFLOW_CELERY_APP, "worker", "--loglevel", "INFO"]
    command += ["--pool", "prefork", "--concurrency", "2"]
    command += ["--queues", f"churnloop-test-{os.getpid()}"]
    with log.open("w") as sink:
        worker = subprocess.Popen(
            command, env=environment, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        pool = _pool_processes(worker, log)
        assert len(pool) >= 2, f"expected 2 pool processes under {worker.pid}, found {pool}"
        preloaded = [LIGHTGBM_LIBRARY in _maps(pid) for pid in pool]
        assert preloaded == [preloading] * len(pool)
        assert (log.read_text().count("Preloaded task libraries") == 1) is preloading
    finally:
        stop_process_group(worker, grace=20)
