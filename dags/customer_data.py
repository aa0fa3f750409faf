"""
### customer_data: one run per day of customer data

Waits for the day's drops in the landing zone (customer snapshots, and the churn labels
that mature that day; a late drop is picked up when it lands), stages them in the lake,
validates them with Great Expectations, and publishes what passes to `validated/`. From
validated snapshots it builds the day's features (`features/customer_features/`, the Feast
offline source) and materializes them into the online store, then emits the asset
`customer_features`.

Catchup is on: each run handles exactly its own logical day, so backfills are normal
use (*Trigger → Backfill* in the UI, or
`airflow backfill create --dag-id customer_data --from-date … --to-date …`).

**When a run fails or is late**

- `wait_for_*` yellow (*up for reschedule*): the drop has not landed yet. The sensor looks
  again every `landing_poke_seconds` without holding a worker slot; a drop that lands in
  time is picked up with no one involved.
- `wait_for_*` pink (*skipped*) and `ingest_*` red, not retried: nothing landed within
  `landing_wait_seconds`; the log names the expected path. Get upstream to deliver, then
  *Clear* `ingest_*` with *Downstream*.
- `ingest_*` red, not retried: the drop is empty or corrupt; the log names the path. Get
  upstream to re-deliver the file, then *Clear* the task.
- `ingest_*` red after retries: the lake or landing zone was unreachable. Check
  storage, then *Clear*.
- `build_features` or `materialize_features` red after retries: the lake or the
  online store (Redis in production) was unreachable; *Clear* once it is back.
  Materializing runs in the pool `feast` (one slot: a file registry has no lock).
- `validate_*` red: the data broke an expectation. It was moved to `quarantine/` with
  its validation result, and the log lists each failed expectation with examples.
  Open the task's **Report** extra link (Data Docs), fix upstream, re-deliver, then
  *Clear* the `ingest_*` task with *Downstream*.

Every task that fails for good alerts on-call (e-mail, Slack: see the README's on-call
section), and a scheduled day not finished `customer_data_deadline` after it ended raises a
Deadline Alert (Browse → Deadlines; e-mail, Slack).

Nothing downstream of a failed validation runs: quarantined data never reaches features
or training. Re-running a day rewrites the same partitions, never duplicates them.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import (
    CronDataIntervalTimetable,
    PokeReturnValue,
    dag,
    get_current_context,
    task,
)

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
from churnloop.orchestration.deadlines import customer_data_deadline
from churnloop.settings import get_settings

SETTINGS = get_settings()


@task.sensor(
    mode="reschedule",
    poke_interval=SETTINGS.landing_poke_seconds,
    timeout=SETTINGS.landing_wait_seconds,
    soft_fail=True,
)
def wait_for_drop(dataset: str, ds: str | None = None) -> PokeReturnValue:
    """Wait for the day's drop of `dataset` in the landing zone, holding no worker slot
    between looks (reschedule mode). Past `landing_wait_seconds` it gives up (skipped) and
    `ingest_*` fails, naming where the drop was expected."""
    import logging

    from churnloop.validation.ingest import drop_location

    expected = drop_location(get_settings(), dataset, dt.date.fromisoformat(ds))
    if expected:
        logging.getLogger(__name__).info("no drop yet: waiting for %s", expected)
    return PokeReturnValue(is_done=expected is None)


@task(multiple_outputs=True, trigger_rule="none_failed")
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
    deadline=customer_data_deadline(SETTINGS),
    doc_md=__doc__,
)
def customer_data():
    wait_for_snapshots = wait_for_drop.override(task_id="wait_for_snapshots")
    wait_for_labels = wait_for_drop.override(task_id="wait_for_labels")
    ingest_snapshots = ingest.override(task_id="ingest_snapshots")
    validate_snapshots = validate.override(task_id="validate_snapshots")
    ingest_labels = ingest.override(task_id="ingest_labels")
    validate_labels = validate.override(task_id="validate_labels")

    snapshots = ingest_snapshots("customer_snapshots")
    wait_for_snapshots("customer_snapshots") >> snapshots
    features = build_features(validate_snapshots(snapshots))
    features >> materialize_features()
    labels = ingest_labels("churn_labels")
    wait_for_labels("churn_labels") >> labels
    validate_labels(labels)


customer_data()
