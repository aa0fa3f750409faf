"""docs/kubernetes.md agrees with the manifests, the settings, compose and the image.

The page's marked blocks are parsed: the Secret it has users create holds the keys the
model server's Deployment references, and its Helm values give Airflow's containers
compose's settings (credentials only through Secrets), compose's Airflow configuration,
the image's paths and the locked Airflow version.
"""

from __future__ import annotations

import re
import textwrap
import tomllib
from typing import Any

import pytest
import yaml

from churnloop.settings import PROJECT_ROOT
from tests.compose_support import load_compose
from tests.docs.test_adding_a_task import EXAMPLE
from tests.kubernetes.test_model_server_manifests import (
    MANIFESTS,
    NAME,
    is_credential,
    secret_references,
)
from tests.test_docker_compose import DOCKERFILE, environment, unknown_settings

PAGE = PROJECT_ROOT / "docs" / "kubernetes.md"


def example(name: str) -> str:
    """The body of the page's code block marked ``<!-- example: name -->``."""
    found = {match["name"]: match["body"] for match in EXAMPLE.finditer(PAGE.read_text())}
    assert name in found, f"{PAGE.name} has no block marked <!-- example: {name} -->"
    return textwrap.dedent(found[name])


def manifest(file: str) -> dict[str, Any]:
    (resource,) = yaml.safe_load_all((MANIFESTS / file).read_text())
    return resource


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load(example("helm-values"))


def test_every_churnloop_variable_on_the_page_names_a_setting() -> None:
    names = set(re.findall(r"\bCHURNLOOP_[A-Z0-9_]+", PAGE.read_text()))
    assert names, f"{PAGE.name} names no setting"
    unknown = unknown_settings(dict.fromkeys(names, ""))
    assert not unknown, f"{PAGE.name}: {unknown} name no field of churnloop.settings.Settings"


def test_the_secret_the_page_creates_holds_the_keys_the_deployment_needs() -> None:
    command = example("model-server-secret")
    assert f"kubectl create secret generic {NAME} " in command
    (container,) = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    needed = {key for secret, key in secret_references(container).values() if secret == NAME}
    assert sorted(re.findall(r"--from-literal=(\w+)=", command)) == sorted(needed)


def test_helm_values_give_airflow_composes_settings(values: dict[str, Any]) -> None:
    """Compose's shared environment with credentials left to the model server's Secret,
    and the deploy step pointed at the Service that reaches pods before they are ready."""
    env = {variable["name"]: variable["value"] for variable in values["env"]}
    shared = environment(load_compose())
    plain = {name for name, value in shared.items() if not is_credential(name, value)}
    assert not plain - set(env), f"compose's tasks also get {sorted(plain - set(env))}"
    assert not [name for name, value in env.items() if is_credential(name, value)]
    secrets = [source["secretRef"]["name"] for source in yaml.safe_load(values["extraEnvFrom"])]
    assert NAME in secrets
    deploy_service = manifest("service-deploy.yaml")
    assert env["CHURNLOOP_SERVING_HOST"] == deploy_service["metadata"]["name"]
    assert int(env["CHURNLOOP_SERVING_PORT"]) == deploy_service["spec"]["ports"][0]["port"]
    assert values["config"]["api"]["base_url"] == env["CHURNLOOP_AIRFLOW_API_URL"]


def test_helm_values_run_composes_airflow_on_the_image(values: dict[str, Any]) -> None:
    airflow = environment(load_compose(), "airflow-scheduler")
    core, celery = values["config"]["core"], values["config"]["celery"]
    assert values["executor"] == airflow["AIRFLOW__CORE__EXECUTOR"]
    assert core["dags_folder"] == airflow["AIRFLOW__CORE__DAGS_FOLDER"]
    assert core["plugins_folder"] == airflow["AIRFLOW__CORE__PLUGINS_FOLDER"]
    assert celery["celery_config_options"] == airflow["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"]
    (home,) = re.findall(r"\bAIRFLOW_HOME=(\S+)", DOCKERFILE.read_text())
    assert values["airflowHome"] == home, "the chart mounts airflow.cfg and logs there"
    lock = tomllib.loads((PROJECT_ROOT / "uv.lock").read_text())
    (locked,) = [
        package["version"] for package in lock["package"] if package["name"] == "apache-airflow"
    ]
    assert values["airflowVersion"] == locked
