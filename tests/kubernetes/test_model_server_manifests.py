"""include/kubernetes/model-server/ agrees with Kubernetes, the server, the settings and compose.

No cluster runs here, so each manifest is validated offline by kubernetes-validate, strictly
(an unknown or misspelt field fails), against the Kubernetes versions named below; and the
manifests are checked where they can silently drift from the code: the probes and the scrape
path name routes the server serves, every ``CHURNLOOP_*`` variable names a setting,
credentials arrive only as references to the Secret the user creates, selectors pick the
Deployment's pods, and the image, command, user and port are those of compose's model server.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml
from fastapi.routing import APIRoute

from churnloop.serving.app import create_app
from churnloop.settings import PROJECT_ROOT, Settings
from tests.compose_support import load_compose, resolve
from tests.reliability.test_secrets import SECRET_NAME
from tests.test_docker_compose import (
    DOCKERFILE,
    _no_outside_settings,  # noqa: F401 (autouse: settings come from the manifests alone)
    environment,
    production_problems,
    settings_from,
    unknown_settings,
)

MANIFESTS = PROJECT_ROOT / "include" / "kubernetes" / "model-server"
KUSTOMIZATION = "kustomization.yaml"
KUBERNETES_VERSIONS = ("1.33", "1.37")
"""The oldest release the manifests are for (every API they use is GA there) and the newest
whose schemas kubernetes-validate bundles."""

NAME = "churnloop-model-server"
"""The Deployment, its ConfigMap, the traffic Service, the autoscaler, the disruption budget,
and the Secret the user creates."""
COMPOSE_SERVICE = "model-server"
READ_BY_AIRFLOW_ONLY = {
    "CHURNLOOP_AIRFLOW_API_URL",
    "CHURNLOOP_FEAST_POOL_SLOTS",
    "CHURNLOOP_REQUIRE_KNOWN_COMMIT",
}
"""Compose gives them to every churnloop service; only Airflow and its tasks read them."""


def manifest_files() -> list[Path]:
    return sorted(path for path in MANIFESTS.glob("*.yaml") if path.name != KUSTOMIZATION)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def resources() -> dict[tuple[str, str], dict[str, Any]]:
    """Every resource of the folder, by (kind, name)."""
    return {
        (resource["kind"], resource["metadata"]["name"]): resource
        for path in manifest_files()
        for resource in yaml.safe_load_all(path.read_text())
    }


@pytest.fixture(scope="module")
def deployment(resources: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    return resources[("Deployment", NAME)]


@pytest.fixture(scope="module")
def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


@pytest.fixture(scope="module")
def config(resources: dict[tuple[str, str], dict[str, Any]]) -> dict[str, str]:
    return resources[("ConfigMap", NAME)]["data"]


def secret_references(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Variable -> (Secret, key) for each variable the container takes from a Secret."""
    return {
        variable["name"]: (reference["name"], reference["key"])
        for variable in container.get("env", [])
        if (reference := variable.get("valueFrom", {}).get("secretKeyRef"))
    }


def literal_environment(container: dict[str, Any], config: dict[str, str]) -> dict[str, str]:
    """What the pod's environment holds as written: the ConfigMap and literal ``env`` values."""
    literals = {var["name"]: var["value"] for var in container.get("env", []) if "value" in var}
    return config | literals


def is_credential(name: str, value: str) -> bool:
    """A variable holding a secret: its name says so, or its value is a URL with a password."""
    return bool(re.search(SECRET_NAME, name, re.IGNORECASE) or urlparse(value).password)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda path: path.name)
def test_every_manifest_validates_strictly(path: Path, version: str) -> None:
    for resource in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(resource, version, strict=True)


def test_a_misspelt_field_is_refused(deployment: dict[str, Any]) -> None:
    misspelt = yaml.safe_load(yaml.safe_dump(deployment))
    (container,) = misspelt["spec"]["template"]["spec"]["containers"]
    container["readynessProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readynessProbe"):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSIONS[0], strict=True)


def test_the_kustomization_applies_every_manifest() -> None:
    kustomization = yaml.safe_load((MANIFESTS / KUSTOMIZATION).read_text())
    assert sorted(kustomization["resources"]) == [path.name for path in manifest_files()]


def test_probes_and_scrape_name_routes_the_server_serves(
    settings: Settings, deployment: dict[str, Any], container: dict[str, Any]
) -> None:
    """Liveness asks only whether the process answers (/health), readiness whether a model
    is loaded (/ready): a pod waiting for its champion is kept from traffic, not restarted."""
    routes = {
        route.path: route.methods
        for route in create_app(settings).routes
        if isinstance(route, APIRoute)
    }
    kinds = ("startupProbe", "livenessProbe", "readinessProbe")
    probes = {kind: container[kind]["httpGet"] for kind in kinds}
    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startupProbe": "/health",
        "livenessProbe": "/health",
        "readinessProbe": "/ready",
    }
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for kind, probe in probes.items():
        assert "GET" in routes.get(probe["path"], set()), f"{kind}: the server has no GET {probe}"
        assert probe["port"] in ports, f"{kind} probes port {probe['port']!r}, not declared"
    scrape = deployment["spec"]["template"]["metadata"]["annotations"]
    assert scrape["prometheus.io/scrape"] == "true"
    assert "GET" in routes.get(scrape["prometheus.io/path"], set()), f"no route for {scrape}"
    assert int(scrape["prometheus.io/port"]) in ports.values()


def test_every_churnloop_variable_names_a_setting(
    container: dict[str, Any], config: dict[str, str]
) -> None:
    names = [*config, *(variable["name"] for variable in container["env"])]
    unknown = unknown_settings(dict.fromkeys(names, ""))
    assert not unknown, f"{unknown} name no field of churnloop.settings.Settings"


def test_the_pod_gets_what_compose_gives_the_model_server(
    compose: dict[str, Any], container: dict[str, Any], config: dict[str, str]
) -> None:
    given = set(config) | {variable["name"] for variable in container["env"]}
    expected = set(environment(compose, COMPOSE_SERVICE)) - READ_BY_AIRFLOW_ONLY
    assert not expected - given, f"compose's model server gets {sorted(expected - given)} too"


def test_credentials_come_only_from_the_users_secret(
    compose: dict[str, Any],
    resources: dict[tuple[str, str], dict[str, Any]],
    container: dict[str, Any],
    config: dict[str, str],
) -> None:
    """Compose's credentials for the model server reach the pod as references to keys of the
    same names in the Secret; no manifest holds a Secret or a credential's value."""
    credentials = {
        name
        for name, value in environment(compose, COMPOSE_SERVICE).items()
        if is_credential(name, value)
    }
    assert {"CHURNLOOP_SERVING_ADMIN_TOKEN", "CHURNLOOP_FEAST_REGISTRY"} <= credentials
    references = secret_references(container)
    assert {name: references.get(name) for name in credentials} == {
        name: (NAME, name) for name in credentials
    }
    assert not [kind for kind, _ in resources if kind == "Secret"], "a Secret is in the repo"
    written = literal_environment(container, config)
    leaked = sorted(name for name, value in written.items() if is_credential(name, value))
    assert not leaked, f"credentials written into the manifests: {leaked}"


def test_the_pod_environment_is_the_production_profile(
    compose: dict[str, Any],
    resources: dict[tuple[str, str], dict[str, Any]],
    container: dict[str, Any],
    config: dict[str, str],
) -> None:
    """With compose's development credentials standing in for the Secret's values, the
    pod's environment is the production profile, listening beyond loopback on the port the
    container declares and both Services forward."""
    stand_ins = environment(compose, COMPOSE_SERVICE)
    secrets = {name: stand_ins[name] for name in secret_references(container)}
    env = literal_environment(container, config) | secrets
    assert production_problems(env) == []
    settings = settings_from(env)
    assert settings.serving_host == "0.0.0.0", "the server would listen on loopback only"
    (port,) = container["ports"]
    assert port["containerPort"] == settings.serving_port
    services = [resource for (kind, _), resource in resources.items() if kind == "Service"]
    assert len(services) == 2, "expected the traffic Service and the deploy step's"
    for service in services:
        (forwarded,) = service["spec"]["ports"]
        assert forwarded["port"] == settings.serving_port, "clients call serving_url's port"
        assert forwarded["targetPort"] == port["name"]


def test_services_budget_and_autoscaler_act_on_the_deployments_pods(
    resources: dict[tuple[str, str], dict[str, Any]], deployment: dict[str, Any]
) -> None:
    matched = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert matched.items() <= labels.items(), "the Deployment's selector misses its own pods"
    selectors = {
        f"{kind}/{name}": resource["spec"]["selector"]
        for (kind, name), resource in resources.items()
        if kind == "Service"
    }
    selectors["PodDisruptionBudget"] = resources[("PodDisruptionBudget", NAME)]["spec"]["selector"][
        "matchLabels"
    ]
    assert selectors == dict.fromkeys(selectors, matched)
    target = resources[("HorizontalPodAutoscaler", NAME)]["spec"]["scaleTargetRef"]
    assert target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME}


def test_the_autoscaler_owns_the_replica_count(
    resources: dict[tuple[str, str], dict[str, Any]],
    deployment: dict[str, Any],
    container: dict[str, Any],
) -> None:
    """A replica count in the Deployment would reset the autoscaler's at every apply; CPU
    utilization is measured against the request; a drain leaves a pod serving."""
    assert "replicas" not in deployment["spec"]
    assert container["resources"]["requests"]["cpu"]
    autoscaler = resources[("HorizontalPodAutoscaler", NAME)]["spec"]
    budget = resources[("PodDisruptionBudget", NAME)]["spec"]
    assert budget["maxUnavailable"] < autoscaler["minReplicas"]


def test_the_container_is_composes_model_server_as_its_image_user(
    compose: dict[str, Any], deployment: dict[str, Any], container: dict[str, Any]
) -> None:
    served = compose["services"][COMPOSE_SERVICE]
    assert container["image"] == resolve(served["image"], f"{COMPOSE_SERVICE}.image")
    assert container["command"] == served["command"]
    (uid,) = re.findall(r"useradd .*--uid (\d+)", DOCKERFILE.read_text())
    pod = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] and pod["runAsUser"] == int(uid)
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
