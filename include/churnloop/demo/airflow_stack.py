"""Real Airflow components, started, driven through the REST API, and stopped.

`airflow_stack` runs an api-server, a scheduler, a dag-processor and a triggerer on one
metadata DB, and any `CeleryWorker`s asked for, each in its own process group (stopped whole
on exit), and yields an `AirflowClient` of Airflow's public REST API (``/api/v2``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from churnloop.orchestration.environment import airflow_environment, prepare_airflow
from churnloop.processes import process_stats, stop_process_group
from churnloop.settings import Settings

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
"""What runs DAGs end to end; the triggerer runs the callbacks of missed Deadline Alerts."""

FINISHED = frozenset({"success", "failed"})
UNAVAILABLE_SECONDS = 120
PROGRESS_SECONDS = 15
"""How often waiting for runs reports progress (and always when they are all done)."""
USERNAME = "admin"


class AirflowStackError(RuntimeError):
    """A component did not start, died, or a run did not finish in time."""


@dataclass(frozen=True)
class CeleryWorker:
    """An ``airflow celery worker`` beside the components (the CeleryExecutor's): its Celery
    hostname, which also names it among the components and its log file, and what its
    environment adds to the stack's."""

    hostname: str
    environ: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StackLogin:
    base_url: str
    username: str
    password: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_environment(
    settings: Settings, port: int, password: str, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of every component: the settings' Airflow mapping on ``port``,
    a real login (not all-admins) and secrets shared by the processes of this stack.

    Report links keep ``settings.airflow_api_url``, the UI ``make airflow`` serves later,
    so the links a demo's tasks print still open once this stack is gone.
    """
    environ = dict(os.environ if environ is None else environ)
    base_url = f"http://127.0.0.1:{port}"
    environ.update(
        airflow_environment(
            settings.model_copy(update={"airflow_api_url": base_url}),
            environ={**environ, "AIRFLOW__API__BASE_URL": base_url},
        )
    )
    home = Path(environ["AIRFLOW_HOME"])
    passwords = home / "simple_auth_manager_passwords.json"
    environ.update(
        {
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "PYTHONUNBUFFERED": "1",
        }
    )
    bin_dir = str(Path(sys.executable).parent)
    environ["PATH"] = f"{bin_dir}{os.pathsep}{environ.get('PATH', '')}"
    home.mkdir(parents=True, exist_ok=True)
    passwords.write_text(json.dumps({USERNAME: password}))
    return environ


@contextmanager
def airflow_stack(
    settings: Settings,
    log_dir: Path,
    environ: Mapping[str, str] | None = None,
    say: Callable[[str], None] = lambda line: None,
    celery_workers: Sequence[CeleryWorker] = (),
) -> Iterator[AirflowClient]:
    """Migrate the metadata DB, start the components, yield a logged-in REST client.

    ``celery_workers`` only run tasks if the environment selects the CeleryExecutor and
    its broker."""
    port = free_port()
    password = secrets.token_urlsafe(16)
    env = stack_environment(settings, port, password, environ)
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "airflow-setup.log").open("w") as output:
        _in_environment(env, lambda: prepare_airflow(settings, output))
    components = _components(env, log_dir, port, celery_workers)
    with ExitStack() as stack:
        stack.enter_context(_terminate_means_exit())
        for component in components.values():
            component.start()
            stack.callback(component.stop)
        say(
            f"Airflow {', '.join(components)} on {env['AIRFLOW__API__BASE_URL']} "
            f"(logs in {log_dir})"
        )
        login = StackLogin(env["AIRFLOW__API__BASE_URL"], USERNAME, password)
        client = AirflowClient(login, components, log_dir)
        stack.callback(client.close)
        client.wait_until_healthy()
        yield client


def _components(
    env: Mapping[str, str], log_dir: Path, port: int, celery_workers: Sequence[CeleryWorker]
) -> dict[str, Component]:
    """The ``airflow`` commands to run, by name.

    Workers serve no logs: the api-server reads task logs from the log folder they share on
    this machine, and a second log server would find Airflow's one port taken."""
    arguments = {name: [name] for name in COMPONENTS}
    arguments["api-server"] += ["--port", str(port), "--workers", "1"]  # host: AIRFLOW__API__HOST
    components = {name: Component(name, args, env, log_dir) for name, args in arguments.items()}
    for worker in celery_workers:
        command = ["celery", "worker", "--celery-hostname", worker.hostname, "--skip-serve-logs"]
        worker_env = {**env, **worker.environ}
        components[worker.hostname] = Component(worker.hostname, command, worker_env, log_dir)
    return components


@contextmanager
def _terminate_means_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the components are stopped, not orphaned."""

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _in_environment(env: Mapping[str, str], action: Callable[[], None]) -> None:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        action()
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Component:
    """One Airflow component (``airflow <arguments>``) in its own process group."""

    def __init__(
        self, name: str, arguments: Sequence[str], env: Mapping[str, str], log_dir: Path
    ) -> None:
        self.name = name
        self.command = [sys.executable, "-m", "airflow", *arguments]
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self, grace: float = 20) -> None:
        """SIGTERM (a scheduler lets its running tasks finish), SIGKILL after ``grace``."""
        if self.process is not None:
            stop_process_group(self.process, grace)

    def kill(self) -> None:
        """SIGKILL every process of the component at once, as a lost machine would: no
        shutdown, nothing said to anyone. It then counts as stopped, not as dead."""
        if self.process is not None:
            _kill_session(self.process.pid)
            self.process.wait()
            self.process = None

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()


def _kill_session(session: int, timeout: float = 10) -> None:
    """SIGKILL the processes of ``session`` (a component's: task processes run in process
    groups of their own within it) until none is left alive."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid, fields in process_stats() if _alive_in(session, fields)]
        if not alive:
            return
        if time.monotonic() > deadline:
            raise AirflowStackError(f"processes {alive} of session {session} survived SIGKILL")
        for pid in alive:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _alive_in(session: int, fields: list[str]) -> bool:
    return int(fields[3]) == session and fields[0] != "Z"


class AirflowClient:
    """Airflow's REST API (``/api/v2``) as the demo and the tests use it."""

    def __init__(
        self, login: StackLogin, components: Mapping[str, Component], log_dir: Path
    ) -> None:
        self.login = login
        self.components = dict(components)
        self.log_dir = log_dir
        self._http = httpx.Client(base_url=login.base_url, timeout=30)
        self._token: str | None = None

    # -- plumbing ------------------------------------------------------------------------

    def wait_until_healthy(self, timeout: float = 180) -> None:
        """Until the api-server answers and the scheduler reports a heartbeat."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                health = self._http.get("/api/v2/monitor/health").json()
                if health.get("scheduler", {}).get("status") == "healthy":
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        raise AirflowStackError(f"Airflow not healthy after {timeout:.0f} s; see {self.log_dir}")

    def check_alive(self) -> None:
        for component in self.components.values():
            code = component.exited()
            if code is not None:
                tail = component.log_path.read_text()[-3000:]
                raise AirflowStackError(f"airflow {component.name} exited ({code}):\n{tail}")

    def restart(self, name: str, grace: float = 300) -> None:
        """Stop a component as an operator would (SIGTERM; a scheduler's running tasks
        finish first) and start it again; a killed component just starts."""
        component = self.components[name]
        component.stop(grace)
        component.start()
        self.wait_until_healthy()

    def kill(self, name: str) -> None:
        """SIGKILL a component with all its processes (`Component.kill`)."""
        self.components[name].kill()

    def token(self) -> str:
        if self._token is None:
            answer = self._http.post(
                "/auth/token",
                json={"username": self.login.username, "password": self.login.password},
            )
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One REST call; a 503 (on SQLite: "Database is locked" while the scheduler
        writes) did nothing and is tried again for up to ``UNAVAILABLE_SECONDS``."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        deadline = time.monotonic() + UNAVAILABLE_SECONDS
        while True:
            answer = self._http.request(method, f"/api/v2{path}", headers=headers, **kwargs)
            if answer.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(1)
        if answer.status_code >= 400:
            raise AirflowStackError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json() if answer.content else None

    # -- DAGs and runs -------------------------------------------------------------------

    def wait_for_dags(self, dag_ids: Sequence[str], timeout: float = 180) -> None:
        """Until the dag-processor has parsed and serialized every one of ``dag_ids``."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            found = {dag["dag_id"] for dag in self.request("GET", "/dags")["dags"]}
            missing = set(dag_ids) - found
            if not missing:
                return
            if time.monotonic() > deadline:
                errors = self.request("GET", "/importErrors")
                raise AirflowStackError(f"DAGs not parsed: {sorted(missing)}; {errors}")
            time.sleep(1)

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    def is_paused(self, dag_id: str) -> bool:
        return bool(self.request("GET", f"/dags/{dag_id}")["is_paused"])

    def backfill(
        self, dag_id: str, first: dt.date, last: dt.date, max_active_runs: int = 2
    ) -> dict:
        """An Airflow backfill of the runs whose logical dates fall on ``first``..``last``,
        whatever their time of day (executed by the scheduler once the DAG is unpaused)."""
        end_of_last = _midnight(last + dt.timedelta(days=1)) - dt.timedelta(seconds=1)
        body = {
            "dag_id": dag_id,
            "from_date": _midnight(first).isoformat(),
            "to_date": end_of_last.isoformat(),
            "max_active_runs": max_active_runs,
            "reprocess_behavior": "completed",
        }
        return self.request("POST", "/backfills", json=body)

    def trigger(self, dag_id: str, logical_date: dt.datetime, conf: dict | None = None) -> str:
        body = {"logical_date": logical_date.isoformat(), "conf": conf or {}}
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self.request(
            "GET", f"/dags/{dag_id}/dagRuns", params={"limit": 500, "order_by": "run_after"}
        )["dag_runs"]

    def wait_for_runs(
        self,
        dag_id: str,
        count: int,
        timeout: float,
        progress: Callable[[str], None] = lambda line: None,
    ) -> list[dict]:
        """Until ``count`` runs of ``dag_id`` have finished."""
        deadline = time.monotonic() + timeout
        reported, reported_at = None, 0.0
        while True:
            self.check_alive()
            runs = self.runs(dag_id)
            done = [r for r in runs if r["state"] in FINISHED]
            failed = sum(r["state"] == "failed" for r in done)
            line = (
                f"{dag_id}: {len(done)}/{count} runs finished ({failed} failed), "
                f"{len(runs) - len(done)} active"
            )
            due = time.monotonic() - reported_at >= PROGRESS_SECONDS or len(done) >= count
            if line != reported and due:
                progress(line)
                reported, reported_at = line, time.monotonic()
            if len(done) >= count:
                return done
            if time.monotonic() > deadline:
                raise AirflowStackError(f"{line} after {timeout:.0f} s; logs in {self.log_dir}")
            time.sleep(2)

    def task_instances(self, dag_id: str = "~", run_id: str = "~", **filters: Any) -> list[dict]:
        """Task instances of a run (``~``: of every DAG or run) as the REST API gives them,
        with their state, try number and the hostname they ran on; ``filters`` are its
        query parameters (``state="running"``)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self.request("GET", path, params={"limit": 500, **filters})["task_instances"]

    def task_tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        """Every try of a task instance, the current one included, in order."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
        tries = self.request("GET", path)["task_instances"]
        return sorted(tries, key=lambda attempt: attempt["try_number"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id)}

    def failed_tasks(self, dag_id: str, run_id: str) -> list[str]:
        states = self.task_states(dag_id, run_id)
        return sorted(task for task, state in states.items() if state == "failed")

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.request("GET", path, params={"deserialize": True})["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[str]:
        """The messages of a task's log in order, as the UI shows them (group markers too)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        content = self.request("GET", path, params={"full_content": True})["content"]
        return [line["event"] if isinstance(line, dict) else str(line) for line in content]

    def close(self) -> None:
        self._http.close()


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
