"""Credentials never leave the process as text: `redact` masks them in anything the project
prints, logs or returns.

Masked: the password of ``scheme://user:password@host`` and the value of secret-named
parameters (``?password=``, ``&token=``, Feast's ``host:port,password=...``);
`RedactingFormatter` does the same to every line a logging handler writes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    from churnloop.settings import Settings

MASK = "***"
_USERINFO_PASSWORD = re.compile(
    r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^\s/?#@:]*):(?P<secret>[^\s/?#]*)@", re.IGNORECASE
)
"""``scheme://user:password@``: everything between the user's colon and the last ``@``
of the authority (a password may hold an unencoded ``@``)."""
_SECRET_PARAMETER = re.compile(
    r"(?P<keep>\b[\w.-]*(?:password|passwd|pwd|secret|token|signature|credential"
    r"|api[_-]?key|access[_-]?key)[\w.-]*=)(?P<secret>[^\s&,;#'\"]+)",
    re.IGNORECASE,
)
"""``name=value`` whose name says it holds a secret, up to the next separator."""


_PATTERNS = (_USERINFO_PASSWORD, _SECRET_PARAMETER)


def redact(text: str) -> str:
    """``text`` with every URI password and secret-named parameter value replaced by
    ``***`` (idempotent: redacting twice changes nothing more)."""
    text = _USERINFO_PASSWORD.sub(rf"\g<keep>:{MASK}@", text)
    return _SECRET_PARAMETER.sub(rf"\g<keep>{MASK}", text)


def secrets_in(text: str) -> list[str]:
    """The secrets `redact` would mask in ``text``: URI passwords and secret parameters."""
    found = [m["secret"] for pattern in _PATTERNS for m in pattern.finditer(text)]
    return [secret for secret in found if secret and secret != MASK]


def secret_values(values: Iterable[object]) -> list[str]:
    """The secrets among settings' values: each ``SecretStr``'s value, and what `redact`
    would mask inside a plain string (a connection URI's password)."""
    found: list[str] = []
    for value in values:
        if isinstance(value, SecretStr):
            found += [value.get_secret_value()] if value.get_secret_value() else []
        elif isinstance(value, str):
            found += secrets_in(value)
    return found


def masker(settings: Settings) -> Callable[[str], str]:
    """Masks URI passwords, secret parameters and the settings' secrets in a text; applied
    before any cut, which could leave a secret's head where the patterns no longer match."""
    secrets = secret_values(settings.model_dump().values())

    def mask(text: str) -> str:
        text = redact(text)
        for secret in secrets:
            text = text.replace(secret, MASK)
        return text

    return mask


def describe_error(error: BaseException) -> str:
    """``"<type>: <message>"`` of ``error``, redacted: how errors reach responses and logs."""
    return redact(f"{type(error).__name__}: {error}")


class RedactingFormatter(logging.Formatter):
    """A formatter whose output (message, arguments, traceback) went through `redact`, so
    a library's exception that names a URI with credentials is masked in the log too."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
