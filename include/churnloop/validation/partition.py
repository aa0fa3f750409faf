"""Validate one day's raw partition and route it whole: to ``validated/`` or to quarantine.

Failing data moves to ``quarantine/<dataset>/dt=DAY/`` with GX's result and
``PartitionQuarantined`` names each failure. Only the validated bytes are published, and
only while they are still the staged file (else ``StagedPartitionChanged``, retried).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from churnloop import schema
from churnloop.errors import DataValidationError
from churnloop.links import report_url
from churnloop.settings import Settings
from churnloop.storage import Store, digest, lake, partition_name
from churnloop.validation.excerpts import capped
from churnloop.validation.suites import Failure, SuiteNotEvaluated, SuiteResult, run_suite

RESULT_FILE = "validation_result.json"
QUARANTINE_HISTORY = "quarantine_history"

# An integer column holding a null would otherwise become float64 in pandas and fail its
# type expectation on top of its null expectation.
_NULLABLE_INTEGERS = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
}


@dataclass(frozen=True)
class ValidationOutcome:
    """Where a validated day's data went, and why; what the Airflow task reports."""

    dataset: str
    day: dt.date
    passed: bool
    rows: int
    uri: str
    failures: tuple[Failure, ...] = ()
    result_uri: str | None = None
    data_docs_relpath: str | None = None
    data_docs_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, small enough for an XCom; failures as their one-line form."""
        return {
            "dataset": self.dataset,
            "day": self.day.isoformat(),
            "passed": self.passed,
            "rows": self.rows,
            "uri": self.uri,
            "failures": [failure.describe() for failure in self.failures],
            "result_uri": self.result_uri,
            "data_docs_relpath": self.data_docs_relpath,
            "data_docs_url": self.data_docs_url,
        }


@dataclass(frozen=True)
class _Staged:
    """The raw partition as this validation read it: what it may publish, and its digest,
    by which it recognises that partition still staged when it publishes."""

    dataset: str
    day: dt.date
    data: bytes
    rows: int
    digest: str


class StagedPartitionChanged(RuntimeError):
    """The day's staged file changed while it was validated (a re-delivery was ingested):
    nothing was published. Not a data error: a retry validates the newer delivery."""


class PartitionQuarantined(DataValidationError):
    """A partition failed validation and now sits in quarantine; ``outcome`` says where.

    ``report_url`` is what a failing Airflow task shows as its extra link (the Data Docs).
    """

    def __init__(self, message: str, outcome: ValidationOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.report_url = outcome.data_docs_url


def validate_partition(
    settings: Settings,
    dataset: str,
    day: dt.date,
    parameters: dict[str, Any] | None = None,
) -> ValidationOutcome:
    """Run ``dataset``'s suite on ``raw/<dataset>/dt=day``; publish it or quarantine it.

    ``parameters`` adds run-time bounds only the caller knows (a training window).
    Returns the outcome when the day passed (its data is then in ``validated/``). Raises
    PartitionQuarantined (a DataValidationError) when it did not.
    """
    parameters = {**suite_parameters(settings, dataset, day), **(parameters or {})}
    store = lake(settings)
    data, table = store.read_data_file(schema.raw_dataset(dataset), day)
    staged = _Staged(dataset, day, data, table.num_rows, digest(data))
    try:
        suite = run_suite(
            settings, dataset, _to_pandas(table), parameters, run_name=partition_name(day)
        )
    except SuiteNotEvaluated as error:
        raise _quarantine(settings, store, staged, error) from error
    if not suite.passed:
        raise _quarantine(settings, store, staged, suite)
    _check_still_staged(store, staged)
    _supersede_quarantine(store, dataset, day)
    uri = store.write_data_file(schema.validated_dataset(dataset), day, data)
    return ValidationOutcome(
        dataset=dataset,
        day=day,
        passed=True,
        rows=staged.rows,
        uri=uri,
        data_docs_relpath=suite.data_docs_relpath,
        data_docs_url=_docs_url(settings, suite.data_docs_relpath),
    )


def suite_parameters(settings: Settings, dataset: str, day: dt.date) -> dict[str, Any]:
    """The run-time bounds of ``dataset``'s suite for the partition of ``day``.

    Labels of ``day`` are for the snapshots taken LABEL_DELAY_DAYS earlier, so their
    timestamps must fall inside that snapshot day.
    """
    if dataset == schema.SNAPSHOTS:
        snapshot_day = day
        bounds = {"min_rows": settings.snapshot_min_rows, "max_rows": settings.snapshot_max_rows}
    elif dataset == schema.LABELS:
        snapshot_day = day - dt.timedelta(days=schema.LABEL_DELAY_DAYS)
        bounds = {}
    elif dataset == schema.TRAINING_SETS:
        return {
            "min_rows": settings.training_min_rows,
            "min_positive_rate": settings.training_min_positive_rate,
            "max_positive_rate": settings.training_max_positive_rate,
        }
    else:
        known = (schema.SNAPSHOTS, schema.LABELS, schema.TRAINING_SETS)
        raise ValueError(f"no validation suite for dataset {dataset!r}; known: {known}")
    start = pd.Timestamp(snapshot_day, tz="UTC")
    return {"day_start": start, "day_end": start + pd.Timedelta(days=1), **bounds}


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=_NULLABLE_INTEGERS.get)


def _quarantine(
    settings: Settings,
    store: Store,
    staged: _Staged,
    verdict: SuiteResult | SuiteNotEvaluated,
) -> PartitionQuarantined:
    """Move the day out of reach of features, keep GX's result with it, and build the error.

    The validated partition goes first, so that no step below can leave it in place; the
    result is written before the data, so quarantined data is never without its reason.
    The staged bytes are quarantined as they are; the result keeps a bounded excerpt of
    the values GX reports (``excerpts``).
    """
    dataset, day = staged.dataset, staged.day
    if isinstance(verdict, SuiteNotEvaluated):
        result = {"success": False, "suite_name": dataset, "exception_message": str(verdict)}
        problems, failures, docs_relpath = str(verdict), (), None
    else:
        result, problems = verdict.result, verdict.describe()
        failures, docs_relpath = verdict.failures, verdict.data_docs_relpath
    _check_still_staged(store, staged)
    store.delete_partition(schema.validated_dataset(dataset), day)
    _supersede_quarantine(store, dataset, day)
    quarantine = store.partition(schema.quarantine_dataset(dataset), day)
    result_uri = store.write_bytes(f"{quarantine}/{RESULT_FILE}", _json_bytes(capped(result)))
    uri = store.write_data_file(schema.quarantine_dataset(dataset), day, staged.data)
    outcome = ValidationOutcome(
        dataset=dataset,
        day=day,
        passed=False,
        rows=staged.rows,
        uri=uri,
        failures=failures,
        result_uri=result_uri,
        data_docs_relpath=docs_relpath,
        data_docs_url=_docs_url(settings, docs_relpath),
    )
    if docs_relpath:
        docs = f"Data Docs: {outcome.data_docs_url} (in the lake: {store.uri_of(docs_relpath)})"
    else:
        docs = f"no Data Docs page (see the log); GX's result: {result_uri}"
    message = (
        f"validation failed for {dataset} {partition_name(day)}: {problems}\n"
        f"data moved to {uri}; {docs}"
    )
    return PartitionQuarantined(message, outcome)


def _check_still_staged(store: Store, staged: _Staged) -> None:
    """Raise StagedPartitionChanged unless the day's staged file is still the one validated.

    Checked right before publishing; the window left (the publish's few writes) is far
    shorter than any validation of a newer delivery, which publishes after it.
    """
    relpath = store.data_file(schema.raw_dataset(staged.dataset), staged.day)
    if store.digest(relpath) != staged.digest:
        raise StagedPartitionChanged(
            f"{store.uri_of(relpath)} changed while it was validated (a newer delivery of "
            f"{staged.dataset} {partition_name(staged.day)} was staged): this validation "
            "published nothing; a retry validates the newer delivery."
        )


def _docs_url(settings: Settings, relpath: str | None) -> str | None:
    return report_url(settings, relpath) if relpath else None


def _supersede_quarantine(store: Store, dataset: str, day: dt.date) -> None:
    """Move the day's current quarantine record, if any, to
    ``quarantine_history/<dataset>/dt=DAY/superseded_at=<UTC time>/``: kept for audit, while
    ``quarantine/`` lists exactly the days that are quarantined now."""
    current = store.partition(schema.quarantine_dataset(dataset), day)
    files = list(store.list_files(current))
    if not files:
        return
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    history = f"{QUARANTINE_HISTORY}/{dataset}/{partition_name(day)}/superseded_at={stamp}"
    for relpath in files:
        name = relpath.removeprefix(f"{current}/")
        store.write_bytes(f"{history}/{name}", store.read_bytes(relpath))
    store.delete_partition(schema.quarantine_dataset(dataset), day)


def _json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True, default=str).encode()
