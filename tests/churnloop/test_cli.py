"""The ``churnloop`` command: its arguments and help, ``settings``, configuration errors,
``serve``'s address, and ``mlflow-ui`` (``make mlflow``) on the settings' own store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from churnloop import registry
from churnloop.cli import COMMANDS, INTERNAL_COMMANDS, INTERNAL_HEADING, main
from churnloop.demo.breakages import BREAKAGES
from churnloop.demo.simulation import SCENARIOS
from churnloop.processes import stop_process_group
from churnloop.redaction import MASK
from churnloop.settings import Settings, env_variable
from churnloop.validation.ingest import CONTRACTS
from tests.polling import wait_for
from tests.service_support import free_port

PLANTED_PASSWORD = "pl4nted-pw"
ADMIN_TOKEN = "test-admin-token"
PRODUCTION = {
    "CHURNLOOP_LANDING_URI": "s3://churnloop/landing",
    "CHURNLOOP_LAKE_URI": "s3://churnloop/lake",
    "CHURNLOOP_MLFLOW_TRACKING_URI": "http://mlflow:5000",
    "CHURNLOOP_MLFLOW_ARTIFACT_URI": "s3://churnloop/mlflow",
    "CHURNLOOP_FEAST_REGISTRY": f"postgresql+psycopg2://churnloop:{PLANTED_PASSWORD}@pg/feast",
    "CHURNLOOP_FEAST_REDIS": "redis:6379,db=1",
    "CHURNLOOP_SERVING_ADMIN_TOKEN": ADMIN_TOKEN,
}
"""The production profile's locations, as docker-compose.yaml sets them, and its secrets."""


def help_text(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    """``churnloop [command] --help``, its lines joined (argparse wraps at any column)."""
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return " ".join(capsys.readouterr().out.split())


def set_environment(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


# -- arguments and help ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "valid"),
    [
        (["ingest", "orders", "2026-01-01"], CONTRACTS),
        (["validate", "orders", "2026-01-01"], CONTRACTS),
        (["simulate", "--start", "2026-01-01", "--scenario", "sideways"], SCENARIOS),
        (["simulate", "--start", "2026-01-01", "--break", "2026-01-02:melted"], BREAKAGES),
    ],
)
def test_an_unknown_name_is_refused_before_running_listing_the_valid_ones(capsys, argv, valid):
    with pytest.raises(SystemExit) as refused:
        main(argv)
    error = capsys.readouterr().err
    assert refused.value.code == 2
    assert all(name in error for name in valid), error


@pytest.mark.parametrize("command", COMMANDS + INTERNAL_COMMANDS, ids=lambda command: command.name)
def test_help_shows_every_default(capsys, command):
    shown = help_text(capsys, command.name)
    for argument in command.arguments:
        default = argument.options.get("default")
        if default not in (None, []):
            assert f"(default: {default})" in shown, argument.flags


def test_help_lists_user_commands_first_and_internal_ones_last_under_their_heading(capsys):
    shown = help_text(capsys)

    def places(commands):
        return [shown.index(f" {command.name} {command.help}") for command in commands]

    heading = shown.index(f"{INTERNAL_HEADING}:")
    assert places(COMMANDS) == sorted(places(COMMANDS))
    assert places(COMMANDS)[-1] < heading < places(INTERNAL_COMMANDS)[0]
    assert places(INTERNAL_COMMANDS) == sorted(places(INTERNAL_COMMANDS))


# -- churnloop settings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "profile"),
    [
        ({}, "embedded"),
        (PRODUCTION, "production"),
        ({"CHURNLOOP_LAKE_URI": "s3://churnloop/lake"}, "mixed (in services: CHURNLOOP_LAKE_URI)"),
    ],
)
def test_settings_start_with_the_active_profile(
    settings, monkeypatch, capsys, environment, profile
):
    set_environment(monkeypatch, environment)
    assert main(["settings"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"profile: {profile}"


def test_settings_show_every_setting_by_its_variable(settings, monkeypatch, capsys):
    monkeypatch.setenv("CHURNLOOP_LANDING_WAIT_SECONDS", "1234")
    assert main(["settings"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [line.partition("=")[0] for line in lines] == list(
        map(env_variable, Settings.model_fields)
    )
    assert "CHURNLOOP_LANDING_WAIT_SECONDS=1234" in lines


def test_settings_never_show_a_credential(settings, monkeypatch, capsys):
    set_environment(monkeypatch, PRODUCTION)
    assert main(["settings"]) == 0
    text = capsys.readouterr().out
    assert main(["settings", "--json"]) == 0
    as_json = capsys.readouterr().out
    shown = json.loads(as_json)

    for output in (text, as_json):
        assert PLANTED_PASSWORD not in output and ADMIN_TOKEN not in output
    assert shown["profile"] == "production"
    assert shown["settings"]["CHURNLOOP_SERVING_ADMIN_TOKEN"] == MASK
    assert shown["settings"]["CHURNLOOP_FEAST_REGISTRY"] == (
        f"postgresql+psycopg2://churnloop:{MASK}@pg/feast"
    )


# -- configuration errors -------------------------------------------------------------


def test_a_bad_variable_is_named_with_the_value_it_holds(settings, monkeypatch, capsys):
    monkeypatch.setenv("CHURNLOOP_LANDING_WAIT_SECONDS", "abc")
    assert main(["champion-history"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("churnloop champion-history: error: CHURNLOOP_LANDING_WAIT_SECONDS: ")
    assert line.endswith("(got 'abc')")


def test_a_list_variable_that_is_not_json_is_named(settings, monkeypatch, capsys):
    monkeypatch.setenv("CHURNLOOP_DRIFT_SLICE_COLUMNS", "plan,region")
    assert main(["settings"]) == 2
    assert "error: CHURNLOOP_DRIFT_SLICE_COLUMNS: " in capsys.readouterr().err


def test_a_check_across_variables_says_it_all_itself(settings, monkeypatch, capsys):
    monkeypatch.setenv("CHURNLOOP_LANDING_WAIT_SECONDS", "36000")
    monkeypatch.setenv("CHURNLOOP_CUSTOMER_DATA_DEADLINE", "PT9H")
    assert main(["settings"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "churnloop settings: error: CHURNLOOP_CUSTOMER_DATA_DEADLINE (9:00:00) must "
    )


def test_a_credential_in_a_bad_value_is_masked(settings, monkeypatch, capsys):
    monkeypatch.setenv("CHURNLOOP_SERVING_PORT", f"postgresql://churnloop:{PLANTED_PASSWORD}@pg")
    assert main(["settings"]) == 2
    error = capsys.readouterr().err
    assert "CHURNLOOP_SERVING_PORT" in error and PLANTED_PASSWORD not in error


# -- churnloop serve ------------------------------------------------------------------


def test_serve_listens_where_host_and_port_say_rather_than_the_settings(
    settings, monkeypatch, tmp_path
):
    port, log = free_port(), tmp_path / "serve.log"
    monkeypatch.setenv("CHURNLOOP_SERVING_HOST", "192.0.2.1")  # TEST-NET: no local address
    monkeypatch.setenv("CHURNLOOP_SERVING_PORT", str(port + 1))
    command = [sys.executable, "-m", "churnloop.cli", "serve", "--host", "127.0.0.1"]
    with log.open("w") as output:
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(url, server, log), timeout=120, what="churnloop serve")
    finally:
        stop_process_group(server, grace=10)


# -- churnloop mlflow-ui --------------------------------------------------------------


def logged_run(settings: Settings) -> str:
    """A run holding a model card, its experiment under the settings' artifact root, as a
    training run logs it."""
    client = registry.connect(settings)
    location = f"{settings.mlflow_artifact_uri}/{settings.mlflow_experiment}"
    experiment = client.create_experiment(settings.mlflow_experiment, artifact_location=location)
    run_id = client.create_run(experiment).info.run_id
    client.log_text(run_id, "# model card", "model_card.md")
    return run_id


def answers(url: str, server: subprocess.Popen, log: Path) -> bool:
    assert server.poll() is None, f"{server.args} exited:\n{log.read_text()[-3000:]}"
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.slow
def test_the_ui_shows_the_embedded_runs_and_their_artifacts(settings: Settings, tmp_path):
    run_id = logged_run(settings)
    port, log = free_port(), tmp_path / "mlflow-ui.log"
    command = [sys.executable, "-m", "churnloop.cli", "mlflow-ui", "--port", str(port)]
    with log.open("w") as output:
        server = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(url, server, log), timeout=120, what="the MLflow UI")
        run = httpx.get(f"{url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}).json()
        artifact = {"path": "model_card.md", "run_uuid": run_id}
        card = httpx.get(f"{url}/get-artifact", params=artifact)
    finally:
        stop_process_group(server, grace=10)
    assert run["run"]["info"]["artifact_uri"].startswith(settings.mlflow_artifact_uri)
    assert card.text == "# model card"


def test_without_runs_it_says_to_run_the_demo(settings: Settings, capsys):
    assert main(["mlflow-ui"]) == 2
    assert "run `make demo` first" in capsys.readouterr().err
