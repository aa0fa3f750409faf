"""What the model server's routes share: the followed models and which one answers each
customer, the online store, the prediction log and the metrics, started and stopped with the
app (``app.state.server``).
"""

from __future__ import annotations

import gc
import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException

from churnloop.redaction import describe_error
from churnloop.registry import CANDIDATE, CHALLENGER, CHAMPION
from churnloop.serving import routing
from churnloop.serving.follower import ModelFollower
from churnloop.serving.metrics import NO_MODEL, ServingMetrics
from churnloop.serving.model import ServedModel
from churnloop.serving.prediction_log import PredictionLog
from churnloop.settings import Settings

if TYPE_CHECKING:
    from churnloop.features.online import OnlineFeatureReader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Assignment:
    """The model that answers an instance, and its variant (`routing.CHAMPION` or
    `routing.CANDIDATE`)."""

    model: ServedModel
    variant: str


class ModelServer:
    """The server's state; the request path reads it without a registry call."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = ServingMetrics(settings.drift_max_training_age_days)
        self.follower = ModelFollower(
            settings,
            follow_challenger=settings.serving_shadow_fraction > 0,
            on_load=self.metrics.record_load,
            on_unload=self.metrics.record_unload,
        )
        self.prediction_log = PredictionLog(
            settings,
            flush_rows=settings.prediction_log_flush_rows,
            flush_seconds=settings.prediction_log_flush_seconds,
            max_pending_rows=settings.prediction_log_max_pending_rows,
            on_written=self.metrics.logged_rows.inc,
            on_dropped=self.metrics.record_dropped,
        )
        self.shadow_draw = random.Random()
        """Draws which requests are shadowed (`churnloop.serving.scoring.shadow_models`)."""
        self._online: OnlineFeatureReader | None = None
        self._online_lock = threading.Lock()
        self.online_tried = threading.Event()
        """Set once the first connection to the online store succeeded or failed."""

    def start(self) -> None:
        self.follower.start(self.settings.serving_poll_seconds)
        self.prediction_log.start()
        threading.Thread(
            target=self._connect_online_store, name="online-store", daemon=True
        ).start()

    def stop(self) -> None:
        self.follower.stop()
        self.prediction_log.close()
        self.metrics.close()

    def served_version(self) -> str:
        """The champion's version as a metric label, ``NO_MODEL`` before one is loaded."""
        champion = self.follower.champion
        return str(champion.version) if champion else NO_MODEL

    def champion(self) -> ServedModel:
        """The served model, or a 503 saying why none is loaded."""
        champion = self.follower.champion
        if champion is None:
            failure = self.follower.load_errors.get(CHAMPION)
            reason = f": {failure.error}" if failure else " (no @champion in the registry yet?)"
            raise HTTPException(503, f"no model loaded yet{reason}")
        return champion

    def assign(self, customer_ids: Sequence[int | None]) -> list[Assignment]:
        """Who answers each customer (None: an explicit-feature instance) under the canary
        the registry holds (`churnloop.serving.routing`); a 503 without a champion."""
        champion = Assignment(self.champion(), routing.CHAMPION)
        candidate, share = self.follower.canary()
        if candidate is None:
            return [champion] * len(customer_ids)
        on_candidate = Assignment(candidate, routing.CANDIDATE)
        return [
            on_candidate
            if routing.variant_for(key, candidate.version, share) == routing.CANDIDATE
            else champion
            for key in customer_ids
        ]

    # -- the online store ---------------------------------------------------------------

    def online(self) -> OnlineFeatureReader:
        """The online store, connected on first use (importing Feast takes seconds)."""
        from churnloop.features.online import OnlineFeatureReader

        with self._online_lock:
            if self._online is None:
                self._online = OnlineFeatureReader(self.settings)
            return self._online

    def _connect_online_store(self) -> None:
        try:
            self.online()
        except Exception:  # requests by customer_id will answer 503 with the reason
            log.exception("cannot connect the online store yet; will retry on request")
        finally:
            _freeze_startup_objects()
            self.online_tried.set()

    async def online_rows(self, customer_ids: list[int]) -> list[dict[str, Any] | None]:
        """Each customer's features from the online store, or None if it has none."""
        try:
            return await self.online().rows(customer_ids)
        except Exception as error:
            self.metrics.errors.labels("online_store").inc()
            log.exception("online store read failed")
            detail = f"online store unavailable: {describe_error(error)}"
            raise HTTPException(503, detail) from error

    # -- GET /model -----------------------------------------------------------------------

    def model_state(self) -> dict[str, Any]:
        """The served version, its alias, training window and lineage; the candidate and its
        share; the shares of requests shadowed; the load errors."""
        champion = self.follower.champion
        candidate, share = self.follower.canary()
        challenger = self.follower.challenger
        errors = self.follower.load_errors
        checked = self.follower.last_checked
        state: dict[str, Any] = (
            champion.info.to_dict()
            if champion
            else {"name": self.settings.model_name, "version": None}
        )
        state.update(
            features=list(champion.feature_names) if champion else [],
            threshold=self.settings.serving_threshold,
            candidate=candidate.info.to_dict() if candidate else None,
            canary_share=share,
            canary_share_error=self.follower.split.problem,
            candidate_load_error=errors[CANDIDATE].to_dict() if CANDIDATE in errors else None,
            challenger=challenger.info.to_dict() if challenger else None,
            shadow_fraction=self.settings.serving_shadow_fraction,
            canary_shadow_fraction=self.settings.canary_shadow_fraction,
            last_load_error=errors[CHAMPION].to_dict() if CHAMPION in errors else None,
            challenger_load_error=errors[CHALLENGER].to_dict() if CHALLENGER in errors else None,
            last_checked=checked.isoformat() if checked else None,
            last_check_error=self.follower.last_check_error,
            prediction_log={
                "pending_rows": self.prediction_log.pending_rows,
                "written_rows": self.prediction_log.written_rows,
                "dropped_rows": self.prediction_log.dropped_rows,
                "last_error": self.prediction_log.last_error,
            },
        )
        return state


def _freeze_startup_objects() -> None:
    """Put what start-up left (some 450,000 objects: Feast, MLflow, the app) out of the
    garbage collector's scans, before the server reports ready: a full collection of them
    held every request for about 0.3 s; frozen, later ones scan only newer objects. The
    garbage among them is collected first, so that none is kept."""
    gc.collect()
    gc.freeze()
