"""The drift report people read: Evidently's charts under our verdict, saved in the lake.

The verdict (`effect_sizes.compute_drift` on all rows) heads the page; Evidently draws the
per-column distributions on a seeded sample of ``drift_report_sample_rows`` rows per side.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report, Run
from evidently.presets import DataDriftPreset

from churnloop import storage
from churnloop.links import REPORTS_PREFIX
from churnloop.monitoring.effect_sizes import DriftResult
from churnloop.settings import Settings, get_settings

REPORT_DATASET = f"{REPORTS_PREFIX}/drift"
SAMPLE_SEED = 0
"""Seed of the HTML sample: a re-run of a day draws the same rows."""
EMPTY_PAGE = '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body></body></html>'
"""The page when Evidently has no column to chart: the verdict's block alone."""


@dataclass(frozen=True)
class DriftReport:
    """The report of one comparison: a standalone HTML page and its JSON record."""

    html: str
    json: dict[str, Any]


def build_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    result: DriftResult,
    *,
    title: str,
    notes: list[str],
    sample_rows: int | None = None,
) -> DriftReport:
    """Render ``result`` (computed on these frames) and Evidently's drift preset.

    ``notes`` are shown under the title, e.g. where the current data came from.
    ``sample_rows`` defaults to the ``drift_report_sample_rows`` setting.
    """
    if sample_rows is None:
        sample_rows = get_settings().drift_report_sample_rows
    notes = list(notes)
    reference_sample = _sample(reference, sample_rows)
    current_sample = _sample(current, sample_rows)
    if len(reference_sample) < len(reference) or len(current_sample) < len(current):
        notes.append(
            f"Evidently's charts use a seeded sample of {len(reference_sample):,} of "
            f"{len(reference):,} reference rows and {len(current_sample):,} of "
            f"{len(current):,} current rows; the verdict above uses all rows."
        )
    charted, uncharted = _chartable(result, reference_sample, current_sample)
    if uncharted:
        notes.append(
            f"Not charted by Evidently (no values in a sample): {', '.join(uncharted)}; "
            "see the verdict's table."
        )
    page, evidently = EMPTY_PAGE, None
    if charted:
        notes.append(
            "Evidently compares present values only (missing shares are in the verdict's "
            "table), so its scores may differ slightly from the verdict's."
        )
        if any(result.column(column).method == "psi" for column in charted):
            notes.append(
                "Evidently's PSI bins are equal-width over both samples; the verdict's are "
                "the reference's quantiles."
            )
        snapshot = _evidently_snapshot(reference_sample, current_sample, result, charted)
        page = snapshot.get_html_str(as_iframe=False)
        evidently = {
            "reference_rows": len(reference_sample),
            "current_rows": len(current_sample),
            **json.loads(snapshot.json()),
        }
    record = {"title": title, "notes": notes, "drift": result.to_dict(), "evidently": evidently}
    header = _verdict_html(title, notes, result)
    page, inserted = re.subn(r"<body[^>]*>", lambda match: match.group(0) + header, page, count=1)
    return DriftReport(html=page if inserted else header + page, json=record)


def save_report(settings: Settings, day: dt.date, report: DriftReport) -> dict[str, str]:
    """Write the day's ``report.html`` and ``report.json`` into the lake; returns relpaths.

    Each object is written atomically and a re-run of the day replaces both. The JSON
    goes last, so a reader that finds it also finds the page it describes.
    """
    lake = storage.lake(settings)
    folder = lake.partition(REPORT_DATASET, day)
    relpaths = {"html": f"{folder}/report.html", "json": f"{folder}/report.json"}
    lake.write_bytes(relpaths["html"], report.html.encode())
    lake.write_bytes(relpaths["json"], json.dumps(report.json, indent=2).encode())
    return relpaths


def _sample(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    return frame.sample(n=rows, random_state=SAMPLE_SEED) if len(frame) > rows else frame


def _chartable(
    result: DriftResult, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[list[str], list[str]]:
    """Columns Evidently can chart, and those it refuses (all values missing on a side)."""
    charted, uncharted = [], []
    for column in result.column_names:
        empty = reference[column].isna().all() or current[column].isna().all()
        (uncharted if empty else charted).append(column)
    return charted, uncharted


def _evidently_snapshot(
    reference: pd.DataFrame, current: pd.DataFrame, result: DriftResult, columns: list[str]
) -> Run:
    drifts = [result.column(column) for column in columns]
    definition = DataDefinition(
        numerical_columns=[drift.column for drift in drifts if drift.kind == "numeric"],
        categorical_columns=[drift.column for drift in drifts if drift.kind == "categorical"],
    )
    preset = DataDriftPreset(
        columns=columns,
        drift_share=result.share_threshold,
        per_column_method={drift.column: drift.method for drift in drifts},
        per_column_threshold={drift.column: drift.threshold for drift in drifts},
    )
    return Report([preset], include_tests=True).run(
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
    )


def _verdict_html(title: str, notes: list[str], result: DriftResult) -> str:
    """A self-contained block with the verdict on all rows, shown above Evidently's page."""
    escape = html.escape
    rows = "".join(
        f'<tr style="{"color:#b00020;font-weight:bold" if column.drifted else ""}">'
        f"<td>{escape(column.column)}</td><td>{column.kind}</td><td>{column.method}</td>"
        f"<td>{column.score:.4f}</td><td>{column.threshold:g}</td>"
        f"<td>{'drifted' if column.drifted else 'ok'}</td>"
        f"<td>{column.missing_reference:.1%}</td><td>{column.missing_current:.1%}</td></tr>"
        for column in result.columns
    )
    items = "".join(f"<li>{escape(note)}</li>" for note in notes)
    return (
        '<section id="churnloop-drift-verdict" style="font-family:sans-serif;margin:16px">'
        f"<h1>{escape(title)}</h1><p><strong>{escape(result.summary)}</strong></p>"
        f"<ul>{items}</ul>"
        '<table border="1" cellpadding="4" style="border-collapse:collapse">'
        "<tr><th>column</th><th>kind</th><th>method</th><th>score</th><th>threshold</th>"
        "<th>verdict</th><th>missing (reference)</th><th>missing (current)</th></tr>"
        f"{rows}</table></section>"
    )
