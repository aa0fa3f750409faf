"""docker-compose.yaml and the Dockerfile agree with the settings module.

No Docker engine runs here, so the topology is checked where it can silently drift from
the code: every ``CHURNLOOP_*`` variable must name a Settings field, the shared
environment must yield the production profile (remove one of its variables and a test
fails), and ports, hostnames, databases and the bucket must match what the settings say.
``${VAR:-default}`` is resolved to its default, as compose does with nothing set. The images
it pulls are checked in test_compose_images.py.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from churnloop.settings import PROJECT_ROOT, Settings
from tests.compose_support import S3_STORE, load_compose, resolve

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
SHARED_ENV = "x-churnloop-env"
PREFIX = "CHURNLOOP_"

EXPECTED_SERVICES = {
    "postgres",
    "redis",
    "seaweedfs",
    "seaweedfs-init",
    "mlflow",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "model-server",
}
AIRFLOW_SERVICES = sorted(name for name in EXPECTED_SERVICES if name.startswith("airflow-"))
CHURNLOOP_SERVICES = [*AIRFLOW_SERVICES, "model-server", "mlflow"]

PRODUCTION_NEEDS = [
    "lake_uri",
    "landing_uri",
    "s3_endpoint_url",
    "mlflow_tracking_uri",
    "mlflow_artifact_uri",
    "feast_redis",
    "feast_registry",
    "serving_admin_token",
]
"""Settings the production profile cannot do without; each must be set by compose."""

BROWSER_URLS = {"CHURNLOOP_AIRFLOW_API_URL", "AIRFLOW__API__BASE_URL"}
"""URLs a person opens from the host: they name a published port, not a service."""

BUCKET_INIT = "seaweedfs-init"
S3_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings must come from compose alone, not from the shell running the tests."""
    for name in [name for name in os.environ if name.startswith(PREFIX)]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def environment(compose: dict[str, Any], service: str | None = None) -> dict[str, str]:
    """A service's resolved environment; the shared anchor when ``service`` is None."""
    raw = compose[SHARED_ENV] if service is None else compose["services"][service]["environment"]
    where = service or SHARED_ENV
    return {name: resolve(value, f"{where}.{name}") for name, value in raw.items()}


def settings_from(env: dict[str, str]) -> Settings:
    """Settings built from ``env`` alone: the test's own environment must not leak in."""
    fields = {
        name.removeprefix(PREFIX).lower(): value
        for name, value in env.items()
        if name.startswith(PREFIX)
    }
    return Settings.model_validate(fields)


def unknown_settings(env: dict[str, str]) -> list[str]:
    """``CHURNLOOP_*`` names in ``env`` that Settings would ignore (``extra="ignore"``)."""
    return [
        name
        for name in env
        if name.startswith(PREFIX)
        and name.removeprefix(PREFIX).lower() not in Settings.model_fields
    ]


def production_problems(env: dict[str, str]) -> list[str]:
    """What keeps ``env`` from being the production profile; empty when it is one."""
    problems = [
        f"{PREFIX}{name.upper()} is not set"
        for name in PRODUCTION_NEEDS
        if f"{PREFIX}{name.upper()}" not in env
    ]
    settings = settings_from(env)
    checks = {
        "lake_uri is not on S3": settings.lake_uri.startswith("s3://"),
        "landing_uri is not on S3": settings.landing_uri.startswith("s3://"),
        "mlflow_artifact_uri is not on S3": settings.mlflow_artifact_uri.startswith("s3://"),
        "s3_endpoint_url is unset": bool(settings.s3_endpoint_url),
        "mlflow_tracking_uri is not a server": settings.mlflow_tracking_uri.startswith("http"),
        "feast_redis is unset": bool(settings.feast_redis),
        "feast_registry is not PostgreSQL": settings.feast_registry.startswith("postgresql"),
        "serving_admin_token is unset": settings.serving_admin_token is not None,
    }
    return problems + [problem for problem, ok in checks.items() if not ok]


def container_port(service: dict[str, Any]) -> int:
    (mapping,) = service["ports"]
    return int(str(mapping).rsplit(":", 1)[-1])


def published(name: str, service: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    """A service's resolved ``ports`` as (host address or None for all, host port, container
    port); compose's short syntax, ``[ADDRESS:]HOST_PORT:CONTAINER_PORT``."""
    mappings = []
    for mapping in service.get("ports", []):
        assert isinstance(mapping, str), f"{name}: write ports as strings, not {mapping!r}"
        *address, host_port, port = resolve(mapping, f"{name}.ports").rsplit(":", 2)
        mappings.append((address[0] if address else None, host_port, port))
    return mappings


def test_expected_services_exist(compose: dict[str, Any]) -> None:
    missing = EXPECTED_SERVICES - set(compose["services"])
    assert not missing, f"docker-compose.yaml lacks services {sorted(missing)}"


@pytest.mark.parametrize("service", CHURNLOOP_SERVICES)
def test_every_churnloop_variable_names_a_setting(compose: dict[str, Any], service: str) -> None:
    unknown = unknown_settings(environment(compose, service))
    assert not unknown, f"{service}: {unknown} name no field of churnloop.settings.Settings"


def test_a_misspelt_setting_is_caught(compose: dict[str, Any]) -> None:
    env = environment(compose) | {"CHURNLOOP_LAKE_URL": "s3://churnloop/lake"}
    assert unknown_settings(env) == ["CHURNLOOP_LAKE_URL"]


@pytest.mark.parametrize("service", [*AIRFLOW_SERVICES, "model-server"])
def test_services_running_the_loop_get_the_production_profile(
    compose: dict[str, Any], service: str
) -> None:
    assert production_problems(environment(compose, service)) == []


def test_shared_environment_is_the_production_profile(compose: dict[str, Any]) -> None:
    env = environment(compose)
    assert production_problems(env) == []
    settings = settings_from(env)
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"
    assert urlparse(settings.feast_registry).hostname == "postgres"
    assert settings.feast_redis.split(",")[0] == "redis:6379"
    assert settings.s3_endpoint_url == env["MLFLOW_S3_ENDPOINT_URL"]


@pytest.mark.parametrize("needed", PRODUCTION_NEEDS)
def test_removing_a_needed_setting_is_caught(compose: dict[str, Any], needed: str) -> None:
    env = environment(compose)
    del env[f"{PREFIX}{needed.upper()}"]
    assert production_problems(env), f"dropping {needed} went unnoticed"


def test_hostnames_in_urls_are_services(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    for service in CHURNLOOP_SERVICES:
        for name, value in environment(compose, service).items():
            host = urlparse(value).hostname if "://" in value else None
            if host and not value.startswith("s3://") and name not in BROWSER_URLS:
                assert host in services, f"{service}.{name} points at {host}, not a service"


def test_every_database_in_a_url_is_created(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    created = {postgres["environment"]["POSTGRES_DB"]}
    init_sql = compose["configs"]["postgres-databases"]["content"]
    created |= set(re.findall(r"CREATE DATABASE (\w+);", init_sql))
    targets = [config["target"] for config in postgres["configs"]]
    assert all(target.startswith("/docker-entrypoint-initdb.d/") for target in targets)
    used = {
        urlparse(value).path.lstrip("/")
        for service in CHURNLOOP_SERVICES
        for value in environment(compose, service).values()
        if "postgresql" in urlparse(value).scheme
    }
    assert used == {"airflow", "mlflow", "feast"}
    assert used <= created, f"databases {sorted(used - created)} are used but never created"


def test_ports_match_the_settings(compose: dict[str, Any]) -> None:
    services = compose["services"]
    server = services["model-server"]
    served = settings_from(environment(compose, "model-server"))
    clients = settings_from(environment(compose))
    assert container_port(server) == served.serving_port == clients.serving_port
    assert served.serving_host == "0.0.0.0", "the model server must listen beyond loopback"
    assert clients.serving_host == "model-server"
    assert container_port(services["airflow-apiserver"]) == 8080
    assert urlparse(clients.mlflow_tracking_uri).port == container_port(services["mlflow"])
    s3_port = str(urlparse(clients.s3_endpoint_url).port)
    store = services[S3_STORE]
    store_ports = [(host, port) for _, host, port in published(S3_STORE, store)]
    assert (s3_port, s3_port) in store_ports
    assert f"-s3.port={s3_port}" in store["command"], "the store serves S3 elsewhere"
    (probe,) = [arg for arg in store["healthcheck"]["test"] if "://" in arg]
    assert str(urlparse(probe).port) == s3_port, f"the healthcheck probes {probe}"


def test_every_published_port_binds_loopback_by_default(compose: dict[str, Any]) -> None:
    """Postgres, Redis, the S3 API, MLflow, Airflow (admin UI) and the model server are
    reachable from this machine only, unless ``PUBLISH_ADDRESS`` opens them."""
    mappings = {
        f"{name}:{host_port}": address
        for name, service in compose["services"].items()
        for address, host_port, _ in published(name, service)
    }
    assert len(mappings) >= 7, f"expected the seven published ports, found {sorted(mappings)}"
    wide = {where: address for where, address in mappings.items() if address != "127.0.0.1"}
    assert not wide, f"published beyond loopback (address None: all interfaces): {wide}"


def test_monitoring_services_mount_the_repository_configuration_read_only(
    compose: dict[str, Any],
) -> None:
    """``--profile monitoring`` adds Prometheus, Alertmanager and Grafana on pinned images,
    each bind-mounting files of include/observability/ that exist, read-only."""
    services = compose["services"]
    profiled = {name for name, spec in services.items() if "monitoring" in spec.get("profiles", [])}
    assert profiled == {"prometheus", "alertmanager", "grafana"}
    for name in sorted(profiled):
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", services[name]["image"]), name
        binds = [volume.split(":") for volume in services[name]["volumes"] if volume[0] in "./"]
        assert binds, f"{name} mounts no configuration"
        for source, _, mode in binds:
            assert source.startswith("./include/observability/"), f"{name} mounts {source}"
            assert (PROJECT_ROOT / source).exists(), f"{name} mounts {source}: not in the repo"
            assert mode == "ro", f"{name} mounts {source} writable"


def test_the_env_file_of_real_credentials_is_never_committed() -> None:
    """The header recommends ``.env`` for real values: git must ignore it."""
    ignored = subprocess.run(
        ["git", "check-ignore", "--quiet", ".env"], cwd=PROJECT_ROOT, check=False
    )
    assert ignored.returncode == 0, ".env is not in .gitignore"


def test_airflow_runs_celery_on_postgres_and_redis(compose: dict[str, Any]) -> None:
    env = environment(compose, "airflow-scheduler")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert urlparse(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
    module, _, name = env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"].rpartition(".")
    assert module == "churnloop.orchestration.celery_config" and name == "CELERY_CONFIG"
    assert isinstance(getattr(importlib.import_module(module), name), dict)
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        "http://airflow-apiserver:8080/execution/"
    )
    assert env["AIRFLOW__API__BASE_URL"] == env["CHURNLOOP_AIRFLOW_API_URL"]
    assert "airflow-setup" in " ".join(compose["services"]["airflow-init"]["command"])


def test_init_service_creates_the_lake_bucket(compose: dict[str, Any]) -> None:
    """The init service PUTs the bucket at the endpoint the settings name, unless a HEAD
    finds it: a second ``up`` keeps it."""
    init = environment(compose, BUCKET_INIT)
    command = compose["services"][BUCKET_INIT]["command"][0]
    assert '"$${S3_ENDPOINT_URL}/$${CHURNLOOP_BUCKET}"' in command
    assert "s3 --head --output /dev/null 2>/dev/null || s3 --request PUT" in command
    settings = settings_from(environment(compose))
    assert init["S3_ENDPOINT_URL"] == settings.s3_endpoint_url
    bucket = init["CHURNLOOP_BUCKET"]
    for uri in (settings.lake_uri, settings.landing_uri, settings.mlflow_artifact_uri):
        assert urlparse(uri).netloc == bucket, f"{uri} is outside the bucket {bucket!r}"


@pytest.mark.parametrize("service", [BUCKET_INIT, *CHURNLOOP_SERVICES])
def test_the_store_and_its_clients_share_one_identity(
    compose: dict[str, Any], service: str
) -> None:
    """The store takes its identity from the AWS variables the clients sign with, and the
    init service signs the bucket's creation with them too."""
    store = environment(compose, S3_STORE)
    env = environment(compose, service)
    assert {name: env.get(name) for name in S3_CREDENTIALS} == {
        name: store[name] for name in S3_CREDENTIALS
    }


def test_services_using_s3_wait_for_the_bucket(compose: dict[str, Any]) -> None:
    """What reads or writes S3 starts once the bucket exists; airflow-init only migrates
    the metadata database and creates pools."""
    for service in sorted(set(CHURNLOOP_SERVICES) - {"airflow-init"}):
        rule = compose["services"][service]["depends_on"].get(BUCKET_INIT)
        assert rule == {"condition": "service_completed_successfully"}, service


def test_credentials_are_overridable_defaults(compose: dict[str, Any]) -> None:
    """A password, key or token is always ``${VAR:-dev default}``, never a bare literal."""
    secret = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET")
    envs = {SHARED_ENV: compose[SHARED_ENV]}
    envs |= {name: spec.get("environment", {}) for name, spec in compose["services"].items()}
    for where, env in envs.items():
        for name, value in env.items():
            if secret.search(name) and not name.endswith("_FILE"):
                assert str(value).startswith("${"), f"{where}.{name} is a literal credential"


def test_healthchecks_gate_the_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, spec in services.items():
        for dependency, rule in spec.get("depends_on", {}).items():
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits on {dependency}"
    assert services["airflow-scheduler"]["depends_on"]["airflow-init"]["condition"] == (
        "service_completed_successfully"
    )


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), rest)
        for word, _, rest in (line.partition(" ") for line in lines)
        if word and not word.startswith("#")
    ]


def test_dockerfile_builds_a_locked_non_root_image() -> None:
    instructions = dockerfile_instructions(DOCKERFILE)
    assert ("FROM", "python:3.11-slim") in instructions
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in {"root", "0"}, "the image must run as a non-root user"
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert "uv sync --frozen --no-dev" in runs
    copied = " ".join(rest for word, rest in instructions if word == "COPY")
    for folder in ("dags/", "plugins/", "include/", "feature_repo/", "great_expectations/"):
        assert folder in copied, f"the image lacks {folder}"
    assert copied.index("uv.lock") < copied.index("include/"), "copy the lock first (caching)"


def test_the_locked_image_holds_the_executor_compose_asks_for() -> None:
    """CeleryExecutor is only loadable when its provider is in the lock the image installs."""
    lock = (Path(__file__).resolve().parents[1] / "uv.lock").read_text()
    assert 'name = "apache-airflow-providers-celery"' in lock
