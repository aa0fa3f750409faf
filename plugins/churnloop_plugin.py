"""The churnloop Airflow plugin: links from tasks to the reports that explain them.

A "Report" extra link on every task that published one (failed tasks too), the lake's
``reports/`` served under ``/churnloop/reports/`` in both profiles, menu entries for
Data Docs and drift reports, and the deadline reference of customer_data's Deadline Alert
(the scheduler evaluates it).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

from churnloop.links import PLUGIN_MOUNT, in_this_ui
from churnloop.orchestration.deadlines import ScheduledDayEnd
from churnloop.orchestration.report_app import create_report_app
from churnloop.orchestration.task_support import REPORT_LINK_KEY


class ReportLink(BaseOperatorLink):
    """The report a task published under ``REPORT_LINK_KEY``, on the UI that shows it;
    empty when it published none."""

    name = "Report"

    def get_link(self, operator, *, ti_key) -> str:
        from airflow.serialization.definitions.operatorlink import XComOperatorLink

        published = XComOperatorLink(name=self.name, xcom_key=REPORT_LINK_KEY).get_link(
            operator, ti_key=ti_key
        )
        return in_this_ui(published) if published else published


class ChurnloopPlugin(AirflowPlugin):
    name = "churnloop"
    global_operator_extra_links = [ReportLink()]
    deadline_references = [ScheduledDayEnd]
    fastapi_apps = [
        {"name": "churnloop-reports", "app": create_report_app(), "url_prefix": PLUGIN_MOUNT}
    ]
    external_views = [
        {
            "name": "Data Docs",
            "href": f"{PLUGIN_MOUNT}/reports/data_docs/index.html",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "Drift reports",
            "href": f"{PLUGIN_MOUNT}/reports/drift/",
            "destination": "nav",
            "category": "browse",
        },
    ]
