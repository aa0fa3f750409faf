"""Where alerts land in tests: a real SMTP server (aiosmtpd) and a local HTTP server standing
in for a Slack incoming webhook, both on loopback, reached through Airflow connections."""

from __future__ import annotations

import email
import errno
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.service_support import free_port

BIND_TRIES = 3


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 OK"


@contextmanager
def smtp_sink() -> Iterator[tuple[Inbox, int]]:
    """An SMTP server on a free loopback port; yields (its Inbox, its port).

    aiosmtpd cannot take port 0 (it connects to the port it was given to check that it
    answers), so a port another process bound first is retried on a fresh one."""
    from aiosmtpd.controller import Controller

    received = Inbox()
    for _ in range(BIND_TRIES):
        controller = Controller(received, hostname="127.0.0.1", port=free_port())
        try:
            controller.start()
            break
        except OSError as error:
            controller.loop.close()
            if error.errno != errno.EADDRINUSE:
                raise
    else:
        raise RuntimeError(f"{BIND_TRIES} free ports were taken before the SMTP server bound them")
    try:
        yield received, controller.port
    finally:
        controller.stop()


def smtp_connection(port: int) -> dict:
    """The Airflow connection (as ``AIRFLOW_CONN_*`` JSON) of the sink on ``port``."""
    return {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10},
    }


@contextmanager
def webhook_sink() -> Iterator[tuple[list[dict], str]]:
    """An HTTP server on a free loopback port answering Slack's ``ok``; yields (the JSON
    bodies posted to it, its webhook URL)."""
    posts: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield posts, f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXXX"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
