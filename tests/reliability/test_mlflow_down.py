"""The MLflow tracking server down during registration: the promotion fails with an error
naming the server, MLflow's client retries it, and the registry never holds a
half-promoted champion: wherever the server dies, ``@champion`` is the old version or
the new one, and the task's retry finishes the promotion exactly once.

One tracking server (SQLite backend, local artifacts) serves the module; a cutting proxy
in front of it "kills" it at each request of a promotion in turn.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException

from churnloop import champion, registry
from churnloop.settings import Settings
from churnloop.training.gate import Decision, GateConfig, evaluate
from churnloop.training.promotion import promote_on_decision
from tests.churnloop.serving_support import isolated_settings
from tests.churnloop.training_support import labelled_days, register_challenger
from tests.reliability.fault_support import CuttingProxy
from tests.service_support import mlflow_tracking_server

pytestmark = pytest.mark.slow

OLD, NEW = 1, 2
LOGICAL_DATE = dt.date(2026, 3, 1)
GATE = GateConfig.from_settings(
    Settings(),
    min_holdout_positives=2,
    min_holdout_negatives=2,
    min_roc_auc=0.5,
    noninferiority_margin=None,
    min_gain_over_baseline=None,
    slice_columns=(),
)
BLESSED = "blessed by the evaluation gate"


class TrackingServer:
    """An ``mlflow server`` this module can stop and start again on the same port and stores."""

    def __init__(self, factory, folder: Path) -> None:
        self.factory = factory
        self.folder = folder
        self.port: int | None = None
        self._running = ExitStack()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        backend = f"sqlite:///{self.folder / 'mlflow.db'}"
        server = self.factory(
            backend, str(self.folder / "artifacts"), self.folder / "server.log", port=self.port
        )
        self.port = int(self._running.enter_context(server).rsplit(":", 1)[1])

    def stop(self) -> None:
        self._running.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[TrackingServer]:
    server = TrackingServer(mlflow_tracking_server, tmp_path_factory.mktemp("mlflow-outage"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def world(server, tmp_path_factory) -> Iterator[tuple[Settings, CuttingProxy, Decision]]:
    """v1 the champion, v2 a blessed challenger; the client talks through the proxy."""
    proxy = CuttingProxy(server.port)
    home = tmp_path_factory.mktemp("mlflow-outage-home")
    settings = isolated_settings(home).model_copy(
        update={
            "mlflow_tracking_uri": proxy.url,
            "mlflow_artifact_uri": str(home / "artifacts"),
        }
    )
    first, holdout = register_challenger(settings, labelled_days(dt.date(2026, 1, 1), 8, 300))
    promote_on_decision(
        settings,
        first.version,
        evaluate(None, first.model, holdout, GATE),
        logical_date=LOGICAL_DATE,
    )
    second, holdout = register_challenger(settings, labelled_days(dt.date(2026, 1, 9), 8, 300))
    assert (first.version, second.version) == (OLD, NEW)
    decision = evaluate(None, second.model, holdout, GATE)
    assert decision.blessed
    yield settings, proxy, decision
    proxy.close()


@pytest.fixture
def no_client_retries(monkeypatch):
    """MLflow's client retries 7 times over ~4 minutes by default; fail at once here."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


def promote(settings: Settings, decision: Decision) -> champion.PromotionResult:
    return promote_on_decision(settings, NEW, decision, logical_date=LOGICAL_DATE)


def state(settings: Settings) -> tuple[dict[str, int], list[tuple[int, str, int | None]], str]:
    """Aliases, champion history (version, kind, replaced) and v2's promotion tag."""
    history = [(h.version, h.kind, h.replaced) for h in champion.champion_history(settings)]
    tags = registry.model_version(settings, NEW).tags
    return registry.aliases(settings), history, tags.get(registry.PROMOTION_TAG, "")


BEFORE = ({"champion": OLD, "challenger": NEW}, [(OLD, "promotion", None)], "")
AFTER = (
    {"champion": NEW, "previous-champion": OLD, "challenger": NEW},
    [(OLD, "promotion", None), (NEW, "promotion", OLD)],
    BLESSED,
)


def consistent(aliases: dict[str, int], history: list) -> bool:
    """No half-promoted champion: either the old one with its history unchanged (a
    ``@previous-champion`` written ahead of the move changes nothing served), or the new
    one with the old one as ``@previous-champion`` for rollback (its history entry may
    still be missing: the retry writes it)."""
    if aliases.get(registry.CHAMPION) == OLD:
        return aliases.get(registry.CHALLENGER) == NEW and history == BEFORE[1]
    return aliases == AFTER[0] and history in (BEFORE[1], AFTER[1])


def reset(settings: Settings) -> None:
    """Back to BEFORE: v1 champion, v2 only the challenger, as after training."""
    client = registry.connect(settings)
    name = settings.model_name
    client.set_registered_model_alias(name, registry.CHAMPION, str(OLD))
    if registry.PREVIOUS_CHAMPION in registry.aliases(settings):
        client.delete_registered_model_alias(name, registry.PREVIOUS_CHAMPION)
    tags = client.get_registered_model(name).tags
    for key in sorted(k for k in tags if k.startswith(registry.HISTORY_TAG_PREFIX))[1:]:
        client.delete_registered_model_tag(name, key)
    if registry.PROMOTION_TAG in registry.model_version(settings, NEW).tags:
        client.delete_model_version_tag(name, str(NEW), registry.PROMOTION_TAG)
    assert state(settings) == BEFORE


def test_server_stopped_before_promotion_fails_naming_it_and_changes_nothing(
    server, world, no_client_retries
):
    settings, _, decision = world
    direct = settings.model_copy(update={"mlflow_tracking_uri": server.url})
    reset(direct)
    server.stop()
    try:
        with pytest.raises(MlflowException) as failure:
            promote(direct, decision)
    finally:
        server.start()

    assert server.url in str(failure.value), str(failure.value)
    assert state(direct) == BEFORE
    assert promote(direct, decision).promoted
    assert state(direct) == AFTER


def test_the_client_retries_through_a_short_outage(world, monkeypatch):
    settings, proxy, decision = world
    reset(settings)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    results: list[champion.PromotionResult] = []
    proxy.cut(1)
    try:
        worker = threading.Thread(target=lambda: results.append(promote(settings, decision)))
        worker.start()
        worker.join(timeout=1.5)
        assert worker.is_alive(), "the promotion should be waiting for the server"
    finally:
        proxy.restore()
    worker.join(timeout=60)

    assert [result.promoted for result in results] == [True]
    assert state(settings) == AFTER


def test_a_server_dying_at_any_request_leaves_no_half_promoted_champion(world, no_client_retries):
    """Each request of a promotion in turn: never delivered, or (for writes) carried out
    with its answer lost."""
    settings, proxy, decision = world
    reset(settings)
    proxy.watch()
    promote(settings, decision)
    methods = proxy.methods
    proxy.restore()
    assert state(settings) == AFTER
    cuts = [(at, False) for at in range(1, len(methods) + 1)]
    cuts += [(at, True) for at, method in enumerate(methods, 1) if method != "GET"]

    for at, lose_response in cuts:
        where = f"server died at request {at}/{len(methods)} ({methods[at - 1]}), " + (
            "its answer lost" if lose_response else "never delivered"
        )
        reset(settings)
        proxy.cut(at, lose_response=lose_response)
        try:
            with pytest.raises(MlflowException):
                promote(settings, decision)
        finally:
            proxy.restore()
        aliases, history, _ = state(settings)
        assert consistent(aliases, history), f"{where}: {aliases}, {history}"

        result = promote(settings, decision)  # the task's retry

        assert result.promoted, f"{where}: {result.reason}"
        assert state(settings) == AFTER, where
