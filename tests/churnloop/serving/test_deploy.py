"""The deploy step against a real server, registry and artifacts: serve, verify, or roll back."""

from __future__ import annotations

import os
import signal
import socket

import pytest
from pydantic import SecretStr

from churnloop import champion, registry
from churnloop.serving.app import create_app, serve_in_background
from churnloop.serving.deploy import DeploymentError, deploy
from churnloop.settings import Settings
from tests.churnloop.serving_support import (
    CORRUPT,
    GOOD,
    OTHER,
    install_template,
    point,
    served_version,
    template_home,
)

TOKEN = SecretStr("deploy-test-token")


@pytest.fixture
def world(settings: Settings) -> Settings:
    install_template(settings, template_home())
    point(settings, registry.CHAMPION, GOOD)
    return settings.model_copy(update={"deploy_timeout_seconds": 30, "deploy_smoke_rows": 50})


def promote(settings: Settings, version: int) -> None:
    """What `champion.promote` leaves behind: the old champion as @previous-champion."""
    point(settings, registry.PREVIOUS_CHAMPION, registry.aliases(settings)[registry.CHAMPION])
    point(settings, registry.CHAMPION, version)


@pytest.mark.parametrize(
    "overrides",
    [{"serving_admin_token": TOKEN}, {"serving_poll_seconds": 0.2}],
    ids=["admin-reload", "poller"],
)
def test_deploy_serves_the_new_champion_once_smoke_and_skew_checks_pass(world, overrides):
    settings = world.model_copy(update=overrides)
    with serve_in_background(create_app(settings)) as url:
        promote(settings, OTHER)

        result = deploy(settings, OTHER, server_url=url)

        assert served_version(url) == OTHER
    assert result.version == OTHER and result.rows_checked == 50
    assert result.max_skew < 1e-9, "served and offline agree exactly, not just within tolerance"
    assert result.started_server_pid is None


def test_deploy_rolls_back_a_broken_candidate_and_says_why(world):
    settings = world.model_copy(update={"serving_admin_token": TOKEN})
    with serve_in_background(create_app(settings)) as url:
        promote(settings, CORRUPT)

        with pytest.raises(DeploymentError) as failure:
            deploy(settings, CORRUPT, server_url=url)

        assert served_version(url) == GOOD
    message = str(failure.value)
    assert f"deploy of v{CORRUPT} failed: the server's reload failed (500)" in message
    assert "cannot load" in message
    assert f"@champion rolled back to v{GOOD}, which the server serves again" in message
    assert registry.aliases(settings)[registry.CHAMPION] == GOOD
    last = champion.champion_history(settings)[-1]
    assert (last.version, last.kind) == (GOOD, "rollback")
    assert f"deploy of v{CORRUPT} failed" in last.reason


def test_deploy_refuses_a_version_that_is_not_the_champion(world):
    with pytest.raises(DeploymentError, match=f"is v{GOOD}, not v{OTHER}"):
        deploy(world, OTHER, server_url="http://127.0.0.1:9")

    assert registry.aliases(world)[registry.CHAMPION] == GOOD


def test_deploy_starts_a_server_when_none_runs_on_a_loopback_url(world):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = world.model_copy(update={"serving_port": port, "deploy_timeout_seconds": 90})

    result = deploy(settings, GOOD)

    try:
        assert result.started_server_pid is not None
        assert served_version(settings.serving_url) == GOOD
        assert (settings.home / "logs" / "model-server.log").exists()
    finally:
        if result.started_server_pid:
            os.killpg(result.started_server_pid, signal.SIGTERM)
