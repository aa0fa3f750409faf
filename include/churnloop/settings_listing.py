"""`churnloop settings`: the active profile and every setting by the variable that sets
it, credentials masked (a secret's value, a URL's password, secret-named parameters)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr

from churnloop.redaction import MASK, masker
from churnloop.settings import Settings, env_variable


def settings_listing(settings: Settings, as_json: bool = False) -> str:
    """The listing as text (``profile: ...`` then ``CHURNLOOP_X=value`` lines) or JSON."""
    values = setting_values(settings)
    if as_json:
        shown = {"profile": settings.profile, "in_services": in_services(settings)}
        text = json.dumps({**shown, "settings": values}, indent=2)
    else:
        lines = [f"{name}={as_variable(value)}" for name, value in values.items()]
        text = "\n".join([profile_line(settings), *lines])
    return masker(settings)(text)


def setting_values(settings: Settings) -> dict[str, Any]:
    """Each setting's value as JSON, by the variable that sets it; a secret's is ``***``."""
    secret = {name for name, value in settings if isinstance(value, SecretStr)}
    return {
        env_variable(name): MASK if name in secret and value else value
        for name, value in settings.model_dump(mode="json").items()
    }


def in_services(settings: Settings) -> list[str]:
    return [env_variable(name) for name in settings.locations_in_services]


def profile_line(settings: Settings) -> str:
    if settings.profile != "mixed":
        return f"profile: {settings.profile}"
    return f"profile: mixed (in services: {', '.join(in_services(settings))})"


def as_variable(value: Any) -> str:
    """A value as its variable is written: text as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)
