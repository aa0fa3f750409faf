import logging
import sys

import pytest
from pydantic import SecretStr

from churnloop.redaction import (
    RedactingFormatter,
    describe_error,
    redact,
    secret_values,
    secrets_in,
)

PASSWORD = "pl4nted-pw"
"""A made-up credential; every case below must hide it."""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"http://alice:{PASSWORD}@mlflow:5000/api",
            "http://alice:***@mlflow:5000/api",
        ),
        (
            f"postgresql+psycopg2://feast:{PASSWORD}@db.internal/registry",
            "postgresql+psycopg2://feast:***@db.internal/registry",
        ),
        (f"redis://:{PASSWORD}@redis:6379/0", "redis://:***@redis:6379/0"),
        (f"https://u:{PASSWORD}@x@host/x", "https://u:***@host/x"),
        (
            f"API request to http://a:{PASSWORD}@h/api failed; retry http://h/api",
            "API request to http://a:***@h/api failed; retry http://h/api",
        ),
        (f"http://h/?token={PASSWORD}&page=2", "http://h/?token=***&page=2"),
        (f"s3://b/k?X-Amz-Signature={PASSWORD}&x=1", "s3://b/k?X-Amz-Signature=***&x=1"),
        (f"redis:6379,password={PASSWORD},ssl=true", "redis:6379,password=***,ssl=true"),
        (f"db?PASSWORD={PASSWORD}", "db?PASSWORD=***"),
    ],
)
def test_credentials_are_masked_and_the_rest_is_kept(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected, "redacting twice changes nothing more"


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:8080/churnloop/reports/drift/dt%3D2026-03-04/report.html",
        "s3://bucket/lake/validated/customer_snapshots/dt=2026-03-04",
        "mail alice@example.com at http://host:80 about tokens",
        "sqlite:////home/me/.churnloop/mlflow/mlflow.db",
    ],
)
def test_text_without_credentials_is_unchanged(text):
    assert redact(text) == text


def test_errors_and_log_lines_with_tracebacks_are_redacted():
    url = f"http://alice:{PASSWORD}@mlflow:5000"
    try:
        raise ConnectionError(f"cannot reach {url}")
    except ConnectionError as error:
        described = describe_error(error)
        record = logging.LogRecord(
            "churnloop", logging.ERROR, __file__, 1, "registry %s down", (url,), None
        )
        record.exc_info = sys.exc_info()

    line = RedactingFormatter("%(levelname)s %(message)s").format(record)

    assert described == "ConnectionError: cannot reach http://alice:***@mlflow:5000"
    assert PASSWORD not in line
    assert line.startswith("ERROR registry http://alice:***@mlflow:5000 down")
    assert "Traceback" in line and "cannot reach http://alice:***@" in line


def test_secrets_in_names_what_redact_masks():
    text = "postgresql://feast:pl4nted-pw@db/feast and redis:6379,password=pl4nted-pw"

    assert secrets_in(text) == ["pl4nted-pw", "pl4nted-pw"]
    assert secrets_in(redact(text)) == []


def test_secret_values_of_settings_are_tokens_and_uri_passwords():
    """What task logs and alerts mask, from one place."""
    values = [
        SecretStr("a-token"),
        SecretStr(""),
        "postgresql://churnloop:pl4nted-pw@db:5432/mlflow",
        "no secret here",
        8000,
        None,
    ]
    assert secret_values(values) == ["a-token", "pl4nted-pw"]
