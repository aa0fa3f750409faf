"""The two kinds of failure, because Airflow must treat them differently.

A ``DataError`` means the input is wrong: retrying cannot help, so the task fails at
once and says what to fix. Anything else (a network blip, a service restarting) is an
infrastructure error and is left to the task's retries.
"""


class DataError(Exception):
    """Input data breaks the contract; the message names what, where, and what to do."""


class DataValidationError(DataError):
    """A partition failed its expectation suite and was moved to quarantine."""
