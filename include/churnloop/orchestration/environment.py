"""The environment of the embedded Airflow and its tasks, derived from the settings.

`make airflow`, `make demo` and the tests all start Airflow through this one mapping;
variables already set in the environment win (that is how production configures Airflow).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import IO

from churnloop.settings import Settings

PARALLELISM = 4
"""`airflow standalone` would start ~32 workers on 2 cores; four keep the machine usable."""

FEAST_POOL = "feast"
"""Pool of the tasks that write Feast's registry; DAG files take it from `dag_defaults`."""

EXECUTOR = "churnloop.orchestration.executor.PreloadingLocalExecutor"
"""LocalExecutor whose task processes fork with the heavy libraries already imported."""


def airflow_environment(
    settings: Settings, environ: dict[str, str] | None = None
) -> dict[str, str]:
    """Airflow's settings for the embedded profile; a variable set in ``environ`` wins.

    The simple auth manager makes every user an admin, so the API server listens on
    ``settings.airflow_api_host``: loopback unless configured (Airflow's own default is
    every interface).
    """
    environ = os.environ if environ is None else environ
    home = settings.home / "airflow"
    defaults = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_dir),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.project_root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": EXECUTOR,
        "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(PARALLELISM),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__BASE_URL": settings.airflow_api_url,
        "AIRFLOW__API__HOST": settings.airflow_api_host,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    return {name: environ.get(name, value) for name, value in defaults.items()}


def pools(settings: Settings) -> dict[str, tuple[int, str]]:
    """Airflow pools the DAGs use: name -> (slots, description)."""
    return {
        FEAST_POOL: (
            settings.feast_pool_slots,
            "Feast registry writes; a file registry has no cross-process lock",
        ),
    }


def prepare_airflow(settings: Settings, output: IO[str] | None = None) -> None:
    """Point this process at the embedded Airflow, migrate its DB, create the pools."""
    os.environ.update(airflow_environment(settings))
    os.makedirs(os.environ["AIRFLOW_HOME"], exist_ok=True)
    airflow = [sys.executable, "-m", "airflow"]
    commands = [[*airflow, "db", "migrate"]]
    commands += [
        [*airflow, "pools", "set", name, str(slots), description]
        for name, (slots, description) in pools(settings).items()
    ]
    for command in commands:
        result = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, text=True)
        if result.returncode:
            raise RuntimeError(f"{' '.join(command[2:])} failed (exit {result.returncode})")
