"""A real Prometheus and Alertmanager on free loopback ports, run on test copies of
include/observability/'s files that differ only where a test must: the addresses, 1 s
scrape and evaluation intervals, every rule's ``for:`` cut to seconds, Alertmanager's
grouping waits cut to a second, and its credential files in the test's folder. A server
whose free port another process bound first starts again on a fresh one.

Every process is stopped with its whole group when its block ends.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from churnloop.processes import stop_process_group
from tests.observability.support import (
    ALERTMANAGER,
    ALERTMANAGER_CONFIG,
    PROMETHEUS,
    PROMETHEUS_CONFIG,
    RULES,
    load_yaml,
    tool,
)
from tests.service_support import free_port

RULE_WAIT = "2s"
"""Every rule's ``for:`` in the test copy."""


def prometheus_files(folder: Path, target: str, alertmanager: str) -> Path:
    """Copies of prometheus.yml and rules.yml in ``folder``; returns the config's path."""
    config = load_yaml(PROMETHEUS_CONFIG)
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [target]}]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    rules = load_yaml(RULES)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = RULE_WAIT
    (folder / RULES.name).write_text(yaml.safe_dump(rules, sort_keys=False))
    path = folder / PROMETHEUS_CONFIG.name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def alertmanager_files(folder: Path, webhook_url: str, webhook_token: str) -> Path:
    """A copy of alertmanager.yml in ``folder`` calling ``webhook_url`` with the token read
    from a file there; e-mail goes to a closed loopback port (it fails, nothing leaves)."""
    config = load_yaml(ALERTMANAGER_CONFIG)
    secrets = {"smtp_password": "unused", "webhook_token": webhook_token}
    for name, value in secrets.items():
        (folder / name).write_text(value)
    config["global"].update(
        smtp_smarthost=f"127.0.0.1:{free_port()}",
        smtp_auth_password_file=str(folder / "smtp_password"),
        smtp_require_tls=False,
    )
    config["route"].update(group_wait="1s", group_interval="1s")
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook_url
            hook["http_config"]["authorization"]["credentials_file"] = str(folder / "webhook_token")
    path = folder / ALERTMANAGER_CONFIG.name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextmanager
def prometheus_server(config: Path) -> Iterator[str]:
    def command(port: int) -> list[str]:
        return [
            tool(*PROMETHEUS),
            f"--config.file={config}",
            f"--storage.tsdb.path={config.parent / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]

    with _running(command, config.parent / "prometheus.log") as url:
        yield url


@contextmanager
def alertmanager_server(config: Path) -> Iterator[str]:
    def command(port: int) -> list[str]:
        return [
            tool(*ALERTMANAGER),
            f"--config.file={config}",
            f"--storage.path={config.parent / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]

    with _running(command, config.parent / "alertmanager.log") as url:
        yield url


BIND_TRIES = 3
"""Starts on a fresh port when another process took the free port before the server bound it."""


@contextmanager
def _running(command: Callable[[int], list[str]], log_path: Path) -> Iterator[str]:
    """Run ``command(port)`` on a free loopback port, in a process group of its own, until
    the block ends; yields its URL once ``/-/ready`` answers."""
    for _ in range(BIND_TRIES):
        started = _start(command, log_path)
        if started is not None:
            break
    else:
        raise RuntimeError(f"{BIND_TRIES} free ports were taken before the server bound them")
    url, process = started
    try:
        yield url
    finally:
        stop_process_group(process, grace=10)


def _start(
    command: Callable[[int], list[str]], log_path: Path
) -> tuple[str, subprocess.Popen] | None:
    """The server's URL and process once it is ready; None when its port was taken."""
    port = free_port()
    url, argv = f"http://127.0.0.1:{port}", command(port)
    logged = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("a") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while not (_ready(url) and process.poll() is None):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process_group(process, grace=10)
            output = log_path.read_bytes()[logged:].decode(errors="replace")
            if "address already in use" in output:
                return None
            raise RuntimeError(f"{argv[0]} is not ready:\n{output[-3000:]}")
        time.sleep(0.2)
    return url, process


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


class WebhookReceiver:
    """An HTTP server on loopback keeping each POST it gets: (Authorization header, JSON body)."""

    def __init__(self) -> None:
        self.received: list[tuple[str | None, dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.headers["Authorization"], json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                """Quiet: the test reads what arrived, not a log."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/churnloop"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
