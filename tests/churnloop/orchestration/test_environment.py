"""The embedded Airflow's API server is an admin UI for whoever reaches it (the simple auth
manager makes every user an admin), so it listens on loopback unless configured."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from churnloop.demo.airflow_stack import free_port, stack_environment
from churnloop.orchestration.environment import airflow_environment
from churnloop.processes import stop_process_group
from churnloop.settings import Settings

HOST = "AIRFLOW__API__HOST"


def test_the_api_server_listens_on_loopback_by_default(settings):
    assert airflow_environment(settings, environ={})[HOST] == "127.0.0.1"
    demo = stack_environment(settings, free_port(), "password", environ={})
    assert demo[HOST] == "127.0.0.1", "the demo's api-server takes its host from here too"


def test_the_demo_stack_records_links_for_the_ui_that_outlives_it(settings):
    port = free_port()
    demo = stack_environment(settings, port, "password", environ={})

    assert demo["AIRFLOW__API__BASE_URL"] == f"http://127.0.0.1:{port}"
    assert "CHURNLOOP_AIRFLOW_API_URL" not in demo, "links keep settings.airflow_api_url"


def test_the_api_server_host_is_a_setting_and_the_environment_wins(settings):
    wider = settings.model_copy(update={"airflow_api_host": "0.0.0.0"})
    assert airflow_environment(wider, environ={})[HOST] == "0.0.0.0"
    assert airflow_environment(settings, environ={HOST: "::1"})[HOST] == "::1"


def listening(process: psutil.Process, port: int) -> list[str]:
    """The addresses ``process`` and its children listen on at ``port``."""
    addresses = []
    for member in [process, *process.children(recursive=True)]:
        try:
            connections = member.net_connections(kind="inet")
        except psutil.Error:
            continue
        addresses += [
            c.laddr.ip
            for c in connections
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        ]
    return addresses


def wait_until_listening(server: subprocess.Popen, port: int, log: Path) -> list[str]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, f"api-server exited:\n{log.read_text()[-3000:]}"
        addresses = listening(psutil.Process(server.pid), port)
        if addresses:
            return addresses
        time.sleep(0.5)
    raise AssertionError(f"api-server never listened on {port}:\n{log.read_text()[-3000:]}")


@pytest.mark.airflow
@pytest.mark.slow
def test_a_started_api_server_binds_only_loopback(airflow_db, settings: Settings, tmp_path):
    """``airflow api-server`` as ``airflow standalone`` (``make airflow``) starts it, with
    no ``--host``, in the environment ``churnloop airflow-env`` prints."""
    env = {name: value for name, value in os.environ.items() if name != HOST}
    env |= airflow_environment(settings, environ=env)
    port, log = free_port(), tmp_path / "api-server.log"
    command = [sys.executable, "-m", "airflow", "api-server", "--port", str(port), "--workers", "1"]
    with log.open("w") as output:
        server = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        addresses = wait_until_listening(server, port, log)
    finally:
        stop_process_group(server, grace=20)
    assert all(ipaddress.ip_address(address).is_loopback for address in addresses), addresses
