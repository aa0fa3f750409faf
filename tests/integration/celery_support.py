"""The integration story's CeleryExecutor: its broker and result backend, two workers set up
as compose's (``docker-compose.yaml``, ``airflow-worker``), and the SIGKILL of one of them
in the middle of a task.

Both workers run on this machine, where Airflow would record the same hostname
(``socket.getfqdn()``) for every task instance: each worker's ``[core] hostname_callable``
is `worker_hostname`, which names the worker instead, so a task instance says where it ran.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from churnloop.demo.airflow_stack import AirflowClient, CeleryWorker
from churnloop.settings import PROJECT_ROOT
from tests.compose_support import load_compose, resolve
from tests.polling import wait_for

if TYPE_CHECKING:
    from celery import Celery

BROKER_DATABASE = 14
"""The broker's Redis database: Feast's online store uses 0, test_celery_config 15."""
WORKERS = ("celery-worker-a", "celery-worker-b")
COMPOSE_WORKER = "airflow-worker"
COMPOSE_WORKER_SETTINGS = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY",
    "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS",  # the task libraries preloaded on worker_init
)
WORKER_NAME = "CHURNLOOP_TEST_WORKER_HOSTNAME"
TRIED = frozenset({"running", "success", "failed"})
HEARTBEAT_TIMEOUT_SECONDS = 30
"""Airflow's default is 300: the killed worker's task is found within a minute instead."""


def worker_hostname() -> str:
    """The hostname a worker's task instances record (``[core] hostname_callable``)."""
    return os.environ[WORKER_NAME]


@contextmanager
def broker_url(redis_address: str) -> Iterator[str]:
    """Celery's broker on the local Redis, in a database of its own, emptied before and
    after (FLUSHDB of that database alone: Feast's online store shares the server)."""
    import redis

    host, port = redis_address.rsplit(":", 1)
    database = redis.Redis(host=host, port=int(port), db=BROKER_DATABASE)
    database.flushdb()
    try:
        yield f"redis://{redis_address}/{BROKER_DATABASE}"
    finally:
        database.flushdb()
        database.close()


def compose_worker_settings() -> dict[str, str]:
    """What compose's ``airflow-worker`` sets of ``COMPOSE_WORKER_SETTINGS``, defaults
    resolved (neither passes ``--queues``: both serve Airflow's default queue)."""
    environment = load_compose()["services"][COMPOSE_WORKER]["environment"]
    return {
        name: resolve(environment[name], f"{COMPOSE_WORKER}.{name}")
        for name in COMPOSE_WORKER_SETTINGS
    }


def celery_environment(broker: str, result_database: str) -> dict[str, str]:
    """The CeleryExecutor as compose's workers run it, on ``broker`` with results in
    ``result_database`` (a SQLAlchemy URL), and a scheduler that notices a lost task in
    seconds."""
    return {
        **compose_worker_settings(),
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{result_database}",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_SECONDS),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # a task the killed worker had received but not started yet is queued again
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "30",
    }


def celery_workers() -> list[CeleryWorker]:
    """The two workers; each imports `worker_hostname` from this repository's tests."""
    python_path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return [
        CeleryWorker(
            name,
            {
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
                WORKER_NAME: name,
                "PYTHONPATH": python_path,
            },
        )
        for name in WORKERS
    ]


def wait_for_workers(client: AirflowClient, timeout: float = 300) -> None:
    """Until both workers answer a Celery ping on their broker (they import the task
    libraries before they consume)."""
    from celery import Celery

    broker = client.components[WORKERS[0]].env["AIRFLOW__CELERY__BROKER_URL"]
    nodes = {f"celery@{name}" for name in WORKERS}
    app = Celery(broker=broker)

    def all_answer() -> bool:
        client.check_alive()
        return not _silent(app, nodes)

    try:
        wait_for(all_answer, timeout, f"Celery workers {sorted(nodes)} to answer a ping")
    except AssertionError as error:
        raise AssertionError(f"{error}; no answer from {sorted(_silent(app, nodes))}") from None
    finally:
        app.close()


def _silent(app: Celery, nodes: set[str]) -> set[str]:
    """Those of ``nodes`` that do not answer a Celery ping within a second."""
    replies = app.control.ping(destination=sorted(nodes), timeout=1.0)
    return nodes - {node for reply in replies for node in reply}


@dataclass(frozen=True)
class WorkerKill:
    """A worker SIGKILLed while it ran try ``try_number`` of a task instance."""

    killed: str
    dag_id: str
    dag_run_id: str
    task_id: str
    try_number: int

    @property
    def survivor(self) -> str:
        (other,) = set(WORKERS) - {self.killed}
        return other


def kill_a_worker_mid_task(
    client: AirflowClient,
    may_kill: Callable[[dict], bool],
    say: Callable[[str], None],
    timeout: float = 900,
) -> WorkerKill:
    """SIGKILL the worker of a running task instance that ``may_kill`` accepts, when every
    task it runs would be retried; wait until the next try of that task runs (on the other
    worker, the only one left), then start the killed worker again."""
    deadline = time.monotonic() + timeout
    kill = wait_for(
        lambda: _kill_mid_task(client, may_kill),
        timeout,
        "a running task to kill a worker under",
        interval=0.3,
    )
    say(f"SIGKILLed {kill.killed} in the middle of {kill.task_id} of {kill.dag_run_id}")
    _wait_for_next_try(client, kill, timeout=max(0, round(deadline - time.monotonic())))
    client.restart(kill.killed)
    wait_for_workers(client)
    return kill


def _kill_mid_task(client: AirflowClient, may_kill: Callable[[dict], bool]) -> WorkerKill | None:
    """Kill a worker if one runs a task ``may_kill`` accepts; None if none does, or if that
    task ended before the kill (the worker is then started again)."""
    client.check_alive()
    running = client.task_instances(state="running")
    for target in filter(may_kill, running):
        beside = [ti for ti in running if ti["hostname"] == target["hostname"]]
        if all(ti["max_tries"] > 0 for ti in beside):
            break
    else:
        return None
    client.kill(target["hostname"])
    kill = WorkerKill(
        target["hostname"],
        target["dag_id"],
        target["dag_run_id"],
        target["task_id"],
        target["try_number"],
    )
    if _current_try(client, kill)["state"] == "running":  # only the scheduler changes it now
        return kill
    client.restart(kill.killed)
    wait_for_workers(client)
    return None


def _wait_for_next_try(client: AirflowClient, kill: WorkerKill, timeout: float) -> None:
    def tried_again() -> bool:
        client.check_alive()
        current = _current_try(client, kill)
        return current["try_number"] > kill.try_number and current["state"] in TRIED

    what = f"{kill.task_id} of {kill.dag_run_id} to be tried again"
    wait_for(tried_again, timeout, what, interval=2)


def _current_try(client: AirflowClient, kill: WorkerKill) -> dict:
    return client.task_tries(kill.dag_id, kill.dag_run_id, kill.task_id)[-1]
