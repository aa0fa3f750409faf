import datetime as dt
from urllib.parse import quote

import pytest

from churnloop import schema
from churnloop.settings import get_settings
from churnloop.storage import lake
from churnloop.validation.data_docs import DATA_DOCS_PREFIX
from churnloop.validation.partition import PartitionQuarantined, validate_partition
from churnloop.validation.results_store import ValidationResultsStore
from tests.churnloop.validation.test_partition import DAY, replaced, snapshot_table, stage

INDEX = f"{DATA_DOCS_PREFIX}/index.html"


def snapshots_of(day: dt.date):
    """A clean snapshot of ``day`` (its timestamps inside that day)."""
    table = snapshot_table()
    shift = dt.timedelta(days=(day - DAY).days)
    times = table[schema.TIMESTAMP].to_pylist()
    return replaced(table, schema.TIMESTAMP, {row: time + shift for row, time in enumerate(times)})


def linked(index: str, page_relpath: str) -> bool:
    return quote(page_relpath.removeprefix(f"{DATA_DOCS_PREFIX}/")) in index


@pytest.fixture
def result_reads(monkeypatch) -> list:
    """Every validation result GX's stores read, as it reads them."""
    reads = []
    read = ValidationResultsStore.get

    def counted(self, key):
        reads.append(key)
        return read(self, key)

    monkeypatch.setattr(ValidationResultsStore, "get", counted)
    return reads


def test_the_index_keeps_a_failed_day_past_its_newest_runs(settings, monkeypatch, result_reads):
    monkeypatch.setenv("CHURNLOOP_DATA_DOCS_INDEX_RUNS", "2")
    settings = get_settings()
    stage(settings, schema.SNAPSHOTS, replaced(snapshot_table(), "age", {3: -3}))
    with pytest.raises(PartitionQuarantined) as caught:
        validate_partition(settings, schema.SNAPSHOTS, DAY)
    passed, reads = [], []
    for day in (DAY + dt.timedelta(days=offset) for offset in range(1, 5)):
        stage(settings, schema.SNAPSHOTS, snapshots_of(day), day)
        result_reads.clear()
        passed.append(validate_partition(settings, schema.SNAPSHOTS, day).data_docs_relpath)
        reads.append(len(result_reads))

    index = lake(settings).read_bytes(INDEX).decode()
    assert linked(index, caught.value.outcome.data_docs_relpath), "the failed day is listed"
    assert [linked(index, page) for page in passed] == [False, False, True, True]
    assert reads[-1] == reads[-2], f"reads grow with older results: {reads}"


def test_an_unreadable_old_result_leaves_the_index_without_failing_a_validation(
    settings, monkeypatch
):
    monkeypatch.setenv("CHURNLOOP_DATA_DOCS_INDEX_RUNS", "1")
    settings = get_settings()
    stage(settings, schema.SNAPSHOTS, replaced(snapshot_table(), "age", {3: -3}))
    with pytest.raises(PartitionQuarantined) as caught:
        validate_partition(settings, schema.SNAPSHOTS, DAY)
    (result,) = (settings.home / "great_expectations" / "validations").rglob("*.json")
    result.write_text("{not json")
    day = DAY + dt.timedelta(days=1)
    stage(settings, schema.SNAPSHOTS, snapshots_of(day), day)

    outcome = validate_partition(settings, schema.SNAPSHOTS, day)

    index = lake(settings).read_bytes(INDEX).decode()
    assert linked(index, outcome.data_docs_relpath)
    assert not linked(index, caught.value.outcome.data_docs_relpath)
