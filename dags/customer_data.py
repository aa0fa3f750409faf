"""
### customer_data: one run per day of customer data

Takes the day's drops from the landing zone (customer snapshots, and the churn labels
that mature that day), stages them in the lake, validates them with Great Expectations,
and publishes what passes to `validated/`. From validated snapshots it builds the day's
features (`features/customer_features/`, the Feast offline source) and materializes them
into the online store, then emits the asset `customer_features`.

Catchup is on: each run handles exactly its own logical day, so backfills are normal
use (*Trigger → Backfill* in the UI, or
`airflow backfill create --dag-id customer_data --from-date … --to-date …`).

**When a run fails**

- `ingest_*` red, not retried: the drop is missing, empty or corrupt; the log names
  the path. Get upstream to (re)deliver the file, then *Clear* the task.
- `ingest_*` red after retries: the lake or landing zone was unreachable. Check
  storage, then *Clear*.
- `build_features` or `materialize_features` red after retries: the lake or the
  online store (Redis in production) was unreachable; *Clear* once it is back.
  Materializing runs in the pool `feast` (one slot: a file registry has no lock).
- `validate_*` red: the data broke an expectation. It was moved to `quarantine/` with
  its validation result, and the log lists each failed expectation with examples.
  Open the task's **Report** extra link (Data Docs), fix upstream, re-deliver, then
  *Clear* the `ingest_*` task with *Downstream*.

Nothing downstream of a failed validation runs: quarantined data never reaches features
or training. Re-running a day rewrites the same partitions, never duplicates them.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from churnloop.orchestration.dag_defaults import (
    CREDENTIALS_MASKED,
    CUSTOMER_FEATURES,
    DECISIONS_LOGGED,
    FAILURES_ALERTED,
    FEAST_POOL,
    INFRA_RETRIES,
    NO_RETRIES,
    dag_start_date,
)
from churnloop.settings import get_settings

SETTINGS = get_settings()


@task(multiple_outputs=True)
def ingest(dataset: str, ds: str | None = None) -> dict:
    """Stage the day's drop of `dataset` in `raw/` (schema-coerced); a label drop holds the
    labels of the snapshots 30 days earlier. Fails at once on a missing, empty or corrupt
    drop; retries on storage errors."""
    from churnloop.orchestration.task_support import data_errors_fail_fast
    from churnloop.validation.ingest import ingest_day

    with data_errors_fail_fast():
        return ingest_day(get_settings(), dataset, dt.date.fromisoformat(ds)).to_dict()


@task(multiple_outputs=True, **NO_RETRIES)
def validate(staged: dict) -> dict:
    """The dataset's Great Expectations suite (`customer_snapshots`, `churn_labels`).
    Failing data goes to `quarantine/` with its result; the **Report** link opens its
    Data Docs."""
    from churnloop.orchestration.task_support import data_errors_fail_fast, publish_report_link
    from churnloop.validation.partition import validate_partition

    day = dt.date.fromisoformat(staged["day"])
    with data_errors_fail_fast():
        outcome = validate_partition(get_settings(), staged["dataset"], day)
    publish_report_link(outcome.data_docs_url)
    return outcome.to_dict()


@task
def build_features(validated: dict) -> str:
    """The day's features from validated snapshots (rolling 7/30/90-day aggregates,
    ratios, recency), written to the Feast offline source."""
    from churnloop.features.build import build_feature_partition
    from churnloop.orchestration.task_support import data_errors_fail_fast

    with data_errors_fail_fast():
        return build_feature_partition(get_settings(), dt.date.fromisoformat(validated["day"]))


@task(multiple_outputs=True, pool=FEAST_POOL, outlets=[CUSTOMER_FEATURES])
def materialize_features(ds: str | None = None) -> dict:
    """Register the Feast definitions and write the day (with a small overlap for late
    rows) to the online store."""
    from churnloop.features import materialize
    from churnloop.orchestration.task_support import data_errors_fail_fast

    day = dt.date.fromisoformat(ds)
    with data_errors_fail_fast():
        stats = materialize.materialize_features(get_settings(), day)
    event = materialize.features_event(day, stats)
    get_current_context()["outlet_events"][CUSTOMER_FEATURES].extra = event
    return stats


@dag(
    dag_id="customer_data",
    description="Daily: ingest, validate (GX; bad drops quarantined), build, materialize features",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=dag_start_date(SETTINGS),
    catchup=True,
    max_active_runs=SETTINGS.customer_data_max_active_runs,
    default_args={
        "owner": "data-engineering",
        **INFRA_RETRIES,
        **CREDENTIALS_MASKED,
        **DECISIONS_LOGGED,
        **FAILURES_ALERTED,
    },
    tags=["churnloop", "data", "great-expectations"],
    doc_md=__doc__,
)
def customer_data():
    ingest_snapshots = ingest.override(task_id="ingest_snapshots")
    validate_snapshots = validate.override(task_id="validate_snapshots")
    ingest_labels = ingest.override(task_id="ingest_labels")
    validate_labels = validate.override(task_id="validate_labels")

    features = build_features(validate_snapshots(ingest_snapshots("customer_snapshots")))
    features >> materialize_features()
    validate_labels(ingest_labels("churn_labels"))


customer_data()
