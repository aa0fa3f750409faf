"""Latency and throughput of the model server, plain and during a canary, beside its peers.

Set-up (in a temporary home): simulated snapshots of ``--customers`` customers over 8 days,
their features, two models trained by ``churnloop.training.challenger`` with the default
parameters (200 trees, 31 leaves): ``@champion`` on all but the last 2 days and the
canary's candidate on all but the last day; a Feast project of its own (``bench_<random>``)
whose online store is the local Redis (127.0.0.1:6379), holding the last day. The Feast
project's keys are removed at the end.

Servers, each a separate process on a free loopback port, one uvicorn worker:

- ``churnloop serve`` with the default settings (``canary_shadow_fraction`` 0.05: during a
  canary the other model scores one request in twenty in shadow), and one whose canary
  routes customers without shadow scoring (`NO_SHADOW_FRACTION`);
  each scored by ``customer_id`` (features read from Redis directly,
  ``feast_extensions.redis_online_reader``) and by explicit
  ``features`` (no online store);
- peer: ``mlflow models serve --env-manager local`` of the champion's version,
  ``/invocations`` with one ``dataframe_split`` row;
- peer: MLServer 1.7 with its MLflow runtime (``mlserver_mlflow.MLflowRuntime``) on the
  same version, downloaded from the registry, scored by either of its REST protocols:
  MLflow's ``/invocations`` and the V2 inference protocol. It runs from a virtualenv of
  its own, ``.bench-venvs/mlserver``, which the benchmark builds with uv from
  bench/mlserver-requirements.txt (MLServer and uv.lock's versions of what loading the
  model needs); when it cannot be built (no network), the MLServer rows are left out.
  ``parallel_workers`` 0: MLServer then infers in the process that serves HTTP, as
  ``churnloop serve`` does; 1 would load the model in a separate worker process and pass
  every request to it over a queue. Access log off, as ours;
- peer by ``customer_id``: Feast's feature server (``feast serve``, one worker) in front of
  MLServer. A request is two hops, timed from the first send to the second answer:
  ``/get-online-features`` of the feature service, then Feast's features (named as the
  model's inputs, ``full_feature_names`` being off; the entity's column dropped) as a V2
  request to MLServer: of its two protocols, V2 took slightly less server CPU in each of
  our trials (about 0.5 ms of 20 a request), while their req/s swapped places from run to
  run on a shared host (both are rows of the table). Its server CPU is both servers'.

What a request format costs (the sizes of the bench's bodies): ``customer_id`` is 20 bytes
of JSON, the server reading the 34 features from Redis by one HMGET; explicit
``features`` are one JSON object of about 1 KB that the server validates; MLflow's
``dataframe_split`` is about 1 KB too, columns and a row, which MLflow parses into a
DataFrame and checks against the model's signature; the V2 protocol takes about 2.8 KB,
a tensor (name, shape, datatype, data) per column that MLServer decodes column by column
into a DataFrame before MLflow's same check; the two hops send 73 bytes to Feast, whose
answer of about 3.7 KB (a value, status and timestamp per feature) the client reshapes
into the 2.8 KB V2 request: two exchanges, JSON written and parsed on both sides of
each. Every peer answers the pipeline's ``predict_proba`` (the model is logged with
``pyfunc_predict_fn`` ``predict_proba``): ``[[p(stays), p(churns)]]`` from
``/invocations``, a ``[1, 2]`` ``FP64`` tensor from V2; ``churnloop serve`` answers the
churn probability and label.

Each run measures both ``churnloop serve`` processes in two phases, in alternating order:
no canary (the plain champion path; the peers too), and a canary at ``CANARY_SHARE`` (the
candidate as ``@candidate`` with its share in the registry, then each server's
``/admin/reload``). A canary's added latency is the median over runs of its p99 minus the
same server's plain p99 in the same run.

Load comes from a separate process (this file with ``load``): ``--concurrency`` requests
in flight over keep-alive connections (aiohttp if installed, else httpx), ``--requests``
single-instance requests after a warm-up, capped at ``--max-seconds``. A row of the
table is the median of ``--runs`` runs of p50, p99, requests per second and the server's
CPU per request (the server's process and every process it started).

Run: ``.venv/bin/python bench/bench_serving.py`` (needs Redis on 127.0.0.1:6379; figures
also to bench/results/serving.json).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import percentile, write_results

from churnloop.demo.airflow_stack import free_port
from churnloop.processes import process_stats, stop_process_group
from churnloop.serving.process import PROMETHEUS_MULTIPROCESS_VARIABLES

if TYPE_CHECKING:
    import pandas as pd

    from churnloop.settings import Settings

REDIS = "127.0.0.1:6379"
FIRST_DAY = dt.date(2026, 3, 1)
DAYS = 8
WARM_UP_REQUESTS = 300
"""Sent one at a time before each measured run, not measured."""
CANARY_SHARE = 0.5
CANARY_TARGET_MS = 0.5
"""What a canary may add to the p99 of a request, over the plain champion path."""
ADMIN_TOKEN = secrets.token_hex(16)
"""The servers' admin token, for ``/admin/reload`` when the canary starts or ends."""
NO_SHADOW_FRACTION = "1e-9"
"""``canary_shadow_fraction`` for a canary that routes only: the setting refuses 0 (the
guardrails need shadow scores), and at 1e-9 no request of a run is drawn (``served`` in
the results, from the server's ``/metrics``, shows it)."""
SERVERS = {
    "default": {},
    "routing only": {"CHURNLOOP_CANARY_SHADOW_FRACTION": NO_SHADOW_FRACTION},
}
"""Each ``churnloop serve`` process and its settings beyond the defaults."""
FORMATS = ("customer_id (Redis)", "explicit features")
PEER = "peer: mlflow models serve, explicit features"
MLSERVER_INVOCATIONS = "peer: MLServer (mlserver-mlflow), /invocations, explicit features"
MLSERVER_V2 = "peer: MLServer, V2 inference protocol, explicit features"
ASSEMBLED_PEER = "peer: feast serve + MLServer, customer_id (two hops)"
MLSERVER_MODEL = "churn-model"
"""The name MLServer serves the champion under (its V2 paths carry it)."""
REPO = Path(__file__).resolve().parent.parent
MLSERVER_REQUIREMENTS = REPO / "bench" / "mlserver-requirements.txt"
MLSERVER_VENV = REPO / ".bench-venvs" / "mlserver"
"""MLServer's own virtualenv (git-ignored), built from `MLSERVER_REQUIREMENTS`: its
dependencies are not in uv.lock."""
UV = REPO / ".tools" / "bin" / "uv"


# -- load generation (runs in its own process) ----------------------------------------------


def _client(concurrency: int) -> tuple[Callable[[str, Any], Awaitable[tuple[int, bytes]]], Any]:
    """``post(url, body) -> (status, answer)`` and the session to close: aiohttp if installed,
    else httpx."""
    try:
        import aiohttp
    except ImportError:
        import httpx

        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency))

        async def post_httpx(url: str, body: Any) -> tuple[int, bytes]:
            response = await client.post(url, json=body)
            return response.status_code, response.content

        return post_httpx, client.aclose

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))

    async def post_aiohttp(url: str, body: Any) -> tuple[int, bytes]:
        async with session.post(url, json=body) as response:
            return response.status, await response.read()

    return post_aiohttp, session.close


def _sender(
    post: Callable[[str, Any], Awaitable[tuple[int, bytes]]], url: str, then_url: str | None
) -> Callable[[Any], Awaitable[int]]:
    """``send(body) -> status``, one request: a POST to ``url``; with ``then_url``, two hops,
    the first one's answer (Feast's features) posted to ``then_url`` as the model's input."""

    async def send(body: Any) -> int:
        return (await post(url, body))[0]

    async def send_two_hops(body: Any) -> int:
        status, answer = await post(url, body)
        if status != 200:
            return status
        return (await post(then_url, model_input(body, json.loads(answer))))[0]

    return send if then_url is None else send_two_hops


async def _load(
    url: str,
    payloads: list[Any],
    concurrency: int,
    requests: int,
    max_seconds: float,
    then_url: str | None = None,
) -> dict[str, float]:
    """Send ``requests`` requests (POSTs, or pairs of them with ``then_url``) with
    ``concurrency`` in flight; latencies in ms and req/s."""
    post, close = _client(concurrency)
    send = _sender(post, url, then_url)
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))

    async def worker(deadline: float) -> None:
        nonlocal errors
        for index in counter:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            status = await send(payloads[index % len(payloads)])
            latencies.append((time.perf_counter() - started) * 1000)
            errors += status != 200

    for body in payloads[:WARM_UP_REQUESTS]:
        await send(body)
    started = time.perf_counter()
    await asyncio.gather(*(worker(started + max_seconds) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await close()
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "rps": len(latencies) / elapsed,
        "latencies_ms": [round(latency, 3) for latency in latencies],
    }


def v2_request(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as a V2 inference request that MLServer decodes into a one-row DataFrame
    (content type ``pd``), a column per input: strings as ``BYTES``, numbers as ``FP64``
    (the model's signature declares every number a double)."""
    return {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {
                "name": name,
                "shape": [1],
                "datatype": "BYTES" if isinstance(value, str) else "FP64",
                "data": [value],
            }
            for name, value in row.items()
        ],
    }


def model_input(request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """Feast's answer to ``request`` (one entity) as MLServer's input: its columns but the
    entity's, by the names Feast gives them, which are the model's (``full_feature_names``
    is off)."""
    names = answer["metadata"]["feature_names"]
    return v2_request(
        {
            name: column["values"][0]
            for name, column in zip(names, answer["results"], strict=True)
            if name not in request["entities"]
        }
    )


def load_main(args: argparse.Namespace) -> None:
    payloads = json.loads(Path(args.payloads).read_text())
    result = asyncio.run(
        _load(args.url, payloads, args.concurrency, args.requests, args.max_seconds, args.then_url)
    )
    print(json.dumps(result))


# -- set-up ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """What the servers serve: their environment, the champion's and the candidate's
    versions, and the customers and feature rows the requests name."""

    environment: dict[str, str]
    champion: int
    candidate: int
    customers: list[int]
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    ready_path: str
    """Answers 200 once the server serves."""


def wait_until_ready(url: str, process: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {seconds} s:\n{log.read_text()[-3000:]}")


def build_world(home: Path, customers: int) -> World:
    """Train and register the champion and the candidate, fill Redis."""
    import pandas as pd
    import pyarrow as pa

    from churnloop import storage
    from churnloop.demo.simulation import generate_labels, generate_snapshots
    from churnloop.features import definition
    from churnloop.features.feast_config import apply_definitions
    from churnloop.features.materialize import materialize_day
    from churnloop.schema import ENTITY, TIMESTAMP
    from churnloop.serving.deploy import json_rows
    from churnloop.settings import Settings

    environment = {
        "CHURNLOOP_HOME": str(home),
        "CHURNLOOP_FEAST_REDIS": REDIS,
        "CHURNLOOP_FEAST_PROJECT": f"bench_{uuid.uuid4().hex[:8]}",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    os.environ.update(environment)
    settings = Settings()
    lake = storage.lake(settings)
    days = [FIRST_DAY + dt.timedelta(days=offset) for offset in range(DAYS)]
    history = pd.concat([generate_snapshots(day, customers).to_pandas() for day in days])
    frames = []
    for day in days:
        rows = definition.build_features(history, day)
        table = pa.Table.from_pandas(rows, schema=definition.TABLE_SCHEMA, preserve_index=False)
        lake.write_table(definition.DATASET, day, table)
        labels = generate_labels(day, customers).to_pandas()
        frames.append(rows.merge(labels, on=[ENTITY, TIMESTAMP]))
    names = list(definition.FEATURE_SCHEMA.names)
    champion, candidate = register_models(settings, pd.concat(frames, ignore_index=True), names)
    apply_definitions(settings)
    materialize_day(settings, days[-1], overlap_days=0)
    last = frames[-1]
    return World(environment, champion, candidate, last[ENTITY].tolist(), json_rows(last, names))


def register_models(
    settings: Settings, labelled: pd.DataFrame, names: list[str]
) -> tuple[int, int]:
    """The champion's and the candidate's versions, ``@champion`` set: the same parameters
    fitted on all but the last 2 days and on all but the last one, so two models of the
    same size whose labels differ for some customers."""
    from churnloop import registry
    from churnloop.features import definition
    from churnloop.training.challenger import train_and_register
    from churnloop.training.split import split_by_time

    versions = []
    for holdout_days in (2, 1):
        train, holdout = split_by_time(labelled, holdout_days=holdout_days)
        trained = train_and_register(
            settings,
            train,
            holdout,
            feature_names=names,
            feature_service=definition.FEATURE_SERVICE,
            lineage={"dag_id": "bench"},
        )
        versions.append(trained.version)
    registry.connect(settings).set_registered_model_alias(
        settings.model_name, registry.CHAMPION, str(versions[0])
    )
    return versions[0], versions[1]


def remove_feast_project(environment: dict[str, str]) -> None:
    from churnloop.features.feast_config import feature_store
    from churnloop.settings import Settings

    os.environ.update(environment)
    feature_store(Settings()).teardown()


def start(command: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen:
    """``command`` in a session of its own, without the Prometheus multiprocess folder that
    importing Feast set here: inherited, it would make the servers share their metric
    values in its files, each update a write to a file, instead of their own memory."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in PROMETHEUS_MULTIPROCESS_VARIABLES
    }
    with log.open("w") as sink:
        return subprocess.Popen(
            command,
            env={**inherited, **environment},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_servers(world: World, folder: Path, mlserver_venv: Path | None) -> dict[str, Server]:
    """Each ``churnloop serve`` of `SERVERS` under its label, MLflow's server under ``peer``,
    and with MLServer's virtualenv, ``mlserver`` and ``feast serve``."""
    servers = {}
    for label, settings in SERVERS.items():
        port, log = free_port(), folder / f"churnloop-serve-{label.replace(' ', '-')}.log"
        environment = {
            **world.environment,
            **settings,
            "CHURNLOOP_SERVING_PORT": str(port),
            "CHURNLOOP_SERVING_ADMIN_TOKEN": ADMIN_TOKEN,
        }
        process = start([sys.executable, "-m", "churnloop.cli", "serve"], environment, log)
        servers[label] = Server(f"http://127.0.0.1:{port}", process, log, "/ready")
    port, log = free_port(), folder / "mlflow-serve.log"
    home = Path(world.environment["CHURNLOOP_HOME"])
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "models",
        "serve",
        "-m",
        "models:/churn-model@champion",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    environment = {
        **world.environment,
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    process = start(command, environment, log)
    servers["peer"] = Server(f"http://127.0.0.1:{port}", process, log, "/ping")
    if mlserver_venv is not None:
        servers["mlserver"] = start_mlserver(world, mlserver_venv, folder)
        servers["feast serve"] = start_feast_serve(world, folder)
    return servers


def build_mlserver_venv() -> Path | None:
    """`MLSERVER_VENV`, built with uv from `MLSERVER_REQUIREMENTS` unless it holds them
    already (a copy of the file in it says so); None, with why on stderr, when it cannot
    be built (no uv, no network): the benchmark then runs without the MLServer peers."""
    wanted = MLSERVER_REQUIREMENTS.read_text()
    stamp = MLSERVER_VENV / "requirements.txt"
    if stamp.exists() and stamp.read_text() == wanted:
        return MLSERVER_VENV
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    commands = [
        [str(UV), "venv", "--clear", "--python", python, str(MLSERVER_VENV)],
        [str(UV), "pip", "install", "--python", str(MLSERVER_VENV / "bin" / "python")]
        + ["-r", str(MLSERVER_REQUIREMENTS)],
    ]
    print(f"building {MLSERVER_VENV.relative_to(REPO)} ...", file=sys.stderr, flush=True)
    environment = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    try:
        for command in commands:
            subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        reason = getattr(error, "stderr", None) or str(error)
        print(
            f"skipping the MLServer peers: {MLSERVER_VENV.relative_to(REPO)} could not be "
            f"built:\n{reason.strip()[-2000:]}",
            file=sys.stderr,
        )
        return None
    stamp.write_text(wanted)
    return MLSERVER_VENV


def start_mlserver(world: World, venv: Path, folder: Path) -> Server:
    """MLServer's MLflow runtime on the champion's version, downloaded from the registry.
    One process, ``parallel_workers`` 0: inference in the process that serves HTTP, as in
    ``churnloop serve`` (1 would hand every request to a worker process over a queue);
    no access log (``debug`` off), as ours; gRPC and metrics on free ports of their own."""
    import mlflow

    from churnloop import registry
    from churnloop.settings import Settings

    settings = Settings()
    registry.connect(settings)
    model = mlflow.artifacts.download_artifacts(
        artifact_uri=registry.model_uri(settings, world.champion),
        dst_path=str(folder / "mlserver-model"),
    )
    repository, port = folder / "mlserver", free_port()
    (repository / MLSERVER_MODEL).mkdir(parents=True)
    server_settings = {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 0,
    }
    model_settings = {
        "name": MLSERVER_MODEL,
        "implementation": "mlserver_mlflow.MLflowRuntime",
        "parameters": {"uri": model},
    }
    (repository / "settings.json").write_text(json.dumps(server_settings))
    (repository / MLSERVER_MODEL / "model-settings.json").write_text(json.dumps(model_settings))
    log = folder / "mlserver.log"
    command = [str(venv / "bin" / "mlserver"), "start", str(repository)]
    process = start(command, {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}, log)
    return Server(f"http://127.0.0.1:{port}", process, log, f"/v2/models/{MLSERVER_MODEL}/ready")


def start_feast_serve(world: World, folder: Path) -> Server:
    """Feast's feature server (this virtualenv's ``feast serve``) on the bench's Feast
    project: one worker, no access log, and no restart every 1,000 requests (gunicorn's
    ``max_requests``, which ``feast serve`` sets by default). Its feature_store.yaml goes
    to a folder of the run (``write_feature_store_yaml`` writes the checkout's)."""
    import yaml

    from churnloop.features.feast_config import feast_config
    from churnloop.settings import Settings

    repository, port, log = folder / "feast-serve", free_port(), folder / "feast-serve.log"
    repository.mkdir()
    (repository / "feature_store.yaml").write_text(yaml.safe_dump(feast_config(Settings())))
    command = [
        str(Path(sys.executable).parent / "feast"),
        "-c",
        str(repository),
        "serve",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--max-requests",
        "0",
    ]
    process = start(command, world.environment, log)
    return Server(f"http://127.0.0.1:{port}", process, log, "/health")


def wait_for_servers(servers: dict[str, Server]) -> None:
    for server in servers.values():
        wait_until_ready(f"{server.url}{server.ready_path}", server.process, server.log)


# -- the canary -------------------------------------------------------------------------------


def set_canary(world: World, on: bool) -> None:
    """Start the canary in the registry (the candidate as ``@candidate`` with
    ``CANARY_SHARE``), or end it (no ``@candidate``, no share)."""
    from churnloop import registry
    from churnloop.settings import Settings

    settings = Settings()
    client = registry.connect(settings)
    if on:
        client.set_registered_model_alias(
            settings.model_name, registry.CANDIDATE, str(world.candidate)
        )
        registry.set_canary_share(settings, world.candidate, CANARY_SHARE)
    elif registry.CANDIDATE in registry.aliases(settings):
        client.delete_registered_model_alias(settings.model_name, registry.CANDIDATE)
        registry.clear_canary_share(settings)


def follow_registry(url: str, candidate: int | None, share: float) -> None:
    """Have the server at ``url`` read the registry now; fail unless it then serves the
    canary the phase measures (``candidate`` at ``share``, or none at 0)."""
    import httpx

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = httpx.post(f"{url}/admin/reload", headers=headers, timeout=120)
    if response.status_code != 200:
        raise RuntimeError(f"{url}/admin/reload answered {response.status_code}: {response.text}")
    state = httpx.get(f"{url}/model", timeout=30).json()
    serving = ((state["candidate"] or {}).get("version"), state["canary_share"])
    if serving != (candidate, share):
        raise RuntimeError(
            f"{url} serves candidate and share {serving}, not {(candidate, share)}: "
            f"{state['candidate_load_error'] or state['canary_share_error']}"
        )


def served_counts(world: World, servers: dict[str, Server]) -> dict[str, dict[str, int]]:
    """Per ``churnloop serve``, from its ``/metrics``: the requests each variant answered and
    its instances shadow-scored, whose labels agreed or not: the check that the canary
    routed and shadowed as its settings say."""
    import httpx

    from churnloop.canary.evidence import read_evidence

    counts = {}
    for label in SERVERS:
        text = httpx.get(f"{servers[label].url}/metrics", timeout=30).text
        evidence = read_evidence(text, world.champion, world.candidate)
        counts[label] = {
            f"{variant}_{key}": getattr(getattr(evidence, variant), key)
            for variant in ("champion", "candidate")
            for key in ("requests", "agree", "disagree")
        }
    return counts


# -- the runs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A row of the table: its load's URL and bodies, the servers it loads (by leader pid), and
    for two hops, where the first answer goes."""

    name: str
    url: str
    payloads: list[Any]
    leaders: tuple[int, ...]
    then_url: str | None = None


def case_name(server: str, canary: bool, request_format: str) -> str:
    """A row's name; the default server's plain rows keep the names the summary reads."""
    if not canary:
        setting = "" if server == "default" else f" (canary_shadow_fraction {NO_SHADOW_FRACTION})"
        return f"churnloop serve{setting}, {request_format}"
    scoring = "routing + default shadow" if server == "default" else "routing only"
    return f"canary {CANARY_SHARE:g}, {scoring}, {request_format}"


def phase_cases(
    servers: dict[str, Server], payloads: dict[str, list[Any]], canary: bool
) -> list[Case]:
    """Both ``churnloop serve`` processes with either request format; without a canary,
    the peer too."""
    cases = [
        Case(
            case_name(label, canary, request_format),
            f"{servers[label].url}/predict",
            payloads[request_format],
            (servers[label].process.pid,),
        )
        for label in SERVERS
        for request_format in FORMATS
    ]
    return cases if canary else cases + peer_cases(servers, payloads)


def peer_cases(servers: dict[str, Server], payloads: dict[str, list[Any]]) -> list[Case]:
    """MLflow's server, and when MLServer runs, MLServer by either protocol and by
    customer_id behind ``feast serve`` (whose CPU counts with MLServer's)."""
    peer = servers["peer"]
    cases = [Case(PEER, f"{peer.url}/invocations", payloads[PEER], (peer.process.pid,))]
    if "mlserver" not in servers:
        return cases
    mlserver, feast = servers["mlserver"], servers["feast serve"]
    v2_url, model = f"{mlserver.url}/v2/models/{MLSERVER_MODEL}/infer", (mlserver.process.pid,)
    return cases + [
        Case(MLSERVER_INVOCATIONS, f"{mlserver.url}/invocations", payloads[PEER], model),
        Case(MLSERVER_V2, v2_url, payloads[MLSERVER_V2], model),
        Case(
            ASSEMBLED_PEER,
            f"{feast.url}/get-online-features",
            payloads[ASSEMBLED_PEER],
            (feast.process.pid, *model),
            then_url=v2_url,
        ),
    ]


def request_payloads(world: World, requests: int) -> dict[str, list[Any]]:
    """Per request format (and the peers'), ``requests`` bodies of customers drawn at
    random; MLServer's V2 bodies hold our explicit rows, Feast's our customers."""
    from churnloop.features.definition import FEATURE_SERVICE
    from churnloop.schema import ENTITY

    rng = random.Random(7)
    columns = list(world.rows[0])
    customers = [int(rng.choice(world.customers)) for _ in range(requests)]
    rows = [rng.choice(world.rows) for _ in range(requests)]
    return {
        FORMATS[0]: [{"customer_id": customer} for customer in customers],
        FORMATS[1]: [{"features": row} for row in rows],
        PEER: [
            {"dataframe_split": {"columns": columns, "data": [list(row.values())]}}
            for row in (rng.choice(world.rows) for _ in range(requests))
        ],
        MLSERVER_V2: [v2_request(row) for row in rows],
        ASSEMBLED_PEER: [
            {"feature_service": FEATURE_SERVICE, "entities": {ENTITY: [customer]}}
            for customer in customers
        ],
    }


def cpu_seconds(leaders: tuple[int, ...]) -> float:
    """CPU time (user + system) of the servers whose pids are ``leaders`` and their workers
    (each server is started by `start` as the leader of its processes)."""
    ticks = sum(
        int(fields[11]) + int(fields[12])
        for _, fields in process_stats()
        if int(fields[3]) in leaders
    )
    return ticks / os.sysconf("SC_CLK_TCK")


def run_load(case: Case, args: argparse.Namespace, folder: Path) -> dict:
    path = folder / f"payloads-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(case.payloads))
    cpu_before = cpu_seconds(case.leaders)
    command = [
        sys.executable,
        __file__,
        "load",
        "--url",
        case.url,
        "--payloads",
        str(path),
        "--concurrency",
        str(args.concurrency),
        "--requests",
        str(args.requests),
        "--max-seconds",
        str(args.max_seconds),
        *(["--then-url", case.then_url] if case.then_url else []),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    served = result["requests"] + min(WARM_UP_REQUESTS, len(case.payloads))
    result["cpu_ms"] = (cpu_seconds(case.leaders) - cpu_before) * 1000 / served
    return result


def measure(
    world: World, servers: dict[str, Server], args: argparse.Namespace, folder: Path
) -> dict[str, list[dict]]:
    """Every case's runs: in each, the plain phase and the canary's, their order alternating
    from run to run so that a change of load within a run hits both alike."""
    payloads = request_payloads(world, args.requests)
    results: dict[str, list[dict]] = {}
    for run in range(args.runs):
        for canary in (False, True) if run % 2 == 0 else (True, False):
            set_canary(world, canary)
            for label in SERVERS:
                follow_registry(
                    servers[label].url,
                    world.candidate if canary else None,
                    CANARY_SHARE if canary else 0.0,
                )
            for case in phase_cases(servers, payloads, canary):
                print(f"run {run + 1}/{args.runs}: {case.name}", file=sys.stderr, flush=True)
                results.setdefault(case.name, []).append(run_load(case, args, folder))
    return results


# -- the figures ------------------------------------------------------------------------------


def medians(results: dict[str, list[dict]]) -> list[dict]:
    """Per case, the median over runs of each figure, and the errors of all runs."""
    return [
        {
            "case": name,
            **{
                key: statistics.median(run[key] for run in runs)
                for key in ("requests", "p50_ms", "p99_ms", "rps", "cpu_ms")
            },
            "errors": sum(run["errors"] for run in runs),
        }
        for name, runs in results.items()
    ]


def canary_figures(results: dict[str, list[dict]]) -> list[dict]:
    """Per request format and canary, what it adds over the plain path of the same server.

    The added p99 and p50 compare the latencies of all runs pooled, the canary's against
    the plain path's (each run measures both, in alternating order, so that a change of
    load hits both alike): one run's p99 of 2,000 requests moves by milliseconds from run
    to run on a shared host. The rest are medians over runs of each run's difference;
    ``added_p99_ms_runs`` keeps each run's own.
    """
    rows = []
    for request_format in FORMATS:
        for label in SERVERS:
            plain = results[case_name(label, False, request_format)]
            canary = results[case_name(label, True, request_format)]
            added = {
                key: [after[key] - before[key] for before, after in zip(plain, canary, strict=True)]
                for key in ("p99_ms", "rps", "cpu_ms")
            }
            pooled = {
                f"added_{key}": percentile(_pooled(canary), q) - percentile(_pooled(plain), q)
                for key, q in (("p50_ms", 0.50), ("p99_ms", 0.99))
            }
            rows.append(
                {
                    "case": case_name(label, True, request_format),
                    "plain": case_name(label, False, request_format),
                    "shadow": label == "default",
                    "added_rps": statistics.median(added["rps"]),
                    "added_cpu_ms": statistics.median(added["cpu_ms"]),
                    **pooled,
                    "added_p99_ms_runs": added["p99_ms"],
                    "met": pooled["added_p99_ms"] < CANARY_TARGET_MS,
                }
            )
    return rows


def _pooled(runs: list[dict]) -> list[float]:
    return [latency for run in runs for latency in run["latencies_ms"]]


def print_table(header: list[str], rows: list[list[str]]) -> None:
    print("\n| " + " | ".join(header) + " |")
    print("| --- |" + " ---: |" * (len(header) - 1))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def report(args: argparse.Namespace, figures: list[dict], canary: list[dict]) -> None:
    """Both tables, in Markdown: every case, then what each canary adds to its plain path."""
    print_table(
        [
            "what",
            "concurrency",
            "requests/run",
            "p50 (ms)",
            "p99 (ms)",
            "req/s",
            "server CPU (ms/req)",
            "errors",
        ],
        [
            [
                row["case"],
                str(args.concurrency),
                f"{row['requests']:,.0f}",
                f"{row['p50_ms']:.2f}",
                f"{row['p99_ms']:.2f}",
                f"{row['rps']:,.0f}",
                f"{row['cpu_ms']:.2f}",
                str(row["errors"]),
            ]
            for row in figures
        ],
    )
    print_table(
        [
            "canary",
            "added p99 (ms), runs pooled (each run)",
            "added p50 (ms)",
            "added server CPU (ms/req)",
            "added req/s",
            f"adds < {CANARY_TARGET_MS:g} ms to p99?",
        ],
        [
            [
                row["case"],
                f"{row['added_p99_ms']:+.2f} "
                f"({', '.join(f'{value:+.2f}' for value in row['added_p99_ms_runs'])})",
                f"{row['added_p50_ms']:+.2f}",
                f"{row['added_cpu_ms']:+.3f}",
                f"{row['added_rps']:+,.0f}",
                "yes" if row["met"] else "no",
            ]
            for row in canary
        ],
    )


def bench_main(args: argparse.Namespace) -> None:
    load_at_start = [round(value, 2) for value in os.getloadavg()]
    mlserver_venv = build_mlserver_venv()
    with tempfile.TemporaryDirectory(prefix="churnloop-bench-serving-") as folder:
        home = Path(folder) / "home"
        print(f"setting up: {args.customers:,} customers, {DAYS} days ...", file=sys.stderr)
        world = build_world(home, args.customers)
        servers = start_servers(world, Path(folder), mlserver_venv)
        try:
            wait_for_servers(servers)
            results = measure(world, servers, args, Path(folder))
            served = served_counts(world, servers)
        finally:
            for server in servers.values():
                stop_process_group(server.process, grace=20)
            remove_feast_project(world.environment)
    figures, canary = medians(results), canary_figures(results)
    report(args, figures, canary)
    print(f"\nserved per server (from /metrics): {json.dumps(served)}")
    write_results(
        "serving",
        {
            "customers": args.customers,
            "concurrency": args.concurrency,
            "requests": args.requests,
            "max_seconds": args.max_seconds,
            "runs": args.runs,
            "load_average_at_start": load_at_start,
            "rows": figures,
            "canary_share": CANARY_SHARE,
            "canary_target_ms": CANARY_TARGET_MS,
            "canary": canary,
            "served": served,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    load = commands.add_parser("load", help="(internal) the load generator process")
    load.add_argument("--url", required=True)
    load.add_argument("--payloads", required=True)
    load.add_argument("--then-url", help="two hops: post the first answer's features here")
    for target in (parser, load):
        target.add_argument("--concurrency", type=int, default=8)
        target.add_argument("--requests", type=int, default=5_000)
        target.add_argument("--max-seconds", type=float, default=60)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    load_main(args) if args.command == "load" else bench_main(args)


if __name__ == "__main__":
    main()
