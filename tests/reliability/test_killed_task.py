"""A task killed with SIGKILL in the middle of its write leaves no partial partition, and
its retry succeeds.

The task is ``churnloop ingest`` (what customer_data's ingest task runs) in its own
process, staging a large drop. The test watches the partition folder and kills the
process as soon as the temporary file of its write appears, i.e. while it is writing.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from churnloop import cli, schema, storage
from churnloop.demo.simulation import generate_snapshots

DAY = dt.date(2026, 3, 4)
ROWS = 1_000_000
"""Large enough that writing the staged file (~9 MB) takes milliseconds."""
ATTEMPTS = 3
DEADLINE_SECONDS = 60


INGEST = ["ingest", schema.SNAPSHOTS, DAY.isoformat()]


def kill_mid_write(folder: Path) -> bool:
    """Run the ingest and SIGKILL it once its temporary file exists; False if it finished
    first."""
    command = [sys.executable, "-m", "churnloop.cli", *INGEST]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if folder.is_dir() and any(
                entry.name.startswith(f".{storage.DATA_FILE}.tmp-") for entry in os.scandir(folder)
            ):
                process.send_signal(signal.SIGKILL)
                process.wait()
                return process.returncode == -signal.SIGKILL
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ingest_killed_mid_write_leaves_nothing_and_its_retry_succeeds(settings, capsys):
    landing, lake = storage.landing(settings), storage.lake(settings)
    drop = generate_snapshots(DAY, ROWS)
    landing.write_table(schema.SNAPSHOTS, DAY, drop)
    raw = schema.raw_dataset(schema.SNAPSHOTS)
    folder = lake.local_path(lake.partition(raw, DAY))

    for _ in range(ATTEMPTS):
        if kill_mid_write(folder):
            break
        lake.delete_partition(raw, DAY)  # it finished first: try again from nothing
    else:
        pytest.fail(f"no attempt was caught mid-write in {ATTEMPTS} tries")

    assert lake.partitions(raw) == [] and list(lake.list_files(raw)) == []
    leftovers = [entry.name for entry in os.scandir(folder)]
    assert leftovers and all(name.startswith(".") for name in leftovers), leftovers
    dataset = pads.dataset(str(lake.local_path(raw)), format="parquet", partitioning="hive")
    assert dataset.files == [], "a hidden temporary is invisible to Parquet dataset readers"

    assert cli.main(INGEST) == 0, "the retry (the task run again) succeeds"
    staged = lake.uri_of(f"{lake.partition(raw, DAY)}/{storage.DATA_FILE}")
    assert f"{ROWS} rows staged at {staged}" in capsys.readouterr().out
    assert lake.partitions(raw) == [DAY]
    assert lake.read_table(raw, DAY).equals(drop)
