"""``churnloop serve`` as a process of its own: started with its output in
``<home>/logs/model-server.log``, awaited on ``/health``, stopped with its process group.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx

from churnloop.processes import stop_process_group
from churnloop.settings import Settings

LOG = "logs/model-server.log"
"""Relative to the settings' home."""
PROMETHEUS_MULTIPROCESS_VARIABLES = ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR")
"""Set by importing Feast (``feast.metrics``), to a temporary folder of the importing
process that it deletes when it exits; not passed on to the server (see
``server_environment``), which with several workers sets its own
(`churnloop.serving.app.shared_metrics_folder`)."""


class ModelServerDidNotStart(RuntimeError):
    pass


def server_environment(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` for a server with this home, host and port, without Feast's
    Prometheus multiprocess folder.

    A process that imported Feast (a deploy task, the demo) has that variable set; a
    server inheriting it would keep its metrics in files of a folder its parent deletes
    on exit (a later metric type then fails to open its file), and would count in
    files shared by every app of the process instead of in its own registry.
    """
    environment = {
        name: value
        for name, value in environ.items()
        if name not in PROMETHEUS_MULTIPROCESS_VARIABLES
    }
    environment.update(
        CHURNLOOP_HOME=str(settings.home),
        CHURNLOOP_SERVING_HOST=settings.serving_host,
        CHURNLOOP_SERVING_PORT=str(settings.serving_port),
    )
    return environment


def start_model_server(settings: Settings, timeout: float = 120) -> subprocess.Popen:
    """Start ``churnloop serve`` on ``settings.serving_url`` and wait for ``/health``.

    The process reads the settings from the environment, with this home, host and port.
    """
    log_path = settings.home / LOG
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "churnloop.cli", "serve"],
            env=server_environment(settings, os.environ),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not answers(settings.serving_url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process_group(process, grace=5)
            raise ModelServerDidNotStart(
                f"`churnloop serve` for {settings.serving_url} did not come up "
                f"(exit code {process.returncode}; see {log_path})"
            )
        time.sleep(0.25)
    return process


@contextmanager
def running_model_server(settings: Settings) -> Iterator[str]:
    """A model server for the duration of the block; yields its URL."""
    process = start_model_server(settings)
    try:
        yield settings.serving_url
    finally:
        stop_process_group(process, grace=10)


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
