"""Fixtures of the integration tests: the whole loop on real Airflow components (the
CeleryExecutor on two workers, one of them killed on the way) and the production profile's
services (``airflow_loop``, run once a session), and the browser checks of its UI: Debian's
Chromium, headless, driven by Playwright (which downloads no browser here: ``make test``
installs Debian's ``chromium``; it is launched by path).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from churnloop.demo.airflow_stack import AirflowClient, airflow_stack, free_port
from churnloop.serving.process import running_model_server
from churnloop.settings import get_settings
from tests.integration.celery_support import broker_url, celery_environment, celery_workers
from tests.integration.loop_story import StoryRuns, Timeline, run_story, story_environment
from tests.service_support import (
    S3_ACCESS_KEY,
    S3_BUCKET,
    S3_SECRET_KEY,
    ensure_bucket,
    fresh_database,
    service_missing,
)

CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-dev-shm-usage",  # a small /dev/shm in containers crashes tabs
    "--disable-background-networking",
]
PAGE_TIMEOUT_MS = 60_000
"""A first load of the UI's scripts on a busy 2-core machine can take several seconds."""


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        service_missing("Chromium", "no `chromium` on PATH (`make test` installs Debian's)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def chromium_page(chromium_browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies from another test), closed afterwards."""
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@dataclass(frozen=True)
class Loop:
    client: AirflowClient
    timeline: Timeline
    runs: StoryRuns
    server_url: str
    environment: dict[str, str]
    """What the components run with; a test sets it to look at what they did."""


@pytest.fixture(scope="session")
def airflow_loop(tmp_path_factory, s3_server, mlflow_server, redis_address):
    """The story of ``loop_story`` run once; the components stay up for the checks."""
    workdir = tmp_path_factory.mktemp("airflow-loop")
    timeline = Timeline.ending_with_due_runs()
    tracking_uri, artifact_root = mlflow_server
    ensure_bucket(s3_server)
    prefix = f"s3://{S3_BUCKET}/loop-{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        airflow_db = stack.enter_context(fresh_database("churnloop_airflow"))
        feast_registry = stack.enter_context(fresh_database("churnloop_feast"))
        broker = stack.enter_context(broker_url(redis_address))
        celery_results = stack.enter_context(fresh_database("churnloop_celery"))
        production = {  # the production profile, chosen by these variables alone
            "CHURNLOOP_HOME": str(workdir / "home"),
            "CHURNLOOP_LAKE_URI": f"{prefix}/lake",
            "CHURNLOOP_LANDING_URI": f"{prefix}/landing",
            "CHURNLOOP_S3_ENDPOINT_URL": s3_server,
            "CHURNLOOP_MLFLOW_TRACKING_URI": tracking_uri,
            "CHURNLOOP_MLFLOW_ARTIFACT_URI": artifact_root,
            "CHURNLOOP_MLFLOW_EXPERIMENT": f"loop-{uuid.uuid4().hex[:8]}",
            "CHURNLOOP_MODEL_NAME": f"churn-loop-{uuid.uuid4().hex[:8]}",
            "CHURNLOOP_FEAST_REDIS": redis_address,
            "CHURNLOOP_FEAST_REGISTRY": feast_registry,
            "CHURNLOOP_FEAST_PROJECT": f"churnloop_loop_{uuid.uuid4().hex[:8]}",
            "MLFLOW_S3_ENDPOINT_URL": s3_server,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AIRFLOW_HOME": str(workdir / "airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
            **celery_environment(broker, celery_results),
        }
        environment = {**production, **story_environment(timeline, free_port())}
        with pytest.MonkeyPatch.context() as patch:  # the processes started here keep it
            for name, value in environment.items():
                patch.setenv(name, value)
            server_url = stack.enter_context(running_model_server(get_settings()))
            client = stack.enter_context(
                airflow_stack(
                    get_settings(), workdir / "logs", say=print, celery_workers=celery_workers()
                )
            )
            stack.callback(_remove_online_rows, environment)
            runs = run_story(client, timeline)
        yield Loop(client, timeline, runs, server_url, environment)


def _remove_online_rows(environment: dict[str, str]) -> None:
    from churnloop.features.feast_config import feature_store

    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        feature_store(get_settings()).teardown()


@dataclass(frozen=True)
class AirflowUI:
    base_url: str
    username: str
    password: str
    failed_validation: tuple[str, str, str]


@pytest.fixture(scope="session")
def airflow_ui(chromium_browser: Browser, airflow_loop: Loop) -> AirflowUI:
    """The running loop's UI, with the broken day's failed validation to follow.

    Asks for the browser first, so a missing Chromium skips before the loop starts."""
    login = airflow_loop.client.login
    broken = airflow_loop.timeline.day(airflow_loop.timeline.broken)
    (run,) = [
        run
        for run in airflow_loop.runs.customer_data
        if run["logical_date"].startswith(broken.isoformat())
    ]
    failed = ("customer_data", run["dag_run_id"], "validate_snapshots")
    return AirflowUI(login.base_url, login.username, login.password, failed)
