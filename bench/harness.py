"""What the whole-loop benchmarks share: per-stage time and peak memory, results as JSON.

A stage is timed in wall-clock and CPU seconds (the process, all threads: the steadier
figure on a shared machine), and its peak RSS is the process's high-water mark over the
stage alone: Linux resets the mark on ``/proc/self/clear_refs`` (``5``), so each stage's
peak is its own, not the run's. Every benchmark writes its figures to
``bench/results/<name>.json`` (committed: the numbers behind ``docs/benchmarks.md``);
``bench/run_all.py`` composes the summary table from them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


@dataclass
class StageFigures:
    """One stage of one run."""

    stage: str
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float


@dataclass
class StageClock:
    """Collects ``StageFigures`` of a run, stage by stage (see ``stage``)."""

    stages: list[StageFigures] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        reset_peak_rss()
        started, started_cpu = time.perf_counter(), time.process_time()
        yield
        self.stages.append(
            StageFigures(
                stage=name,
                seconds=time.perf_counter() - started,
                cpu_seconds=time.process_time() - started_cpu,
                peak_rss_mb=peak_rss_mb(),
            )
        )

    def as_dicts(self) -> list[dict[str, Any]]:
        return [asdict(figures) for figures in self.stages]


def reset_peak_rss() -> None:
    """Make the high-water mark the current RSS (Linux >= 4.0; a no-op elsewhere)."""
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """The process's RSS high-water mark (VmHWM) since the last reset, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def summarize(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per stage across runs: median seconds and CPU seconds, the largest peak RSS."""
    names = list(dict.fromkeys(stage["stage"] for run in runs for stage in run))
    rows = []
    for name in names:
        figures = [stage for run in runs for stage in run if stage["stage"] == name]
        rows.append(
            {
                "stage": name,
                "runs": len(figures),
                "seconds": statistics.median(f["seconds"] for f in figures),
                "cpu_seconds": statistics.median(f["cpu_seconds"] for f in figures),
                "peak_rss_mb": max(f["peak_rss_mb"] for f in figures),
                "all_seconds": [round(f["seconds"], 3) for f in figures],
            }
        )
    return rows


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of ``values`` (p99: the value 99% of them do not
    exceed), the one definition the latency tables use."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def machine() -> dict[str, Any]:
    """Cores, memory and load: what the figures of a shared machine must be read against."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(pages / 1024**3, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def commit() -> str:
    """The checkout's short commit, ``+dirty`` when tracked files have local changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=BENCH_DIR, capture_output=True, text=True
        ).stdout.strip()

    return (git("rev-parse", "--short", "HEAD") or "unknown") + (
        "+dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    )


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """``bench/results/<name>.json``: the payload with when and where it was measured."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    document = {
        "benchmark": name,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **payload,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path
