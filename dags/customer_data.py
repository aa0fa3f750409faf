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

from airflow.sdk import Asset, CronDataIntervalTimetable, dag, task

from churnloop.orchestration.environment import FEAST_POOL
from churnloop.settings import get_settings

SETTINGS = get_settings()
CUSTOMER_FEATURES = Asset("customer_features")
INFRA_RETRIES = {"retries": 2, "retry_delay": dt.timedelta(minutes=1)}
NO_RETRIES = {"retries": 0}


@dag(
    dag_id="customer_data",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=dt.datetime.combine(SETTINGS.schedule_start, dt.time(), tzinfo=dt.UTC),
    catchup=True,
    max_active_runs=SETTINGS.customer_data_max_active_runs,
    default_args={"owner": "data-engineering", **INFRA_RETRIES},
    tags=["churnloop", "data", "great-expectations"],
    doc_md=__doc__,
)
def customer_data():
    @task(
        doc_md="Stage the day's snapshot drop in `raw/` (schema-coerced). Fails at once "
        "on a missing, empty or corrupt drop; retries on storage errors."
    )
    def ingest_snapshots(ds: str | None = None) -> dict:
        return _ingest("customer_snapshots", ds)

    @task(doc_md="Stage the day's label drop (labels of snapshots 30 days earlier).")
    def ingest_labels(ds: str | None = None) -> dict:
        return _ingest("churn_labels", ds)

    @task(
        doc_md="Great Expectations suite `customer_snapshots`. Failing data goes to "
        "`quarantine/` with its result; the **Report** link opens its Data Docs.",
        **NO_RETRIES,
    )
    def validate_snapshots(staged: dict) -> dict:
        return _validate(staged)

    @task(doc_md="Great Expectations suite `churn_labels`.", **NO_RETRIES)
    def validate_labels(staged: dict) -> dict:
        return _validate(staged)

    @task(
        doc_md="The day's features from validated snapshots (rolling 7/30/90-day "
        "aggregates, ratios, recency), written to the Feast offline source."
    )
    def build_features(validated: dict) -> str:
        from churnloop.features.store import build_feature_partition
        from churnloop.orchestration.task_support import data_errors_fail_fast

        with data_errors_fail_fast():
            return build_feature_partition(get_settings(), dt.date.fromisoformat(validated["day"]))

    @task(
        doc_md="Register the Feast definitions and write the day (with a small overlap for "
        "late rows) to the online store.",
        pool=FEAST_POOL,
        outlets=[CUSTOMER_FEATURES],
    )
    def materialize_features(ds: str | None = None) -> dict:
        from churnloop.features.store import apply_definitions, materialize_day
        from churnloop.orchestration.task_support import data_errors_fail_fast

        settings = get_settings()
        with data_errors_fail_fast():
            apply_definitions(settings)
            stats = materialize_day(settings, dt.date.fromisoformat(ds))
        print(
            f"materialized {stats.rows_written:,} rows of {stats.days} "
            f"({stats.rows_per_second:,.0f} rows/s)"
        )
        return stats.as_dict()

    features = build_features(validate_snapshots(ingest_snapshots()))
    features >> materialize_features()
    validate_labels(ingest_labels())


def _ingest(dataset: str, ds: str) -> dict:
    from dataclasses import asdict

    from churnloop.orchestration.task_support import data_errors_fail_fast
    from churnloop.validation.ingest import ingest_day

    with data_errors_fail_fast():
        return asdict(ingest_day(get_settings(), dataset, dt.date.fromisoformat(ds)))


def _validate(staged: dict) -> dict:
    from churnloop.orchestration.task_support import data_errors_fail_fast, publish_report_link
    from churnloop.validation.partition import validate_partition

    with data_errors_fail_fast():
        outcome = validate_partition(
            get_settings(), staged["dataset"], dt.date.fromisoformat(staged["day"])
        )
    publish_report_link(outcome.data_docs_url)
    return outcome.summary()


customer_data()
