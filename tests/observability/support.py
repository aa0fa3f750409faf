"""The monitoring configuration of include/observability/ as the tests read it, and the
Prometheus tools they run: Debian's ``prometheus`` and ``prometheus-alertmanager`` packages,
which ``make test`` installs. A missing tool skips naming it (fails under ``CI=true``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from churnloop.settings import PROJECT_ROOT
from tests.service_support import service_missing

OBSERVABILITY = PROJECT_ROOT / "include" / "observability"
PROMETHEUS_CONFIG = OBSERVABILITY / "prometheus.yml"
RULES = OBSERVABILITY / "rules.yml"
RULES_TEST = OBSERVABILITY / "rules_test.yml"
ALERTMANAGER_CONFIG = OBSERVABILITY / "alertmanager.yml"
GRAFANA = OBSERVABILITY / "grafana"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "churnloop.yml"
DASHBOARDS = GRAFANA / "dashboards"
RUNBOOK = PROJECT_ROOT / "docs" / "observability.md"
JOB = "churnloop-model-server"

PROMTOOL = ("prometheus", "promtool")
AMTOOL = ("prometheus-alertmanager", "amtool")
PROMETHEUS = ("prometheus", "prometheus")
ALERTMANAGER = ("prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
"""Arguments of `tool`: the Debian package, then the names the program goes by."""


def tool(package: str, *names: str) -> str:
    """The first of ``names`` found on PATH (Debian calls Alertmanager's server
    ``prometheus-alertmanager``, upstream ``alertmanager``)."""
    found = next(filter(None, map(shutil.which, names)), None)
    if found is None:
        service_missing(
            names[0], f"no `{names[0]}` on PATH (Debian's {package}, `make test` installs it)"
        )
    return found


def run_tool(command: list[str], cwd: Path = OBSERVABILITY) -> str:
    """Run a check; its output is the assertion message when it fails."""
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output}"
    return output


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def docs_url() -> str:
    """Where the runbooks are published: prometheus.yml's external label ``docs_url``."""
    return load_yaml(PROMETHEUS_CONFIG)["global"]["external_labels"]["docs_url"]


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target of every dashboard."""
    return [
        (f"{name}: {panel['title']} ({target['refId']})", target["expr"])
        for name, dashboard in dashboards().items()
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def heading_anchors(markdown: str) -> set[str]:
    """The anchors a Markdown renderer (GitHub's rule) gives the page's headings."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}
