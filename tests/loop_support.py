"""Shared set-up of the DAG and integration tests: small models, and the lake as
customer_data leaves it."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa

from churnloop import schema, storage
from churnloop.demo.simulation import Scenario, generate_labels, generate_snapshots
from churnloop.features import definition

START = dt.date(2026, 1, 1)
CUSTOMERS = 400
FAST_MODEL = '{"n_estimators": 40, "num_leaves": 15, "min_child_samples": 20, "n_jobs": 1}'
"""Small LightGBM models: these tests are about the loop, not about model quality."""
LOOP_GATE_ENV = {
    "CHURNLOOP_GATE_MIN_GAIN_OVER_BASELINE": "null",
    "CHURNLOOP_GATE_MIN_HOLDOUT_POSITIVES": "30",
}
"""The gate of the loop tests: their small models on a few hundred customers (holdouts of
80-150 churners) are not required to beat the logistic baseline nor to reach the default
holdout size; tests/churnloop/training tests those rules, the demo runs them at default."""
NO_CANARY_ENV = {"CHURNLOOP_CANARY_STEPS": "[]"}
"""A blessed challenger becomes @champion at once in the loop tests: a canary bakes on live
traffic, which they do not send (tests/churnloop/canary and the canary's DAG test do)."""
DRIFT_ALONE_TRIGGERS = {"CHURNLOOP_DRIFT_MAX_ESTIMATED_AUC_DROP": "null"}
"""The loop tests' drift trigger: their simulated age drift barely hurts the model, so by
default it is "drift without estimated harm"; these tests are about the trigger's path
(tests/churnloop/monitoring test the harm rule)."""


def publish_days(
    settings,
    scenario: Scenario,
    days: int,
    start: dt.date = START,
    customers: int = CUSTOMERS,
    labels_through: dt.date | None = None,
) -> None:
    """What customer_data leaves in the lake: validated days, their features and labels.

    Written directly, not through the DAG, so that tests of the later DAGs do not pay for
    tens of customer_data runs (that DAG has its own tests). Labels arrive 30 days after
    their snapshot; ``labels_through`` leaves out those arriving later (days the test
    lets customer_data process itself).
    """
    from churnloop.features.feast_config import apply_definitions

    lake = storage.lake(settings)
    snapshot_days = [start + dt.timedelta(days=offset) for offset in range(days)]
    history = []
    for day in snapshot_days:
        snapshot = generate_snapshots(day, customers, scenario=scenario)
        lake.write_table(schema.validated_dataset(schema.SNAPSHOTS), day, snapshot)
        history.append(snapshot.to_pandas())
        arrival = day + dt.timedelta(days=schema.LABEL_DELAY_DAYS)
        if labels_through is None or arrival <= labels_through:
            labels = generate_labels(day, customers, scenario=scenario)
            lake.write_table(schema.validated_dataset(schema.LABELS), arrival, labels)
    frame = pd.concat(history, ignore_index=True)
    for day in snapshot_days:
        rows = definition.build_features(frame, day)
        table = pa.Table.from_pandas(rows, schema=definition.TABLE_SCHEMA, preserve_index=False)
        lake.write_table(definition.DATASET, day, table)
    apply_definitions(settings)
