"""Fixtures of the real-server tests (serving, canary): ``world``, a test's home holding the
shared models and an online store of the last day, ``@champion`` on `GOOD`; ``serve``, a
server started on it."""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from churnloop import registry
from churnloop.serving.app import create_app, serve_in_background
from churnloop.settings import Settings
from tests.churnloop.serving_support import (
    GOOD,
    LAST_DAY,
    install_template,
    isolated_settings,
    point,
    template_home,
)
from tests.polling import wait_for


@pytest.fixture(scope="session")
def online_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared template, plus a Feast registry and online store holding the last day
    (built once: each test works on a copy)."""
    from churnloop.features.feast_config import apply_definitions
    from churnloop.features.materialize import materialize_day

    home = tmp_path_factory.mktemp("serving-online") / "home"
    shutil.copytree(template_home(), home)
    settings = isolated_settings(home)
    apply_definitions(settings)
    materialize_day(settings, LAST_DAY, overlap_days=0)
    return home


@pytest.fixture
def world(settings: Settings, online_template: Path) -> Settings:
    install_template(settings, online_template)
    point(settings, registry.CHAMPION, GOOD)
    return settings


@pytest.fixture
def serve(world: Settings):
    """Start a server on ``world`` with setting overrides; returns its URL and app state."""
    with ExitStack() as stack:

        def start(ready: bool = True, **overrides):
            if overrides.get("serving_admin_token"):
                overrides["serving_admin_token"] = SecretStr(overrides["serving_admin_token"])
            app = create_app(world.model_copy(update=overrides))
            url = stack.enter_context(serve_in_background(app))
            if ready:
                wait_for(lambda: httpx.get(f"{url}/ready").status_code == 200, what="/ready")
            return url, app.state.server

        yield start
