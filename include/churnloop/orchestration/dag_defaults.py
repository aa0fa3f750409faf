"""What the DAG files share: the assets that link them, their start date, retry policies, pools,
failure alerts.

Every DAG file imports this at parse time, so it imports only Airflow's SDK and the settings.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset

from churnloop.orchestration.environment import FEAST_POOL
from churnloop.orchestration.task_failures import FailureAlert
from churnloop.orchestration.task_support import mask_credentials
from churnloop.settings import Settings

__all__ = [
    "CHURN_DRIFT",
    "CREDENTIALS_MASKED",
    "CUSTOMER_FEATURES",
    "DECISIONS_LOGGED",
    "FAILURES_ALERTED",
    "FEAST_POOL",
    "INFRA_RETRIES",
    "NO_RETRIES",
    "dag_start_date",
]

CUSTOMER_FEATURES = Asset("customer_features")
"""Emitted by customer_data once a day's features are online."""

CHURN_DRIFT = Asset("churn_drift")
"""Emitted by drift_report when drift may trigger training; schedules continuous_training."""

INFRA_RETRIES = {"retries": 2, "retry_delay": dt.timedelta(minutes=1)}
"""Tasks that touch infrastructure retry: a storage or service hiccup passes."""

CREDENTIALS_MASKED = {"on_execute_callback": mask_credentials}
"""Every task masks the settings' credentials in its log before it runs (default_args)."""

FAILURES_ALERTED = {"on_failure_callback": [FailureAlert()]}
"""Every task that fails for good alerts on-call (default_args): e-mail, Slack, or its log
(``churnloop.orchestration.task_failures``)."""

NO_RETRIES = {"retries": 0}
"""Tasks that judge data never retry: a retry cannot fix data."""

DECISIONS_LOGGED = {"show_return_value_in_logs": False}
"""Tasks log their decisions themselves (default_args): the returned dict is in the XCom tab,
and printed in the log it would be a line of full-precision floats hiding the decision."""


def dag_start_date(settings: Settings) -> dt.datetime:
    """Midnight UTC of ``settings.schedule_start``: the first day every DAG may run for."""
    return dt.datetime.combine(settings.schedule_start, dt.time(), tzinfo=dt.UTC)
