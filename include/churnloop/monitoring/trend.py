"""Drift over time: every checked day's record kept, and one page that shows the trend.

A day's report says what that day looked like; on-call also needs to see whether a column
has been creeping for a week or jumped today, and whether the model's estimated and
realized ROC AUC follow. Each check saves its record beside its report
(``reports/drift/dt=DAY/day.json``) and rebuilds ``reports/drift/trend.html`` from all of them.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from html import escape
from typing import Any

from matplotlib.figure import Figure

from churnloop import storage
from churnloop.monitoring.report import REPORT_DATASET
from churnloop.settings import Settings

TREND_PAGE = f"{REPORT_DATASET}/trend.html"
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
    """The share of drifted columns and the prediction PSI per day, as an inline PNG."""
    days = [dt.date.fromisoformat(record["day"]) for record in records]
    figure = Figure(figsize=(9, 3.2), layout="constrained")
    axes = figure.subplots()
    shares = [len(r["drifted_columns"]) / max(len(r["scores"]), 1) for r in records]
    axes.plot(days, shares, marker="o", label="share of columns drifted")
    axes.plot(days, [r["prediction_psi"] for r in records], marker="s", label="prediction PSI")
    triggered = [day for day, record in zip(days, records, strict=True) if record["triggered"]]
    for day in triggered:
        axes.axvline(day, color="tab:red", alpha=0.25)
    axes.set_title("Daily drift signals (red lines: a reason to retrain)")
    axes.legend(loc="upper left")
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="daily drift signals" src="data:image/png;base64,{encoded}">'


def _days_table(records: list[dict[str, Any]]) -> str:
    header = ["day", "champion", "rows", "drifted columns", "prediction PSI", "decision"]
    rows = []
    for record in reversed(records):
        link = f'<a href="dt={escape(record["day"])}/report.html">{escape(record["day"])}</a>'
        drifted = ", ".join(record["drifted_columns"]) or "none"
        rows.append(
            f'<tr><td class="text">{link}</td><td>v{int(record["champion_version"])}</td>'
            f'<td>{int(record["current_rows"]):,}</td><td class="text">{escape(drifted)}</td>'
            f"<td>{float(record['prediction_psi']):.3f}</td>"
            f'<td class="text">{escape(_decision(record))}</td></tr>'
        )
    return _table(header, rows)


def _decision(record: dict[str, Any]) -> str:
    if not record["triggered"]:
        return "no reason to retrain"
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
            cells.append(f"<td{marked}>{'-' if score is None else f'{score:.3f}'}</td>")
        rows.append(f'<tr><td class="text">{escape(column)}</td>{"".join(cells)}</tr>')
    return "<h2>Column scores per day</h2>" + _table(header, rows)


def _shown_columns(records: list[dict[str, Any]]) -> list[str]:
    drifted = {column for record in records for column in record["drifted_columns"]}
    highest: dict[str, float] = {}
    for record in records:
        for column, score in record["scores"].items():
            highest[column] = max(highest.get(column, score), score)
    ranked = sorted(highest, key=lambda column: (column not in drifted, -highest[column]))
    return ranked[: max(MATRIX_COLUMNS, len(drifted))]


def _table(header: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(str(cell))}</th>" for cell in header)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"
