"""``churnloop mlflow-ui`` (``make mlflow``): MLflow's UI on the settings' own store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from churnloop import registry
from churnloop.cli import main
from churnloop.processes import stop_process_group
from churnloop.settings import Settings
from tests.churnloop.serving_support import wait_for
from tests.service_support import free_port


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
    assert server.poll() is None, f"mlflow-ui exited:\n{log.read_text()[-3000:]}"
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
