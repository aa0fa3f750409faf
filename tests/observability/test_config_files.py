"""include/observability/ holds up without a running stack: Prometheus' and Alertmanager's
own checkers accept the files, the rule unit tests pass and cover every alert, every metric
and label a rule or panel names is one the model server exports, and each alert links its
runbook section of docs/observability.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

import pytest
from prometheus_client.metrics import MetricWrapperBase

from churnloop.serving.metrics import ServingMetrics
from churnloop.settings import PROJECT_ROOT
from tests.observability.support import (
    ALERTMANAGER_CONFIG,
    AMTOOL,
    DASHBOARD_PROVIDERS,
    DASHBOARDS,
    DATASOURCES,
    PROMETHEUS_CONFIG,
    PROMTOOL,
    RULES,
    RULES_TEST,
    RUNBOOK,
    alert_rules,
    dashboard_queries,
    dashboards,
    docs_url,
    heading_anchors,
    load_yaml,
    run_tool,
    tool,
)

SEVERITIES = {"critical", "warning"}
TARGET_LABELS = {"job", "instance"}
"""Labels Prometheus adds to every scraped series."""
SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
}
SELECTOR = re.compile(r"\b(churnloop_\w+)(?:\{([^}]*)\})?")
MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
RUNBOOK_URL = re.compile(r"\{\{ \$externalLabels\.docs_url \}\}/(?P<page>[^#]+)#(?P<anchor>.+)")
"""A rule's runbook_url: its page under the external label ``docs_url``, then the anchor."""


# -- the tools' own checks -------------------------------------------------------------------


def test_promtool_accepts_the_prometheus_config_and_its_rule_file():
    output = run_tool([tool(*PROMTOOL), "check", "config", PROMETHEUS_CONFIG.name])
    assert "1 rule files found" in output, output


def test_promtool_accepts_the_rules():
    output = run_tool([tool(*PROMTOOL), "check", "rules", RULES.name])
    assert f"{len(alert_rules())} rules found" in output, output


def test_the_rule_unit_tests_pass():
    run_tool([tool(*PROMTOOL), "test", "rules", RULES_TEST.name])


def test_amtool_accepts_the_alertmanager_config():
    run_tool([tool(*AMTOOL), "check-config", ALERTMANAGER_CONFIG.name])


@pytest.mark.parametrize(
    ("severity", "receiver"), [("critical", "oncall-page"), ("warning", "oncall-email")]
)
def test_critical_alerts_page_and_the_others_mail(severity, receiver):
    """oncall-page mails and calls the webhook; oncall-email only mails."""
    command = [tool(*AMTOOL), "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}"]
    routed = run_tool([*command, f"--verify.receivers={receiver}", f"severity={severity}"])
    assert routed.split()[0] == receiver
    receivers = {item["name"]: item for item in load_yaml(ALERTMANAGER_CONFIG)["receivers"]}
    assert "email_configs" in receivers["oncall-email"]
    assert {"email_configs", "webhook_configs"} <= set(receivers["oncall-page"])


def _keys(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{path}.{key}", value
            yield from _keys(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _keys(value, f"{path}[{index}]")


def test_alertmanager_reads_every_credential_from_a_file():
    secret = re.compile(r"password|secret|token|credentials|api_key", re.IGNORECASE)
    literal = [
        path
        for path, _ in _keys(load_yaml(ALERTMANAGER_CONFIG))
        if secret.search(path.rsplit(".", 1)[-1]) and not path.endswith("_file")
    ]
    assert literal == [], f"credentials written into alertmanager.yml: {literal}"


# -- what the rules say ------------------------------------------------------------------------


def _alert_cases() -> dict[str, list[list[Any]]]:
    """Each alert's ``exp_alerts`` lists in rules_test.yml."""
    cases: dict[str, list[list[Any]]] = {}
    for test in load_yaml(RULES_TEST)["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], []).append(case.get("exp_alerts") or [])
    return cases


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_each_alert_is_unit_tested_firing_and_quiet(rule):
    cases = _alert_cases().get(rule["alert"], [])
    assert any(cases), f"{rule['alert']}: no case in {RULES_TEST.name} expects it to fire"
    assert not all(cases), f"{rule['alert']}: no case in {RULES_TEST.name} expects it quiet"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_each_alert_waits_has_a_severity_and_links_its_runbook(rule):
    name = rule["alert"]
    assert rule.get("for"), f"{name} has no for:"
    assert rule["labels"]["severity"] in SEVERITIES, name
    annotations = rule["annotations"]
    assert annotations["summary"] and annotations["description"], name
    link = RUNBOOK_URL.fullmatch(annotations["runbook_url"])
    assert link, f"{name}: runbook_url {annotations['runbook_url']!r} is not <docs_url>/page#anchor"
    page, anchor = link["page"], link["anchor"]
    assert (RUNBOOK.parent / page) == RUNBOOK, f"{name}: runbook {page} is not {RUNBOOK.name}"
    assert anchor == name.lower(), f"{name}: runbook anchor #{anchor}"
    assert anchor in heading_anchors(RUNBOOK.read_text()), f"{RUNBOOK.name} has no #{anchor}"


def test_runbook_links_are_absolute_and_unit_tested_with_the_configured_docs_url():
    """Alerts reach people outside the repository: a relative link would lead nowhere."""
    address = urlparse(docs_url())
    assert address.scheme == "https" and address.netloc, f"docs_url {docs_url()!r} is not absolute"
    for test in load_yaml(RULES_TEST)["tests"]:
        assert test.get("external_labels") == {"docs_url": docs_url()}, test["name"]


# -- the metrics they name -----------------------------------------------------------------------


def exported_samples() -> dict[str, set[str]]:
    """Each sample name the model server exports, with the label names its series carry
    (read from the metric objects: labelled series exist only once a value was recorded)."""
    samples: dict[str, set[str]] = {}
    for metric in vars(ServingMetrics()).values():
        if isinstance(metric, MetricWrapperBase):
            labels = set(metric._labelnames) | TARGET_LABELS
            for suffix in SAMPLE_SUFFIXES[metric._type]:
                samples[metric._name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return samples


def unknown_names(expression: str, samples: dict[str, set[str]]) -> list[str]:
    """Metrics, label matchers and grouping labels of ``expression`` the server does not export."""
    problems: list[str] = []
    used_labels: set[str] = set()
    for name, matchers in SELECTOR.findall(expression):
        if name not in samples:
            problems.append(f"metric {name}")
            continue
        used_labels |= samples[name]
        problems += [
            f"label {name}{{{label}}}"
            for label in MATCHER.findall(matchers)
            if label not in samples[name]
        ]
    for grouping in GROUPING.findall(expression):
        labels = {label.strip() for label in grouping.split(",")} - used_labels
        problems += [f"grouping label {label}" for label in sorted(labels)]
    return problems


def test_a_renamed_metric_or_label_is_caught():
    samples = exported_samples()
    assert (
        unknown_names('sum by (kind) (rate(churnloop_errors_total{kind="x"}[5m]))', samples) == []
    )
    assert unknown_names("rate(churnloop_error_total[5m])", samples) == [
        "metric churnloop_error_total"
    ]
    assert unknown_names('churnloop_model_version{version="1"}', samples) == [
        "label churnloop_model_version{version}"
    ]
    assert unknown_names("sum by (role) (churnloop_requests_total)", samples) == [
        "grouping label role"
    ]


QUERIES = [(rule["alert"], rule["expr"]) for rule in alert_rules()] + dashboard_queries()


@pytest.mark.parametrize(("where", "expression"), QUERIES, ids=[where for where, _ in QUERIES])
def test_every_metric_a_rule_or_panel_names_is_exported(where, expression):
    assert unknown_names(expression, exported_samples()) == [], where


# -- Grafana provisioning ------------------------------------------------------------------------


def test_every_panel_queries_the_provisioned_prometheus():
    (datasource,) = load_yaml(DATASOURCES)["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090", "the compose service's address"
    for name, dashboard in dashboards().items():
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        for panel in dashboard["panels"]:
            sources = [panel["datasource"]] + [target["datasource"] for target in panel["targets"]]
            assert all(source["uid"] == datasource["uid"] for source in sources), panel["title"]


def _compose_service(name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A docker-compose.yaml service and its bind mounts (repository path: container path)."""
    service = load_yaml(PROJECT_ROOT / "docker-compose.yaml")["services"][name]
    return service, dict(volume.split(":")[:2] for volume in service.get("volumes", []))


def test_prometheus_in_compose_finds_its_rules_the_server_and_alertmanager():
    _, mounts = _compose_service("prometheus")
    config = load_yaml(PROMETHEUS_CONFIG)
    folder = PurePosixPath(mounts[f"./{PROMETHEUS_CONFIG.relative_to(PROJECT_ROOT)}"]).parent
    rules = {str(folder / path) for path in config["rule_files"]}
    assert rules == {mounts[f"./{RULES.relative_to(PROJECT_ROOT)}"]}
    (job,) = config["scrape_configs"]
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    addresses = [
        *job["static_configs"][0]["targets"],
        *alertmanagers["static_configs"][0]["targets"],
    ]
    for address in addresses:
        host, port = address.split(":")
        service, _ = _compose_service(host)
        assert any(mapping.endswith(f":{port}") for mapping in service["ports"]), address


def test_grafana_loads_the_dashboards_where_compose_mounts_them():
    (provider,) = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    _, mounts = _compose_service("grafana")
    assert mounts[f"./{DASHBOARDS.relative_to(PROJECT_ROOT)}"] == provider["options"]["path"]
    assert dashboards(), "no dashboard JSON to provision"
