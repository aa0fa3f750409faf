"""The HTTP conversation with a running model server, for the steps that change what it
serves (deploy, canary): start it where the embedded profile may, reload it, wait until it
serves what the registry says, score rows, read its metrics. Every failure is a
`ServerFailure` whose message is fit to record as a rollback's reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import httpx

from churnloop.serving.process import ModelServerDidNotStart, answers, start_model_server
from churnloop.settings import Settings

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
POLL_SECONDS = 0.25


class ServerFailure(Exception):
    """The server did not do what was asked; the message says what and why."""


class ModelServerClient:
    """One model server at ``client``'s base URL, waited on for at most ``timeout`` seconds."""

    def __init__(self, client: httpx.Client, settings: Settings, timeout: float) -> None:
        self.client = client
        self.settings = settings
        self.timeout = timeout

    @property
    def url(self) -> str:
        return str(self.client.base_url).rstrip("/")

    def alive(self) -> bool:
        return answers(self.url)

    def ensure_running(self) -> int | None:
        """Start ``churnloop serve`` for a silent loopback URL (embedded profile); its pid,
        None if a server already answers."""
        if self.alive():
            return None
        parsed = urlparse(self.url)
        if not self.settings.deploy_start_server or parsed.hostname not in LOOPBACK_HOSTS:
            raise ServerFailure(f"no model server answers at {self.url}")
        local = self.settings.model_copy(
            update={"serving_host": parsed.hostname, "serving_port": parsed.port or 80}
        )
        try:
            return start_model_server(local, timeout=self.timeout).pid
        except ModelServerDidNotStart as error:
            raise ServerFailure(str(error)) from error

    def reload(self) -> None:
        """Have the server read the registry now (with the admin token; without one it
        follows within ``serving_poll_seconds``)."""
        token = self.settings.serving_admin_token
        if token is None or not token.get_secret_value():
            return
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
        response = self.client.post("/admin/reload", headers=headers)
        if response.status_code != 200:
            raise ServerFailure(
                f"the server's reload failed ({response.status_code}): {detail(response)}"
            )

    def serve(self, version: int) -> None:
        """Have the server load ``version`` as champion; wait until ``/model`` reports it."""
        self.reload()
        self._wait_until(
            lambda state: state["version"] == version,
            lambda state: state.get("last_load_error"),
            version,
            "champion",
        )

    def serve_candidate(self, version: int) -> None:
        """Have the server load ``version`` as ``@candidate``; wait until ``/model`` says so."""
        self.reload()
        self._wait_until(
            lambda state: (state.get("candidate") or {}).get("version") == version,
            lambda state: state.get("candidate_load_error"),
            version,
            "candidate",
        )

    def _wait_until(
        self,
        served: Callable[[dict[str, Any]], bool],
        load_error: Callable[[dict[str, Any]], dict[str, Any] | None],
        version: int,
        role: str,
    ) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            state = self.model_state()
            if served(state):
                return
            failure = load_error(state) or {}
            if failure.get("version") == version:
                raise ServerFailure(f"the server cannot load v{version}: {failure['error']}")
            if time.monotonic() > deadline:
                raise ServerFailure(
                    f"the server at {self.url} does not serve v{version} as {role} after "
                    f"{self.timeout:.0f} s (champion v{state['version']})"
                )
            time.sleep(POLL_SECONDS)

    def model_state(self) -> dict[str, Any]:
        return self.client.get("/model").json()

    def metrics_text(self) -> str:
        response = self.client.get("/metrics")
        response.raise_for_status()
        return response.text

    def predict(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Score ``rows`` in batches the server accepts; raise unless each row is answered."""
        found: list[dict[str, Any]] = []
        size = self.settings.serving_max_instances
        for first in range(0, len(rows), size):
            instances = [{"features": row} for row in rows[first : first + size]]
            response = self.client.post("/predict", json={"instances": instances})
            if response.status_code != 200:
                raise ServerFailure(
                    f"the smoke test's /predict failed ({response.status_code}): {detail(response)}"
                )
            body = response.json()
            found += [{"version": body["version"], **item} for item in body["predictions"]]
        return found


def detail(response: httpx.Response) -> Any:
    """The server's explanation: a reload's ``error``, else FastAPI's ``detail``."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    explained = body.get("detail", body) if isinstance(body, dict) else body
    return explained.get("error", explained) if isinstance(explained, dict) else explained
