"""The environment of the embedded Airflow and its tasks, derived from the settings.

`make airflow`, `make demo` and the tests all start Airflow through this one mapping.
Variables already present in the environment win, so the production profile (for
example ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` pointing at PostgreSQL) is set by the
environment alone.
"""

from __future__ import annotations

import os

from churnloop.settings import Settings

PARALLELISM = 4
"""`airflow standalone` would start ~32 workers on 2 cores; four keep the machine usable."""


def airflow_environment(
    settings: Settings, environ: dict[str, str] | None = None
) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    home = settings.home / "airflow"
    defaults = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_dir),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.project_root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(PARALLELISM),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__BASE_URL": settings.airflow_api_url,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    return {name: environ.get(name, value) for name, value in defaults.items()}
