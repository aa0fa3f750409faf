"""The two kinds of failure, because Airflow must treat them differently.

A ``DataError`` means the input is wrong: the task fails at once and says what to fix;
anything else is an infrastructure error, left to retries. What an error repeats of the
data is cut short, and says so (``excerpt``, ``enumerated``).
"""

from __future__ import annotations

from collections.abc import Sequence


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


def excerpt(text: str, limit: int) -> str:
    """``text`` cut to its first ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (truncated, {len(text):,} characters)"


def enumerated(items: Sequence[str], shown: int) -> str:
    """``a, b, c and 7 more``: the first ``shown`` of ``items`` and how many were left out."""
    listed = ", ".join(items[:shown])
    left_out = len(items) - shown
    return f"{listed} and {left_out:,} more" if left_out > 0 else listed
