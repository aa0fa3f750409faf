import datetime as dt

import pyarrow as pa
import pytest

from churnloop.errors import DataError
from churnloop.features import definition
from churnloop.features.build import build_feature_partition
from churnloop.storage import lake
from tests.churnloop.features_support import D2, partition, write_snapshots


def test_building_a_day_replaces_its_partition(settings):
    for back in range(3):
        day = D2 - dt.timedelta(days=back)
        write_snapshots(settings, day, {1: {"logins": back + 1}, 2: {"spend": 3.0}})
    first = build_feature_partition(settings, D2)
    write_snapshots(settings, D2, {1: {"logins": 7}})
    again = build_feature_partition(settings, D2)
    assert first == again
    assert list(lake(settings).list_files(definition.DATASET)) == [
        f"{definition.DATASET}/dt={D2}/data.parquet"
    ]
    rebuilt = partition(settings, D2)
    assert rebuilt.index.tolist() == [1]
    assert (rebuilt.loc[1, "logins_7d"], rebuilt.loc[1, "days_observed_7d"]) == (7 + 2 + 3, 3)
    with pytest.raises(DataError, match="cannot build features for 2026-03-05"):
        build_feature_partition(settings, D2 + dt.timedelta(days=3))


def test_cli_steps_report_a_day_without_data(settings, capsys):
    from churnloop import cli

    assert cli.main(["build-features", "2026-03-09"]) == 2
    assert "cannot build features for 2026-03-09" in capsys.readouterr().err
    assert cli.main(["materialize", "2026-03-09"]) == 2
    assert "no feature partition for 2026-03-09" in capsys.readouterr().err


def test_a_validated_day_with_nulls_fails_as_data_naming_the_partition(settings):
    """Validation refuses nulls now; a partition validated before that (or copied in by
    hand) still fails as a data error (no retry) naming dataset, day and column."""
    write_snapshots(settings, D2, {1: {}, 2: {}, 3: {}})
    table = lake(settings).read_table("validated/customer_snapshots", D2)
    ages = pa.array([30, None, None], pa.int32())
    table = table.set_column(table.schema.get_field_index("age"), "age", ages)
    lake(settings).write_table("validated/customer_snapshots", D2, table)

    with pytest.raises(DataError) as caught:
        build_feature_partition(settings, D2)

    assert "customer_snapshots dt=2026-03-02: 2 rows with a null or non-finite 'age'" in str(
        caught.value
    )
    assert lake(settings).partitions(definition.DATASET) == []
