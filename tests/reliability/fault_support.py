"""Fault injection for the reliability tests: a server that dies at a chosen request."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

_METHODS = (b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ", b"HEAD ", b"OPTIONS ")


class CuttingProxy:
    """A loopback TCP proxy in front of an HTTP server that "kills" the server at a chosen
    request: from there on, every connection is dropped and new ones are refused.

    ``cut(at, lose_response=...)`` counts requests from 1; ``cut(when=b"POST /predict")``
    picks the first request that starts so. Without ``lose_response`` that request never
    reaches the server; with it, the server handles the request and its answer is lost,
    so the client cannot tell whether the change happened. ``restore`` brings the server
    back; ``watch`` only counts. Clients send one request at a time per connection (no
    pipelining), so a request starts where a client's send starts with an HTTP method.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests = 0
        self.methods: list[str] = []
        """The method of each request since the last ``cut`` or ``watch``."""
        self.watching = False
        self.cut_at: int | None = None
        self.cut_when: bytes | None = None
        self.lose_response = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="cutting-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def down(self) -> bool:
        return self.cut_at is not None and self.requests >= self.cut_at

    def cut(
        self, at: int | None = None, *, when: bytes | None = None, lose_response: bool = False
    ) -> None:
        with self._lock:
            self.requests, self.methods, self.watching = 0, [], True
            self.cut_at, self.cut_when, self.lose_response = at, when, lose_response

    def watch(self) -> None:
        self.cut()

    def restore(self) -> None:
        with self._lock:
            self.watching, self.cut_at, self.cut_when = False, None, None

    def close(self) -> None:
        self._listener.close()
        self._drop(set(self._sockets))

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            if self.down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:  # the server itself is down
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = {client, upstream}
            with self._lock:
                self._sockets |= pair
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, target, source is client, pair), daemon=True
                ).start()

    def _pump(
        self, source: socket.socket, target: socket.socket, from_client: bool, pair: set
    ) -> None:
        try:
            while (data := source.recv(65536)) and self._passes(data, from_client):
                target.sendall(data)
        except OSError:
            pass
        self._drop(set(self._sockets) if self.down else pair)

    def _passes(self, data: bytes, from_client: bool) -> bool:
        with self._lock:
            if not self.watching:
                return True
            if from_client and data.startswith(_METHODS):
                self.requests += 1
                self.methods.append(data.split(b" ", 1)[0].decode())
                if self.cut_when is not None and data.startswith(self.cut_when):
                    self.cut_at, self.cut_when = self.requests, None
            if self.cut_at is None:
                return True
            if not from_client:  # answers to requests before the cut
                return self.requests < self.cut_at
            return self.requests <= (self.cut_at if self.lose_response else self.cut_at - 1)

    def _drop(self, sockets: set[socket.socket]) -> None:
        with self._lock:
            self._sockets -= sockets
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
