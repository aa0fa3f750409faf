"""Keeps the server's models in step with the registry's aliases: `ModelFollower` holds
``@champion``, ``@candidate`` with the canary's share (`registry.TrafficSplit`, read in the
same registry call) and, for shadowing, ``@challenger``; polled in the background and
refreshed at once by an admin reload. A version that fails to load is reported and the old
model keeps serving, except a candidate: one whose alias moved serves nobody until its
successor loads. The poller retries a failed version only when a reload asks or the alias
moves on.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from churnloop import registry
from churnloop.redaction import describe_error
from churnloop.serving.model import ModelLoadError, ServedModel, load_served_model
from churnloop.settings import Settings

log = logging.getLogger(__name__)

LoadListener = Callable[[str, int, str | None, dt.date | None], None]
"""Told ``(alias, version, error or None, the version's last training day or None)`` after
each load attempt (for metrics)."""


@dataclass(frozen=True)
class LoadFailure:
    alias: str
    version: int
    error: str
    at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "version": self.version,
            "error": self.error,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class RefreshOutcome:
    """What one look at the registry found and did."""

    aliases: dict[str, int]
    split: registry.TrafficSplit
    loaded: list[str] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)

    @property
    def champion_failed(self) -> bool:
        return any(failure.alias == registry.CHAMPION for failure in self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "aliases": self.aliases,
            "canary": asdict(self.split),
            "loaded": self.loaded,
            "failures": [failure.to_dict() for failure in self.failures],
        }


class ModelFollower:
    """The champion, candidate (and challenger) currently served, reloaded when their
    aliases move, and the canary's share."""

    def __init__(
        self,
        settings: Settings,
        *,
        follow_challenger: bool,
        on_load: LoadListener | None = None,
        on_unload: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.aliases = (registry.CHAMPION, registry.CANDIDATE) + (
            (registry.CHALLENGER,) if follow_challenger else ()
        )
        self._on_load = on_load
        self._on_unload = on_unload
        self._models: dict[str, ServedModel] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.split = registry.TrafficSplit()
        """The canary as last read from the registry."""
        self.load_errors: dict[str, LoadFailure] = {}
        """Per alias, why its current version could not be loaded (cleared by a success)."""
        self.last_checked: dt.datetime | None = None
        self.last_check_error: str | None = None
        """Why the last look at the registry failed (credentials masked: GET /model shows it)."""

    @property
    def champion(self) -> ServedModel | None:
        return self._models.get(registry.CHAMPION)

    @property
    def challenger(self) -> ServedModel | None:
        """The challenger if it differs from the champion (else shadowing is pointless)."""
        return self._beside_champion(registry.CHALLENGER)

    @property
    def candidate(self) -> ServedModel | None:
        """The candidate if it differs from the champion (else it takes no traffic)."""
        return self._beside_champion(registry.CANDIDATE)

    def canary(self) -> tuple[ServedModel | None, float]:
        """The candidate and the share of customers it serves: 0 without one, or while the
        loaded candidate is not the version the split names (its successor still loading)."""
        candidate = self.candidate
        serving = candidate is not None and candidate.version == self.split.candidate
        return candidate, self.split.share if serving else 0.0

    def _beside_champion(self, alias: str) -> ServedModel | None:
        model = self._models.get(alias)
        champion = self.champion
        if model is None or (champion and model.version == champion.version):
            return None
        return model

    def refresh(self, *, retry_failed: bool = True) -> RefreshOutcome:
        """Read the aliases and the canary's share and load every version that moved; the old
        model stays on failure (a candidate's does not).

        Raises what the registry raises when it cannot be read (the caller reports it).
        """
        with self._lock:
            current, split = registry.aliases_and_split(self.settings)
            self.last_checked = dt.datetime.now(dt.UTC)
            self.last_check_error = None
            self._follow_split(split)
            outcome = RefreshOutcome(
                {alias: current[alias] for alias in self.aliases if alias in current}, split
            )
            for alias in self.aliases:
                wanted = current.get(alias)
                loaded = self._models.get(alias)
                if wanted is None or (loaded is not None and loaded.version == wanted):
                    self.load_errors.pop(alias, None)  # what the alias names is served
                    if wanted is None and alias != registry.CHAMPION:
                        self._unload(alias)
                    continue
                failed = self.load_errors.get(alias)
                if not retry_failed and failed is not None and failed.version == wanted:
                    continue
                self._load(alias, wanted, outcome)
            return outcome

    def _unload(self, alias: str) -> None:
        if self._models.pop(alias, None) is not None and self._on_unload is not None:
            self._on_unload(alias)

    def _follow_split(self, split: registry.TrafficSplit) -> None:
        if split.problem and split.problem != self.split.problem:
            log.warning("%s", split.problem)
        self.split = split

    def _load(self, alias: str, version: int, outcome: RefreshOutcome) -> None:
        loaded = next((m for m in self._models.values() if m.version == version), None)
        try:
            model = (
                loaded.with_alias(alias)
                if loaded
                else load_served_model(self.settings, version, alias)
            )
        except ModelLoadError as error:
            failure = LoadFailure(alias, version, str(error), dt.datetime.now(dt.UTC))
            self.load_errors[alias] = failure
            outcome.failures.append(failure)
            served = self._models.get(alias)
            log.error("%s; still serving %s", error, f"v{served.version}" if served else "nothing")
            self._notify(alias, version, str(error), None)
            return
        self._models[alias] = model
        self.load_errors.pop(alias, None)
        outcome.loaded.append(f"{alias}=v{version}")
        log.info("serving %s v%s as @%s", self.settings.model_name, version, alias)
        trained_until = model.info.tags.get(registry.TRAINING_DATA_END_TAG)
        self._notify(
            alias, version, None, dt.date.fromisoformat(trained_until) if trained_until else None
        )

    def _notify(
        self, alias: str, version: int, error: str | None, trained_until: dt.date | None
    ) -> None:
        if self._on_load is not None:
            self._on_load(alias, version, error, trained_until)

    # -- background polling -------------------------------------------------------------

    def start(self, interval_seconds: float) -> None:
        """Load now and then every ``interval_seconds``, in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._poll, args=(interval_seconds,), name="model-follower", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _poll(self, interval_seconds: float) -> None:
        while not self._stop.is_set():
            try:
                self.refresh(retry_failed=False)
            except Exception as error:  # the registry is down: keep serving, try again later
                self.last_check_error = describe_error(error)
                log.warning("cannot read the registry's aliases: %s", self.last_check_error)
            self._stop.wait(interval_seconds)
