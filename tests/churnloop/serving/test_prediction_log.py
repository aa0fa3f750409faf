"""The prediction log's table layout and its buffer when the lake is unreachable."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from churnloop.schema import ENTITY, TIMESTAMP
from churnloop.serving.prediction_log import (
    FEATURES_KEY,
    SLICE_ROWS,
    PredictionLog,
    records_table,
)


def test_log_columns_take_one_type_whatever_the_rows_gave():
    now = dt.datetime.now(dt.UTC)
    records = [
        {TIMESTAMP: now, FEATURES_KEY: {"age": 30, "plan": "basic", "flag": True}},
        {TIMESTAMP: now, FEATURES_KEY: {"age": 31.5, "plan": 2, "flag": None}},
    ]

    table = records_table(records)

    assert table.column("age").to_pylist() == [30.0, 31.5]
    assert table.column("plan").to_pylist() == ["basic", "2"]
    assert table.column("flag").to_pylist() == [1.0, None]
    assert table.schema.field(ENTITY).type == pa.int64()


def test_rows_over_several_slices_keep_their_order_and_one_type_per_column():
    now = dt.datetime.now(dt.UTC)
    count = SLICE_ROWS * 5 // 2
    records = [
        {TIMESTAMP: now, ENTITY: index, FEATURES_KEY: {"age": index, "plan": index}}
        for index in range(count)
    ]
    records[-1][FEATURES_KEY]["plan"] = "basic"  # text in the last slice only

    table = records_table(records)

    assert table.column(ENTITY).to_pylist() == list(range(count))
    assert table.column("age").to_pylist() == [float(index) for index in range(count)]
    assert table.column("plan").to_pylist() == [str(index) for index in range(count - 1)] + [
        "basic"
    ]


def test_rows_naming_features_in_another_order_or_not_at_all_share_the_columns():
    now = dt.datetime.now(dt.UTC)
    records = [
        {TIMESTAMP: now, FEATURES_KEY: {"age": 30, "plan": "basic"}},
        {TIMESTAMP: now, FEATURES_KEY: {"plan": "pro", "age": 41}},  # a request's own order
        {TIMESTAMP: now, FEATURES_KEY: {"age": 52, "tenure": 3}},  # another version's features
    ]

    table = records_table(records)

    assert table.column("age").to_pylist() == [30.0, 41.0, 52.0]
    assert table.column("plan").to_pylist() == ["basic", "pro", None]
    assert table.column("tenure").to_pylist() == [None, None, 3.0]


def test_prediction_log_keeps_unwritten_rows_and_counts_what_it_drops(settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the lake should be")
    unreachable = settings.model_copy(update={"lake_uri": str(blocker / "lake")})
    prediction_log = PredictionLog(
        unreachable, flush_rows=100, flush_seconds=3600, max_pending_rows=3
    )
    record = {TIMESTAMP: dt.datetime.now(dt.UTC), "features": {"age": 30.0}}

    prediction_log.append([record, record])
    assert prediction_log.flush() == []
    assert prediction_log.pending_rows == 2 and prediction_log.last_error
    prediction_log.append([record, record])

    assert prediction_log.pending_rows == 3 and prediction_log.dropped_rows == 1
