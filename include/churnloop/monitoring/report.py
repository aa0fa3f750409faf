"""The drift report people read: our verdict on top, Evidently's charts under it, in the lake.

The verdict (`effect_sizes.compute_drift` on all rows: effect size, test, rows per side and
"drifted", "stable" or "insufficient data" per column) heads the page, with the drifted
slices (`slice_drift`) when given. Evidently draws the per-column distributions on a seeded
sample of ``drift_report_sample_rows`` rows per side; its own drift flags use the effect
size alone, so the page names every column where they contradict the verdict. Values from
the data (categories from the prediction log) stay text: the verdict escapes them as HTML,
and Evidently's data block is re-encoded so none can end its ``<script>``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report, Run
from evidently.presets import DataDriftPreset

from churnloop import storage
from churnloop.links import REPORTS_PREFIX
from churnloop.monitoring.effect_sizes import DRIFTED, INSUFFICIENT, ColumnDrift, DriftResult
from churnloop.monitoring.slice_drift import SliceDriftResult
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
    decision: str | None = None,
    sample_rows: int | None = None,
    slices: SliceDriftResult | None = None,
) -> DriftReport:
    """Render ``result`` (computed on these frames), ``slices`` and Evidently's drift preset.

    ``decision`` (retrain or not, and why) opens the page, under the title; ``notes`` follow,
    e.g. where the current data came from. The title is also the page's ``<title>``.
    ``sample_rows`` defaults to the ``drift_report_sample_rows`` setting. With too few rows
    for a verdict, Evidently is not run: its charts would show noise as drift.
    """
    if sample_rows is None:
        sample_rows = get_settings().drift_report_sample_rows
    if result.insufficient_data:
        page, evidently = EMPTY_PAGE, None
        about_evidently = ["Too few rows for a verdict: Evidently's charts are left out."]
    else:
        page, evidently, about_evidently = _evidently_part(reference, current, result, sample_rows)
    record = {
        "title": title,
        "decision": decision,
        "notes": list(notes),
        "drift": result.to_dict(),
        "slices": None if slices is None else slices.to_dict(),
        "about_evidently": about_evidently,
        "evidently": evidently,
    }
    header = _verdict_html(title, decision, notes, result, slices, about_evidently)
    page, inserted = re.subn(r"<body[^>]*>", lambda match: match.group(0) + header, page, count=1)
    return DriftReport(html=_titled(page if inserted else header + page, title), json=record)


def _titled(page: str, title: str) -> str:
    """The page with ``title`` as its ``<title>``: Evidently's replaced, else one added to
    the head (never before the doctype, which would put browsers in quirks mode)."""
    tag = f"<title>{escape(title)}</title>"
    page, replaced = re.subn(r"<title>.*?</title>", lambda _: tag, page, count=1, flags=re.S)
    if replaced:
        return page
    page, added = re.subn(r"<head[^>]*>", lambda match: match.group(0) + tag, page, count=1)
    return page if added else tag + page


def _evidently_part(
    reference: pd.DataFrame, current: pd.DataFrame, result: DriftResult, sample_rows: int
) -> tuple[str, dict[str, Any] | None, list[str]]:
    """Evidently's page and record on a sample, and what a reader must know about them."""
    reference_sample = _sample(reference, sample_rows)
    current_sample = _sample(current, sample_rows)
    notes = []
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
    if not charted:
        return EMPTY_PAGE, None, notes
    notes.append(
        "Evidently flags a column when its score reaches the threshold, on its sample and "
        "present values only; the verdict above also asks a test to reject (Holm-corrected) "
        "and decides where the two differ."
    )
    if any(result.column(column).method == "psi" for column in charted):
        notes.append(
            "Evidently's PSI bins are equal-width over both samples; the verdict's are the "
            "reference's quantiles, with point masses and values outside its range apart."
        )
    snapshot = _evidently_snapshot(reference_sample, current_sample, result, charted)
    evidently = {
        "reference_rows": len(reference_sample),
        "current_rows": len(current_sample),
        **json.loads(snapshot.json()),
    }
    notes.append(_agreement(result, evidently))
    return _script_safe_page(snapshot.get_html_str(as_iframe=False)), evidently, notes


def _agreement(result: DriftResult, evidently: dict[str, Any]) -> str:
    """Where Evidently's own drift flags (its tests) contradict the verdict, named."""
    flags, dataset_flag = {}, None
    for test in evidently["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith(":ValueDrift"):
            flags[params["column"]] = test["status"] == "FAIL"
        elif params["type"].endswith(":DriftedColumnsCount"):
            dataset_flag = test["status"] == "FAIL"
    differences = [
        f"{column} (Evidently: {'drift' if flag else 'no drift'}, verdict: "
        f"{result.column(column).status})"
        for column, flag in flags.items()
        if flag != result.column(column).drifted
    ]
    if dataset_flag is not None and dataset_flag != result.dataset_drift:
        differences.append(
            f"the dataset (Evidently: {'drift' if dataset_flag else 'no drift'}, verdict: "
            f"{'drift' if result.dataset_drift else 'no drift'})"
        )
    if not differences:
        return "Evidently's drift flags below agree with the verdict."
    return (
        f"Evidently's drift flags below differ from the verdict on {len(differences)}: "
        f"{'; '.join(differences)}. The verdict above holds."
    )


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
    """Judged columns Evidently can chart, and those it refuses (no values on a side)."""
    charted, uncharted = [], []
    for column in result.judged_columns:
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
    # Evidently's correlation matrix divides by each column's spread: a column constant in a
    # sample (a day's flag, a young history) logs a RuntimeWarning per run and charts NaN.
    with np.errstate(invalid="ignore", divide="ignore"):
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
    for character, replacement in _SCRIPT_UNSAFE.items():
        text = text.replace(character, replacement)
    return text


def _verdict_html(
    title: str,
    decision: str | None,
    notes: list[str],
    result: DriftResult,
    slices: SliceDriftResult | None,
    about_evidently: list[str],
) -> str:
    """A self-contained block with the verdict on all rows, shown above Evidently's page."""
    opening = (
        f'<p id="churnloop-decision"><strong>Decision: {escape(decision)}</strong></p>'
        if decision
        else f"<p><strong>{escape(result.summary)}</strong></p>"
    )
    return (
        '<section id="churnloop-drift-verdict" style="font-family:sans-serif;margin:16px">'
        f"<h1>{escape(title)}</h1>{opening}"
        f"{_list(notes)}"
        f"{_table(COLUMN_HEADINGS, [_column_cells(column) for column in result.columns])}"
        f"{'' if slices is None else _slices_html(slices)}"
        "<h2>About Evidently's charts below</h2>"
        f'<div style="font-weight:bold">{_list(about_evidently)}</div></section>'
    )


COLUMN_HEADINGS = (
    "column",
    "kind",
    "method",
    "score",
    "threshold",
    "p",
    "p (Holm)",
    "reference rows",
    "current rows",
    "verdict",
    "missing (reference)",
    "missing (current)",
)
_VERDICT_STYLES = {DRIFTED: "color:#b00020;font-weight:bold", INSUFFICIENT: "color:#777"}


def _column_cells(column: ColumnDrift) -> tuple[str, list[str]]:
    """A verdict table row: its style, and its cells as text."""
    cells = [
        column.column,
        column.kind,
        column.method,
        _number(column.score, ".4f"),
        f"{column.threshold:g}",
        _number(column.p_value, ".2g"),
        _number(column.p_adjusted, ".2g"),
        f"{column.reference_rows:,}",
        f"{column.current_rows:,}",
        column.status,
        _number(column.missing_reference, ".1%"),
        _number(column.missing_current, ".1%"),
    ]
    return _VERDICT_STYLES.get(column.status, ""), cells


def _slices_html(slices: SliceDriftResult) -> str:
    """The drifted slices, each with the columns that drifted in it."""
    rows = [
        (
            _VERDICT_STYLES[DRIFTED],
            [
                item.name,
                f"{item.reference_rows:,}",
                f"{item.current_rows:,}",
                "; ".join(column.describe() for column in item.columns if column.drifted),
            ],
        )
        for item in slices.drifted_slices
    ]
    headings = ("slice", "reference rows", "current rows", "drifted columns")
    table = _table(headings, rows) if rows else "<p>No slice drifted.</p>"
    return f"<h2>Drift per slice</h2><p>{escape(slices.summary)}</p>{table}"


def _table(headings: tuple[str, ...], rows: list[tuple[str, list[str]]]) -> str:
    head = "".join(f"<th>{escape(heading)}</th>" for heading in headings)
    body = "".join(
        f'<tr style="{style}">' + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>"
        for style, cells in rows
    )
    return (
        '<table border="1" cellpadding="4" style="border-collapse:collapse">'
        f"<tr>{head}</tr>{body}</table>"
    )


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
