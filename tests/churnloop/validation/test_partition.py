import datetime as dt
import hashlib
import json
import shutil
import subprocess
import tracemalloc

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from churnloop import cli, schema
from churnloop.demo.simulation import generate_snapshots
from churnloop.errors import DataValidationError
from churnloop.links import report_url
from churnloop.settings import Settings, get_settings
from churnloop.storage import Store, lake, landing
from churnloop.validation.data_docs import DATA_DOCS_PREFIX
from churnloop.validation.ingest import ingest_day
from churnloop.validation.partition import (
    QUARANTINE_HISTORY,
    RESULT_FILE,
    PartitionQuarantined,
    StagedPartitionChanged,
    suite_parameters,
    validate_partition,
)
from churnloop.validation.project import setup_gx_project
from churnloop.validation.suites import run_suite

DAY = dt.date(2026, 3, 4)
START = dt.datetime(2026, 3, 4, tzinfo=dt.UTC)
ROWS = 60


def snapshot_table(rows: int = ROWS) -> pa.Table:
    """A clean daily snapshot: every value inside the contract."""
    ids = range(rows)
    columns = {
        schema.ENTITY: list(ids),
        schema.TIMESTAMP: [START + dt.timedelta(minutes=20 * i) for i in ids],
        "plan": [schema.PLANS[i % len(schema.PLANS)] for i in ids],
        "region": [schema.REGIONS[i % len(schema.REGIONS)] for i in ids],
        "contract": [schema.CONTRACTS[i % len(schema.CONTRACTS)] for i in ids],
        "age": [18 + i for i in ids],
        "tenure_months": [i % 48 for i in ids],
        "monthly_charges": [20.0 + i for i in ids],
        "logins": [i % 9 for i in ids],
        "session_minutes": [2.5 * i for i in ids],
        "support_tickets": [i % 3 for i in ids],
        "payment_failures": [i % 2 for i in ids],
        "spend": [3.0 * i for i in ids],
        "days_since_last_login": [i % 30 for i in ids],
    }
    return pa.table(columns, schema=schema.SNAPSHOT_SCHEMA)


def label_table(snapshot_day: dt.date, rows: int = ROWS) -> pa.Table:
    start = dt.datetime.combine(snapshot_day, dt.time(), dt.UTC)
    columns = {
        schema.ENTITY: list(range(rows)),
        schema.TIMESTAMP: [start + dt.timedelta(minutes=i) for i in range(rows)],
        schema.LABEL: [i % 2 for i in range(rows)],
    }
    return pa.table(columns, schema=schema.LABEL_SCHEMA)


def replaced(table: pa.Table, name: str, changes: dict[int, object]) -> pa.Table:
    values = table[name].to_pylist()
    for row, value in changes.items():
        values[row] = value
    index = table.schema.get_field_index(name)
    return table.set_column(index, name, pa.array(values, table.schema.field(name).type))


def stage(settings: Settings, dataset: str, table: pa.Table, day: dt.date = DAY) -> None:
    lake(settings).write_table(schema.raw_dataset(dataset), day, table)


def rows_in(store: Store, dataset: str, day: dt.date = DAY) -> int:
    return store.read_table(dataset, day).num_rows if day in store.partitions(dataset) else 0


def assert_quarantined(settings: Settings, dataset: str, raw: pa.Table) -> dict:
    """The day sits whole in quarantine with GX's result, and nowhere in validated/."""
    store = lake(settings)
    quarantine = schema.quarantine_dataset(dataset)
    assert store.partitions(schema.validated_dataset(dataset)) == []
    assert store.read_table(quarantine, DAY).equals(raw)
    raw_file = store.read_bytes(store.data_file(schema.raw_dataset(dataset), DAY))
    assert store.read_bytes(store.data_file(quarantine, DAY)) == raw_file
    assert rows_in(store, schema.raw_dataset(dataset)) == (
        rows_in(store, schema.validated_dataset(dataset)) + rows_in(store, quarantine)
    )
    result = json.loads(store.read_bytes(f"{store.partition(quarantine, DAY)}/{RESULT_FILE}"))
    assert result["success"] is False
    return result


def test_a_clean_day_is_published_with_its_data_docs(settings):
    raw = snapshot_table()
    stage(settings, schema.SNAPSHOTS, raw)

    outcome = validate_partition(settings, schema.SNAPSHOTS, DAY)

    store = lake(settings)
    assert outcome.passed and outcome.rows == ROWS
    assert store.read_table(schema.validated_dataset(schema.SNAPSHOTS), DAY).equals(raw)
    published, staged = (
        store.read_bytes(store.data_file(dataset(schema.SNAPSHOTS), DAY))
        for dataset in (schema.validated_dataset, schema.raw_dataset)
    )
    assert published == staged  # the file validated, byte for byte
    assert outcome.uri == store.uri_of(f"validated/{schema.SNAPSHOTS}/dt=2026-03-04/data.parquet")
    assert store.partitions(schema.quarantine_dataset(schema.SNAPSHOTS)) == []
    assert outcome.data_docs_relpath.startswith(f"{DATA_DOCS_PREFIX}/validations/")
    assert outcome.data_docs_url == report_url(settings, outcome.data_docs_relpath)
    for page in (outcome.data_docs_relpath, f"{DATA_DOCS_PREFIX}/index.html"):
        assert store.exists(page), page
    assert b"dt=2026-03-04" in store.read_bytes(f"{DATA_DOCS_PREFIX}/index.html")


VIOLATIONS = {
    "out_of_range": (
        lambda t: replaced(t, "age", {3: -3, 7: 212}),
        [
            "expect_column_values_to_be_between(column='age', min_value=18, max_value=100): "
            "2 rows, e.g. -3, 212"
        ],
    ),
    "null_keys": (
        lambda t: replaced(t, schema.ENTITY, {0: None, 1: None, 2: None}),
        ["expect_column_values_to_not_be_null(column='customer_id'): 3 rows"],
    ),
    "duplicate_keys": (
        lambda t: pa.concat_tables([t, t.slice(0, 2)]),
        ["expect_column_values_to_be_unique(column='customer_id'): 4 rows, e.g. 0, 1"],
    ),
    "bad_category": (
        lambda t: replaced(t, "plan", {5: "gold"}),
        [
            "expect_column_values_to_be_in_set(column='plan', "
            "value_set=['basic', 'standard', 'premium']): 1 row, e.g. 'gold'"
        ],
    ),
    "too_few_rows": (
        lambda t: t.slice(0, 10),
        ["expect_table_row_count_to_be_between(min_value=50, max_value=5000000): observed 10"],
    ),
    "timestamp_outside_the_day": (
        lambda t: replaced(
            t, schema.TIMESTAMP, {0: START - dt.timedelta(minutes=1), 1: START + dt.timedelta(1)}
        ),
        [
            "expect_column_values_to_be_between(column='event_timestamp', "
            "min_value=2026-03-04T00:00:00+00:00, max_value=2026-03-05T00:00:00+00:00",
            "2 rows, e.g. 2026-03-03T23:59:00+00:00, 2026-03-05T00:00:00+00:00",
        ],
    ),
    "missing_column": (
        lambda t: t.drop_columns(["payment_failures"]),
        [
            "expect_table_columns_to_match_ordered_list(column_list=[14 values]): "
            "missing ['payment_failures']",
            "expect_column_values_to_be_between(column='payment_failures', min_value=0): "
            'could not be evaluated: Error: The column "payment_failures" in BatchData does not '
            "exist.",
        ],
    ),
    "extra_column": (
        lambda t: t.append_column("loyalty_points", pa.array(range(t.num_rows))),
        [
            "expect_table_columns_to_match_ordered_list(column_list=[14 values]): "
            "unexpected ['loyalty_points']"
        ],
    ),
    "wrong_type_staged_as_string": (
        lambda t: t.set_column(5, "age", pc.cast(t["age"], pa.string())),
        [
            "expect_column_values_to_be_of_type(column='age', type_='int32'): "
            "60 rows, e.g. '18', '19', '20'"
        ],
    ),
}


@pytest.mark.parametrize("breakage, expected", VIOLATIONS.values(), ids=VIOLATIONS.keys())
def test_each_violation_quarantines_the_day_and_names_what_failed(settings, breakage, expected):
    raw = breakage(snapshot_table())
    stage(settings, schema.SNAPSHOTS, raw)

    with pytest.raises(PartitionQuarantined) as caught:
        validate_partition(settings, schema.SNAPSHOTS, DAY)

    message, outcome = str(caught.value), caught.value.outcome
    assert isinstance(caught.value, DataValidationError)
    assert message.startswith("validation failed for customer_snapshots dt=2026-03-04: ")
    assert " of 44 expectations failed:\n - " in message
    for fragment in expected:
        assert fragment in message
    assert f"data moved to {outcome.uri};" in message
    assert f"Data Docs: {report_url(settings, outcome.data_docs_relpath)}" in message
    assert lake(settings).uri_of(outcome.data_docs_relpath) in message
    assert not outcome.passed and outcome.rows == raw.num_rows
    assert outcome.failures and lake(settings).exists(outcome.data_docs_relpath)
    result = assert_quarantined(settings, schema.SNAPSHOTS, raw)
    assert result["statistics"]["unsuccessful_expectations"] == len(outcome.failures)
    assert json.loads(json.dumps(outcome.to_dict()))["failures"][0] in message
    assert caught.value.report_url == outcome.data_docs_url


def test_revalidating_a_day_replaces_its_outcome_and_keeps_the_old_record(settings):
    """pass -> fail (the stale validated copy goes) -> fixed -> pass (quarantine archived)."""
    clean = snapshot_table()
    broken = replaced(clean, "age", {0: 7})
    stage(settings, schema.SNAPSHOTS, clean)
    validate_partition(settings, schema.SNAPSHOTS, DAY)
    stage(settings, schema.SNAPSHOTS, broken)
    with pytest.raises(PartitionQuarantined):
        validate_partition(settings, schema.SNAPSHOTS, DAY)
    assert_quarantined(settings, schema.SNAPSHOTS, broken)

    stage(settings, schema.SNAPSHOTS, clean)
    assert cli.main(["validate", schema.SNAPSHOTS, DAY.isoformat()]) == 0

    store = lake(settings)
    assert store.read_table(schema.validated_dataset(schema.SNAPSHOTS), DAY).equals(clean)
    assert list(store.list_files(schema.quarantine_dataset(schema.SNAPSHOTS))) == []
    history = sorted(store.list_files(f"{QUARANTINE_HISTORY}/{schema.SNAPSHOTS}/dt=2026-03-04"))
    assert [path.rsplit("/", 1)[1] for path in history] == ["data.parquet", RESULT_FILE]
    assert "/superseded_at=" in history[0]
    assert store.read_parquet(history[0]).equals(broken)


def test_a_suite_gx_cannot_evaluate_still_quarantines_the_day(settings, monkeypatch, tmp_path):
    """Here a suite edited to use a bound the code does not fill: GX raises, not reports."""
    shutil.copytree(settings.great_expectations_dir, tmp_path / "great_expectations")
    suite_file = tmp_path / "great_expectations" / "expectations" / f"{schema.SNAPSHOTS}.json"
    suite = json.loads(suite_file.read_text())
    (row_count,) = [e for e in suite["expectations"] if "row_count" in e["type"]]
    row_count["kwargs"]["max_value"] = {"$PARAMETER": "max_customers"}
    suite_file.write_text(json.dumps(suite))
    monkeypatch.setenv("CHURNLOOP_PROJECT_ROOT", str(tmp_path))
    edited = get_settings()
    raw = snapshot_table()
    stage(edited, schema.SNAPSHOTS, raw)

    with pytest.raises(PartitionQuarantined) as caught:
        validate_partition(edited, schema.SNAPSHOTS, DAY)

    assert "could not be evaluated: SuiteParameterError" in str(caught.value)
    assert "$PARAMETER max_customers" in str(caught.value)
    result = assert_quarantined(edited, schema.SNAPSHOTS, raw)
    assert "max_customers" in result["exception_message"]


def test_labels_pass_for_their_snapshot_day_even_when_empty(settings):
    snapshot_day = DAY - dt.timedelta(days=schema.LABEL_DELAY_DAYS)
    for labels in (label_table(snapshot_day), label_table(snapshot_day, rows=0)):
        stage(settings, schema.LABELS, labels)
        outcome = validate_partition(settings, schema.LABELS, DAY)
        assert outcome.passed and outcome.rows == labels.num_rows
        validated = lake(settings).read_table(schema.validated_dataset(schema.LABELS), DAY)
        assert validated.equals(labels)


def test_labels_fail_on_bad_values_and_on_the_wrong_day(settings):
    labels = replaced(label_table(DAY), schema.LABEL, {4: 2})
    stage(settings, schema.LABELS, labels)

    with pytest.raises(PartitionQuarantined) as caught:
        validate_partition(settings, schema.LABELS, DAY)

    message = str(caught.value)
    assert (
        "expect_column_values_to_be_in_set(column='churned', value_set=[0, 1]): 1 row, e.g. 2"
        in message
    )
    assert (
        "(column='event_timestamp', min_value=2026-02-02T00:00:00+00:00, "
        "max_value=2026-02-03T00:00:00+00:00, strict_max=True): 60 rows" in message
    )
    assert_quarantined(settings, schema.LABELS, labels)


def test_suites_state_the_data_contract_of_schema_py(settings):
    """The JSON suites are the reviewable source; they must not drift from schema.py."""
    arrow_to_gx = {pa.int64(): "int64", pa.int32(): "int32", pa.int8(): "int8"}
    arrow_to_gx |= {pa.float64(): "float64", pa.string(): "str"}
    arrow_to_gx[schema.SNAPSHOT_SCHEMA.field(schema.TIMESTAMP).type] = "Timestamp"
    allowed = {"plan": schema.PLANS, "region": schema.REGIONS, "contract": schema.CONTRACTS}
    allowed[schema.LABEL] = (0, 1)
    for name, contract in (
        (schema.SNAPSHOTS, schema.SNAPSHOT_SCHEMA),
        (schema.LABELS, schema.LABEL_SCHEMA),
    ):
        suite = json.loads(
            (settings.great_expectations_dir / "expectations" / f"{name}.json").read_text()
        )
        by_type: dict[str, list[dict]] = {}
        for expectation in suite["expectations"]:
            by_type.setdefault(expectation["type"], []).append(expectation["kwargs"])
        (columns,) = by_type["expect_table_columns_to_match_ordered_list"]
        assert columns["column_list"] == contract.names
        types = {kw["column"]: kw["type_"] for kw in by_type["expect_column_values_to_be_of_type"]}
        assert types == {field.name: arrow_to_gx[field.type] for field in contract}
        for kwargs in by_type["expect_column_values_to_be_in_set"]:
            assert tuple(kwargs["value_set"]) == allowed[kwargs["column"]]
        assert {"column": schema.ENTITY} in by_type["expect_column_values_to_be_unique"]
        not_null = [kw["column"] for kw in by_type["expect_column_values_to_not_be_null"]]
        assert sorted(not_null) == sorted(contract.names), "no column may hold a null or NaN"
        bounded = {
            kw["column"]: kw["max_value"]
            for kw in by_type["expect_column_values_to_be_between"]
            if "max_value" in kw
        }
        floats = [field.name for field in contract if pa.types.is_floating(field.type)]
        assert all(bounded.get(name, float("inf")) <= schema.FINITE_MAX for name in floats), (
            "every float column has a finite upper bound: an infinity fails"
        )


def test_a_new_suite_runs_after_setup(settings, monkeypatch, tmp_path):
    """The path of a later suite (e.g. the training set): write its JSON, run setup, run it."""
    shutil.copytree(settings.great_expectations_dir, tmp_path / "great_expectations")
    suite = {
        "name": "training_set",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "customer_id"}}
        ],
    }
    suite_file = tmp_path / "great_expectations" / "expectations" / "training_set.json"
    suite_file.write_text(json.dumps(suite))
    monkeypatch.setenv("CHURNLOOP_PROJECT_ROOT", str(tmp_path))
    copy = get_settings()

    added = setup_gx_project(copy)

    assert "checkpoint training_set" in added and setup_gx_project(copy) == []
    frame = snapshot_table(rows=5).to_pandas()
    frame.loc[2, schema.ENTITY] = None
    result = run_suite(copy, "training_set", frame, {})
    assert not result.passed and result.evaluated == 1
    (failure,) = result.failures
    assert (failure.expectation, failure.column, failure.unexpected_count) == (
        "expect_column_values_to_not_be_null",
        schema.ENTITY,
        1,
    )
    assert lake(copy).exists(result.data_docs_relpath)


def test_a_suite_copies_no_frame_per_expectation(settings):
    """GX's pandas engine selects a column's non-null rows before each column-map
    expectation; with no nulls pandas returns the whole frame, copied unless Copy-on-Write
    is on (about 1 s of the suite of a 700k-row training set, docs/benchmarks.md)."""
    frame = generate_snapshots(DAY, 100_000).to_pandas()
    frame_bytes = frame.memory_usage(index=False).sum()
    parameters = suite_parameters(settings, schema.SNAPSHOTS, DAY)

    tracemalloc.start()
    try:
        result = run_suite(settings, schema.SNAPSHOTS, frame, parameters)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.passed
    assert peak < 1.6 * frame_bytes  # a copy of the frame would take it past 2x


def _gx_files(settings: Settings) -> dict[str, str]:
    root = settings.great_expectations_dir
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "uncommitted" not in path.relative_to(root).parts
    }


def _git_status(settings: Settings) -> str:
    command = ["git", "status", "--porcelain", "--untracked-files=all", "great_expectations/"]
    return subprocess.run(
        command, cwd=settings.project_root, capture_output=True, text=True, check=True
    ).stdout


def test_validation_and_setup_leave_the_committed_gx_project_untouched(settings, capsys):
    before = (_gx_files(settings), _git_status(settings))
    stage(settings, schema.SNAPSHOTS, snapshot_table(rows=10))
    assert cli.main(["validate", schema.SNAPSHOTS, DAY.isoformat()]) == 1

    assert setup_gx_project(settings) == []
    assert (_gx_files(settings), _git_status(settings)) == before
    assert "validation failed for customer_snapshots dt=2026-03-04" in capsys.readouterr().err


@pytest.mark.services
def test_s3_lake_gets_the_quarantine_and_the_data_docs(s3_server, s3_root, settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_LAKE_URI", f"s3://{s3_root}/lake")
    monkeypatch.setenv("CHURNLOOP_S3_ENDPOINT_URL", s3_server)
    s3 = get_settings()
    store = lake(s3)
    stale = snapshot_table()
    store.write_table(schema.validated_dataset(schema.SNAPSHOTS), DAY, stale)
    broken = replaced(stale, "region", {1: "mars"})
    stage(s3, schema.SNAPSHOTS, broken)

    with pytest.raises(PartitionQuarantined) as caught:
        validate_partition(s3, schema.SNAPSHOTS, DAY)

    assert store.is_s3
    assert_quarantined(s3, schema.SNAPSHOTS, broken)
    outcome = caught.value.outcome
    assert outcome.uri.startswith("s3://") and f"Data Docs: {outcome.data_docs_url}" in str(
        caught.value
    )
    static = f"{DATA_DOCS_PREFIX}/static/styles/data_docs_default_styles.css"
    for relpath in (outcome.data_docs_relpath, f"{DATA_DOCS_PREFIX}/index.html", static):
        assert store.exists(relpath), store.uri_of(relpath)


def _redelivered_during_validation(settings, monkeypatch, newer: pa.Table) -> list:
    """While the suite runs on the staged day, upstream re-delivers it: the newer drop is
    ingested and validated to its own verdict before the first validation publishes."""
    from churnloop.validation import partition

    run_suite_first = partition.run_suite
    verdicts = []

    def suite_then_redelivery(*args, **kwargs):
        result = run_suite_first(*args, **kwargs)
        if not verdicts:
            verdicts.append("redelivered")
            landing(settings).write_table(schema.SNAPSHOTS, DAY, newer)
            ingest_day(settings, schema.SNAPSHOTS, DAY)
            try:
                verdicts.append(validate_partition(settings, schema.SNAPSHOTS, DAY).passed)
            except PartitionQuarantined:
                verdicts.append(False)
        return result

    monkeypatch.setattr(partition, "run_suite", suite_then_redelivery)
    return verdicts


def assert_redelivery_wins(settings, monkeypatch, first: pa.Table, newer: pa.Table) -> None:
    stage(settings, schema.SNAPSHOTS, first)
    verdicts = _redelivered_during_validation(settings, monkeypatch, newer)

    with pytest.raises(StagedPartitionChanged, match="changed while it was validated"):
        validate_partition(settings, schema.SNAPSHOTS, DAY)

    store = lake(settings)
    assert verdicts[0] == "redelivered"
    if verdicts[1]:
        published = store.read_table(schema.validated_dataset(schema.SNAPSHOTS), DAY)
        assert published.equals(newer), "the newer delivery stays published"
        assert list(store.list_files(schema.quarantine_dataset(schema.SNAPSHOTS))) == []
    else:
        assert_quarantined(settings, schema.SNAPSHOTS, newer)
        assert list(store.list_files(QUARANTINE_HISTORY)) == [], "its record is current"


REDELIVERIES = {
    "good_then_bad": (snapshot_table(), replaced(snapshot_table(), "age", {0: 7})),
    "bad_then_good": (replaced(snapshot_table(), "age", {0: 7}), snapshot_table()),
    "good_then_good": (snapshot_table(), snapshot_table().slice(0, ROWS - 1)),
}


@pytest.mark.parametrize("first, newer", REDELIVERIES.values(), ids=REDELIVERIES.keys())
def test_a_validation_overtaken_by_a_redelivery_publishes_nothing(
    settings, monkeypatch, first, newer
):
    assert_redelivery_wins(settings, monkeypatch, first, newer)


@pytest.mark.services
def test_on_s3_a_validation_overtaken_by_a_redelivery_publishes_nothing(
    s3_server, s3_root, settings, monkeypatch
):
    monkeypatch.setenv("CHURNLOOP_LAKE_URI", f"s3://{s3_root}/lake")
    monkeypatch.setenv("CHURNLOOP_S3_ENDPOINT_URL", s3_server)
    first, newer = REDELIVERIES["good_then_bad"]
    assert_redelivery_wins(get_settings(), monkeypatch, first, newer)


def test_values_too_large_to_echo_are_cut_and_say_so(settings):
    huge = "<b>" + "x" * 1_000_000
    raw = replaced(snapshot_table(), "plan", dict.fromkeys(range(25), huge))
    stage(settings, schema.SNAPSHOTS, raw)

    with pytest.raises(PartitionQuarantined) as caught:
        validate_partition(settings, schema.SNAPSHOTS, DAY)

    message, store = str(caught.value), lake(settings)
    assert len(message) < 2_000
    assert (
        "25 rows, e.g. '<b>xxxxxxxx" in message and "(truncated, 1,000,005 characters)" in message
    )
    stored = store.read_bytes(caught.value.outcome.result_uri.removeprefix(store.uri_of("") + "/"))
    assert len(stored) < 200_000
    assert "(truncated, 1,000,003 characters)" in stored.decode()
    assert_quarantined(settings, schema.SNAPSHOTS, raw)
    page = store.read_bytes(caught.value.outcome.data_docs_relpath).decode()
    assert len(page) < 500_000 and "&lt;b&gt;xxxx" in page and "<b>xxxx" not in page
    gx_results = (settings.home / "great_expectations" / "validations").rglob("*.json")
    assert [path.stat().st_size < 200_000 for path in gx_results] == [True], "GX's own copy"
