"""Drift over time: every checked day's record kept, and one page that shows the trend.

A day's report says what that day looked like; on-call also needs to see whether a column
has been creeping for a week or jumped today, and whether the model's estimated and
realized ROC AUC follow. Each check saves its record beside its report
(``reports/drift/dt=DAY/day.json``) and rebuilds ``reports/drift/index.html`` from all of them.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from html import escape
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from churnloop import storage
from churnloop.links import airflow_run_path, ui_link_from_report
from churnloop.monitoring.report import REPORT_DATASET
from churnloop.schema import LABEL_DELAY_DAYS
from churnloop.settings import Settings

TREND_PAGE = f"{REPORT_DATASET}/index.html"
"""The drift reports' folder page: *Browse -> Drift reports* opens it (a listing before any day)."""
DAY_RECORD = "day.json"
MATRIX_COLUMNS = 12
"""Columns the score matrix shows: every one that drifted, then the highest scores."""
STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "td.drifted{background:#f8d0d0;font-weight:bold}td.text{text-align:left}"
)


def save_day(settings: Settings, day: dt.date, record: dict[str, Any]) -> str:
    """Keep ``day``'s check record beside its report (a re-run replaces it); returns the relpath."""
    relpath = f"{storage.Store.partition(REPORT_DATASET, day)}/{DAY_RECORD}"
    storage.lake(settings).write_bytes(relpath, json.dumps(record, indent=2).encode())
    return relpath


def day_records(settings: Settings) -> list[dict[str, Any]]:
    """Every saved day's record, oldest first."""
    lake = storage.lake(settings)
    paths = [p for p in lake.list_files(REPORT_DATASET) if p.endswith(f"/{DAY_RECORD}")]
    records = [json.loads(lake.read_bytes(path)) for path in paths]
    return sorted(records, key=lambda record: record["day"])


def build_trend(settings: Settings) -> str:
    """Rebuild the trend page from every saved day; returns its relpath."""
    page = render_trend(day_records(settings))
    storage.lake(settings).write_bytes(TREND_PAGE, page.encode())
    return TREND_PAGE


def render_trend(records: list[dict[str, Any]]) -> str:
    """The page: a chart of the daily signals, the days' verdicts, the column scores."""
    first, last = (records[0]["day"], records[-1]["day"]) if records else ("-", "-")
    parts = [
        '<!DOCTYPE html><html><head><meta charset="utf-8">',
        f"<title>Drift trend</title><style>{STYLE}</style></head><body>",
        f"<h1>Drift trend {escape(first)} .. {escape(last)}</h1>",
        f"<p>{len(records)} checked day(s); each day links to its report.</p>",
    ]
    if records:
        parts += [_chart(records), _days_table(records), _score_matrix(records)]
    return "".join([*parts, "</body></html>"])


def _chart(records: list[dict[str, Any]]) -> str:
    """The daily drift signals and the champion's ROC AUC, as an inline PNG."""
    figure = Figure(figsize=(9, 6), layout="constrained")
    signals, aucs = figure.subplots(2, 1, sharex=True)
    _plot_signals(signals, records)
    _plot_aucs(aucs, records)
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="daily drift signals and ROC AUC" src="data:image/png;base64,{encoded}">'


def _plot_signals(axes: Axes, records: list[dict[str, Any]]) -> None:
    """The share of drifted columns and the prediction PSI; red lines: a reason to retrain."""
    days = [_day(record) for record in records]
    shares = [len(r["drifted_columns"]) / max(len(r["scores"]), 1) for r in records]
    axes.plot(days, shares, marker="o", label="share of columns drifted")
    psi = [float("nan") if r["prediction_psi"] is None else r["prediction_psi"] for r in records]
    axes.plot(days, psi, marker="s", label="prediction PSI")
    for record in records:
        if record["triggered"]:
            axes.axvline(_day(record), color="tab:red", alpha=0.25)
    axes.set_title("Daily drift signals (red lines: a reason to retrain)")
    axes.legend(loc="upper left")


def _plot_aucs(axes: Axes, records: list[dict[str, Any]]) -> None:
    """Estimated ROC AUC (with its interval) on each day, realized on the snapshot day its
    labels describe (30 days before they arrived), and the reference's."""
    estimated = [(_day(r), r["estimated_performance"]) for r in records]
    judged = [(day, e["estimate"]) for day, e in estimated if e.get("estimate")]
    if judged:
        days = [day for day, _ in judged]
        axes.plot(days, [i["estimate"] for _, i in judged], marker="o", label="estimated")
        axes.fill_between(
            days, [i["low"] for _, i in judged], [i["high"] for _, i in judged], alpha=0.2
        )
    realized = [
        (_day(r) - dt.timedelta(days=LABEL_DELAY_DAYS), r["realized_performance"]["auc"])
        for r in records
        if (r.get("realized_performance") or {}).get("auc") is not None
    ]
    if realized:
        axes.plot(*zip(*realized, strict=True), marker="s", label="realized (labels 30 days on)")
    references = [e["reference_auc"] for _, e in estimated if e.get("reference_auc")]
    if references:
        axes.axhline(references[-1], color="grey", linestyle="--", label="reference (estimated)")
    axes.set_title("Champion's ROC AUC: estimated before the labels, realized after")
    axes.legend(loc="lower left")


def _day(record: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(record["day"])


def _days_table(records: list[dict[str, Any]]) -> str:
    """Newest first: each day's report, champion, rows, drifted columns, decision and run."""
    header = [
        "day",
        "champion",
        "rows",
        "drifted columns",
        "prediction PSI",
        "decision",
        "Airflow run",
    ]
    rows = []
    for record in reversed(records):
        link = f'<a href="dt={escape(record["day"])}/report.html">{escape(record["day"])}</a>'
        drifted = ", ".join(record["drifted_columns"]) or "none"
        rows.append(
            f'<tr><td class="text">{link}</td><td>v{int(record["champion_version"])}</td>'
            f'<td>{int(record["current_rows"]):,}</td><td class="text">{escape(drifted)}</td>'
            f"<td>{_number(record['prediction_psi'])}</td>"
            f'<td class="text">{escape(_decision(record))}</td>'
            f'<td class="text">{_run_link(record.get("airflow_run_id"))}</td></tr>'
        )
    return _table(header, rows)


def _run_link(run_id: str | None) -> str:
    if not run_id:
        return "-"
    href = ui_link_from_report(TREND_PAGE, airflow_run_path("drift_report", run_id))
    return f'<a href="{escape(href)}">{escape(run_id)}</a>'


def _number(value: float | None) -> str:
    """A score with three decimals; "-" where a side had too few rows to measure one."""
    return "-" if value is None else f"{float(value):.3f}"


def _decision(record: dict[str, Any]) -> str:
    if record.get("decision"):
        return record["decision"]
    if not record["triggered"]:
        harmless = record.get("drift_without_harm")
        return (
            f"drift without estimated harm: {'; '.join(harmless)}"
            if harmless
            else ("no reason to retrain")
        )
    suppressed = record.get("suppressed")
    reasons = "; ".join(record["reasons"])
    return f"{reasons} (not triggered: {suppressed})" if suppressed else f"retrain: {reasons}"


def _score_matrix(records: list[dict[str, Any]]) -> str:
    """Each shown column's score per day; a drifted day's cell is marked."""
    shown = _shown_columns(records)
    header = ["column", *(record["day"][5:] for record in records)]
    rows = []
    for column in shown:
        cells = []
        for record in records:
            score = record["scores"].get(column)
            marked = ' class="drifted"' if column in record["drifted_columns"] else ""
            cells.append(f"<td{marked}>{_number(score)}</td>")
        rows.append(f'<tr><td class="text">{escape(column)}</td>{"".join(cells)}</tr>')
    return "<h2>Column scores per day</h2>" + _table(header, rows)


def _shown_columns(records: list[dict[str, Any]]) -> list[str]:
    drifted = {column for record in records for column in record["drifted_columns"]}
    highest: dict[str, float] = {}
    for record in records:
        for column, score in record["scores"].items():
            measured = -1.0 if score is None else score
            highest[column] = max(highest.get(column, measured), measured)
    ranked = sorted(highest, key=lambda column: (column not in drifted, -highest[column]))
    return ranked[: max(MATRIX_COLUMNS, len(drifted))]


def _table(header: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(str(cell))}</th>" for cell in header)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"
