"""What every Airflow task body shares: fail fast on bad data, publish links for the UI.

Airflow is imported lazily so that the rest of the package runs and is tested without it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from churnloop.errors import DataError
from churnloop.redaction import secret_values
from churnloop.settings import get_settings

log = logging.getLogger(__name__)

REPORT_LINK_KEY = "churnloop_report_url"
"""XCom key the plugin's "Report" extra link reads (Data Docs, drift report, ...)."""


def publish_report_link(url: str | None) -> None:
    """Show ``url`` as the running task's extra link, even if the task then fails."""
    if not url:
        return
    from airflow.sdk import get_current_context

    get_current_context()["ti"].xcom_push(key=REPORT_LINK_KEY, value=url)


def mask_credentials(context: object = None) -> None:
    """Register every credential the settings hold with Airflow's secrets masker, so a task's
    log shows ``***`` where an error quotes one (a URI's password, a token); a task's
    ``on_execute_callback``."""
    from airflow.sdk.log import mask_secret

    for secret in secret_values(get_settings().model_dump().values()):
        mask_secret(secret)


@contextmanager
def data_errors_fail_fast() -> Iterator[None]:
    """Turn a ``DataError`` into a failure Airflow does not retry: the input must change.

    The failure carries the error's message once, without the DataError's traceback
    chained before it (on-call reads what to fix first). Any other exception propagates
    unchanged and is retried as an infrastructure error.
    """
    try:
        yield
    except DataError as error:
        from airflow.sdk.exceptions import AirflowFailException

        url = getattr(error, "report_url", None)
        if url:
            publish_report_link(url)
        raise AirflowFailException(str(error)) from None  # once, without the chained copy


def skip_task(reason: str) -> NoReturn:
    """Skip the running task with ``reason`` in its main log; Airflow itself logs a skip's
    reason only inside the collapsed "Post Execute" group."""
    from airflow.sdk.exceptions import AirflowSkipException

    log.info("skipped: %s", reason)
    raise AirflowSkipException(reason)
