"""The model server down during a deploy: ``@champion`` rolls back to the previous
champion, the error names the server, and the server, once reachable again, follows the
alias back to the old model.

A real server (the serving tests' template registry) sits behind a cutting proxy that
makes it unreachable before the deploy begins, or in the middle of its smoke test.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from churnloop import champion, registry
from churnloop.serving.app import create_app, serve_in_background
from churnloop.serving.deploy import DeploymentError, deploy
from churnloop.settings import Settings
from tests.churnloop.serving_support import (
    GOOD,
    OTHER,
    install_template,
    point,
    served_version,
    template_home,
)
from tests.polling import wait_for
from tests.reliability.fault_support import CuttingProxy


@pytest.fixture
def world(settings: Settings) -> Settings:
    """v1 the previous champion, v2 just promoted; a server that follows the alias quickly."""
    install_template(settings, template_home())
    point(settings, registry.PREVIOUS_CHAMPION, GOOD)
    point(settings, registry.CHAMPION, OTHER)
    return settings.model_copy(
        update={
            "serving_admin_token": SecretStr("deploy-outage-token"),
            "serving_poll_seconds": 0.2,
            "deploy_timeout_seconds": 30,
            "deploy_smoke_rows": 50,
            "deploy_start_server": False,
        }
    )


OUTAGES = {
    "down_before_the_deploy": ({"at": 1}, "no model server answers at {url}"),
    "down_during_the_smoke_test": (
        {"when": b"POST /predict"},
        "the model server at {url} did not answer",
    ),
}


@pytest.mark.parametrize(("outage", "reason"), OUTAGES.values(), ids=OUTAGES.keys())
def test_deploy_rolls_back_when_the_server_goes_down(world, outage, reason):
    with serve_in_background(create_app(world)) as server_url:
        proxy = CuttingProxy(int(server_url.rsplit(":", 1)[1]))
        proxy.cut(**outage)
        try:
            with pytest.raises(DeploymentError) as failure:
                deploy(world, OTHER, server_url=proxy.url)
        finally:
            proxy.close()
        wait_for(lambda: served_version(server_url) == GOOD, what="the rolled-back champion")

    message = str(failure.value)
    assert f"deploy of v{OTHER} failed: {reason.format(url=proxy.url)}" in message, message
    assert f"@champion rolled back to v{GOOD}, but the server does not serve it yet" in message
    assert registry.aliases(world)[registry.CHAMPION] == GOOD
    last = champion.champion_history(world)[-1]
    assert (last.version, last.kind, last.replaced) == (GOOD, "rollback", OTHER)
