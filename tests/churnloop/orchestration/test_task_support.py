"""What task bodies share: credentials masked in task logs, data errors that fail once and
are not retried, skips that say why in the main log."""

import logging
import traceback

import pytest
from airflow.sdk._shared.secrets_masker.secrets_masker import redact

from churnloop.errors import DataError
from churnloop.orchestration.task_support import data_errors_fail_fast, mask_credentials, skip_task
from churnloop.settings import get_settings

PASSWORD = "pl4nted-pw"
TOKEN = "test-admin-token"


def test_every_credential_of_the_settings_is_masked_in_task_logs(settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_MLFLOW_TRACKING_URI", f"http://mlflow:{PASSWORD}@tracking:5000")
    monkeypatch.setenv("CHURNLOOP_SERVING_ADMIN_TOKEN", TOKEN)
    assert get_settings().serving_admin_token is not None
    line = f"MlflowException: cannot reach http://mlflow:{PASSWORD}@tracking:5000 ({TOKEN})"
    assert redact(line) == line, "nothing is masked before the callback"

    mask_credentials()

    masked = redact(line)
    assert PASSWORD not in masked and TOKEN not in masked
    assert "http://mlflow:***@tracking:5000" in masked


def test_a_data_error_fails_once_with_its_message_first_and_no_chained_copy():
    """On-call reads one message, then one short traceback: not the DataError's traceback
    and the same message again above the failure's."""
    from airflow.sdk.exceptions import AirflowFailException

    message = "validation failed for customer_snapshots dt=2026-01-01: 2 expectations"
    with pytest.raises(AirflowFailException) as failed, data_errors_fail_fast():
        raise DataError(message)

    printed = "".join(traceback.format_exception(failed.value))
    assert printed.count(message) == 1, printed
    assert "direct cause" not in printed and "During handling" not in printed


def test_other_errors_propagate_unchanged_to_be_retried():
    with pytest.raises(ConnectionError), data_errors_fail_fast():
        raise ConnectionError("s3 unreachable")


def test_a_skip_logs_its_reason_in_the_main_log(caplog):
    from airflow.sdk.exceptions import AirflowSkipException

    caplog.set_level(logging.INFO, logger="churnloop")
    with pytest.raises(AirflowSkipException, match="no champion yet"):
        skip_task("no champion yet: nothing to compare with")

    assert "skipped: no champion yet: nothing to compare with" in caplog.messages
