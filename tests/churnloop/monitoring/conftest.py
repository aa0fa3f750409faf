"""Fixtures of the monitoring tests: a champion and a day to check against it (measured in
test_day_measurements.py, decided and reported in test_daily_check.py)."""

import pytest

from churnloop import registry, schema, storage
from churnloop.demo.simulation import generate_labels, generate_snapshots
from churnloop.features import definition
from tests.churnloop.monitoring.day_support import (
    AGEING,
    CUSTOMERS,
    DAY,
    SNAPSHOT_DAY,
    START,
    log_served,
)
from tests.churnloop.training_support import labelled_days, register_challenger, with_empty_mlflow


@pytest.fixture
def champion_day(settings):
    """A champion on 10 baseline days; the checked day aged; the day 30 before labelled,
    with the champion's served scores in its prediction log."""
    settings = with_empty_mlflow(settings)
    trained, _ = register_challenger(settings, labelled_days(START, 10, CUSTOMERS))
    registry.connect(settings).set_registered_model_alias(
        settings.model_name, registry.CHAMPION, str(trained.version)
    )
    lake = storage.lake(settings)
    lake.write_table(definition.DATASET, DAY, generate_snapshots(DAY, CUSTOMERS, scenario=AGEING))
    lake.write_table(definition.DATASET, SNAPSHOT_DAY, generate_snapshots(SNAPSHOT_DAY, CUSTOMERS))
    labels = generate_labels(SNAPSHOT_DAY, CUSTOMERS)
    lake.write_table(schema.validated_dataset(schema.LABELS), DAY, labels)
    served = generate_snapshots(SNAPSHOT_DAY, CUSTOMERS).to_pandas()
    log_served(settings, trained.model, trained.version, SNAPSHOT_DAY, served)
    return settings, trained
