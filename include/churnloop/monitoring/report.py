"""The drift report people read: Evidently's charts under our verdict, saved in the lake.

The verdict (`effect_sizes.compute_drift` on all rows) heads the page; Evidently draws the
per-column distributions on a seeded sample of ``drift_report_sample_rows`` rows per side.
Values from the data (categories from the prediction log) stay text: the verdict escapes
them as HTML, and Evidently's data block is re-encoded so none can end its ``<script>``.
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
_DATA_BLOCK_START = re.compile(r"<script>\s*var (?P<name>metric_[0-9a-f]+) = ")
"""Where Evidently's standalone page embeds the report's data (two JSON values)."""
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
"""Characters a JSON string inside ``<script>`` must not hold raw (``</script>``, ``<!--``)."""
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
        page = _script_safe_page(snapshot.get_html_str(as_iframe=False))
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


def _script_safe_page(page: str) -> str:
    """Evidently's page with its data block re-encoded so no value can end the script.

    Evidently writes the report's data into a ``<script>`` with ``json.dumps``, which keeps
    ``<`` as is: a category ``</script><script>...`` would close the block and run as
    markup. Both JSON values are read back with a JSON decoder (which reads that text as a
    string, wherever it stands) and written again with ``<``, ``>`` and ``&`` as ``\\u``
    escapes, which JavaScript reads as the same characters. A page of another layout is
    refused rather than published unchecked.
    """
    decoder = json.JSONDecoder()
    start = _DATA_BLOCK_START.search(page)
    if start is None:
        raise RuntimeError("Evidently's page has no data block where expected: check its layout")
    name = start["name"]
    dashboard, end = decoder.raw_decode(page, start.end())
    graphs_start = re.compile(rf";\s*var additional_graphs_{name} = ").match(page, end)
    if graphs_start is None:
        raise RuntimeError(f"Evidently's data block for {name} changed layout: check it")
    graphs, end = decoder.raw_decode(page, graphs_start.end())
    block_end = re.compile(r";\s*</script>").match(page, end)
    if block_end is None:
        raise RuntimeError(f"Evidently's data block for {name} does not end where expected")
    block = (
        f"<script>\nvar {name} = {_script_json(dashboard)};\n"
        f"var additional_graphs_{name} = {_script_json(graphs)};\n</script>"
    )
    return page[: start.start()] + block + page[block_end.end() :]


def _script_json(value: Any) -> str:
    """``value`` as JSON that holds no ``<``, ``>`` or ``&`` (JavaScript reads it unchanged)."""
    text = json.dumps(value)
    for character, escape in _SCRIPT_UNSAFE.items():
        text = text.replace(character, escape)
    return text


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
