"""Stopping the processes churnloop starts (model server, Airflow components) for good."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path


def stop_process_group(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM the process, SIGKILL whatever is left of its group after ``grace`` seconds.

    The process must have been started with ``start_new_session=True``, so its group
    holds what it started (an executor's workers and their tasks, say). Only the leader
    gets SIGTERM: a scheduler then lets its running tasks finish, where a SIGTERM to the
    whole group would kill them mid-task. Raises if a process of the group outlives
    SIGKILL: nothing started here may linger.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # children the leader left behind
    process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise RuntimeError(f"processes of group {process.pid} survived SIGKILL")


def process_stats() -> Iterator[tuple[int, list[str]]]:
    """Each live process's id and the fields of its ``/proc/<pid>/stat`` after the command
    name (``fields[1]`` is the parent's id, ``fields[3]`` the session, ``fields[11]`` and
    ``fields[12]`` the user and system clock ticks). Processes that exit while being read
    are skipped."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            yield int(stat.parent.name), stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
