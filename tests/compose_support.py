"""Shared by the docker-compose.yaml tests: the file as parsed, and its values as compose
resolves them with no variable set."""

from __future__ import annotations

import re
from typing import Any

import yaml

from churnloop.settings import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yaml"
S3_STORE = "seaweedfs"

_SUBSTITUTION = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?-)(?P<default>[^}]*))?\}")


def resolve(value: Any, where: str) -> str:
    """``value`` as compose passes it with no variable set: defaults, ``$$`` -> ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("op") is None:
            raise AssertionError(f"{where}: ${{{match.group('name')}}} has no default")
        return match.group("default")

    return _SUBSTITUTION.sub(replace, str(value))


def load_compose() -> dict[str, Any]:
    """docker-compose.yaml as a dict, read afresh (a caller may change its copy)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())
