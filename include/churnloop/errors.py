"""The two kinds of failure, because Airflow must treat them differently.

A ``DataError`` means the input is wrong: retrying cannot help, so the task fails at
once and says what to fix. Anything else (a network blip, a service restarting) is an
infrastructure error and is left to the task's retries.
"""

from __future__ import annotations


class DataError(Exception):
    """Input data breaks the contract; the message names what, where, and what to do.

    ``report_url``, when set, is the page that explains the failure (e.g. Data Docs);
    the Airflow task shows it as an extra link.
    """

    def __init__(self, message: str, *, report_url: str | None = None) -> None:
        super().__init__(message)
        self.report_url = report_url


class DataValidationError(DataError):
    """A partition failed its expectation suite and was moved to quarantine."""
