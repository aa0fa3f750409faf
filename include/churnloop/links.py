"""Browser links to what the loop writes, for extra links in the Airflow UI and logs.

Reports live in the lake (a folder or S3). The Airflow plugin serves the lake's
``reports/`` under ``/churnloop/reports/`` on the Airflow API server, so one URL
works in both profiles and from a failed task's page. A link never carries the
credentials ``airflow_api_url`` may hold (it is printed in logs; a browser logs in).
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

from churnloop.settings import Settings

REPORTS_PREFIX = "reports"
PLUGIN_MOUNT = "/churnloop"


def report_url(settings: Settings, relpath: str) -> str:
    """The URL of a lake object under ``reports/`` as served by the churnloop plugin."""
    relpath = relpath.strip("/")
    if not relpath.startswith(f"{REPORTS_PREFIX}/"):
        raise ValueError(f"only objects under {REPORTS_PREFIX}/ are served, not {relpath!r}")
    base = _without_credentials(settings.airflow_api_url.rstrip("/"))
    return f"{base}{PLUGIN_MOUNT}/{quote(relpath)}"


def in_this_ui(url: str) -> str:
    """``url`` as a path on the UI that shows it, when it is a churnloop report link.

    A link recorded by another API server (the demo's, on a port of its own) still opens
    where it is read; any other URL is returned as it is.
    """
    parts = urlsplit(url)
    if not parts.path.startswith(f"{PLUGIN_MOUNT}/{REPORTS_PREFIX}/"):
        return url
    return urlunsplit(("", "", parts.path, parts.query, parts.fragment))


def ui_link_from_report(report_relpath: str, ui_path: str) -> str:
    """A link from a report page (served under the plugin) to ``ui_path`` of the Airflow UI
    (e.g. ``dags/drift_report/runs/<run id>``), relative so that it opens on the UI, and
    under the base path, that shows the report."""
    depth = report_relpath.strip("/").count("/") + PLUGIN_MOUNT.strip("/").count("/") + 1
    return "../" * depth + ui_path.lstrip("/")


def airflow_run_path(dag_id: str, run_id: str) -> str:
    """The Airflow UI's page of one DAG run."""
    return f"dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def _without_credentials(url: str) -> str:
    """``url`` without the ``user:password@`` of its authority."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
