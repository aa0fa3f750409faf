"""How fast the DAG files parse, and what a task pays to import its libraries.

Medians of ``--runs`` runs: ``airflow dags report`` per DAG file alone in a DAGS_FOLDER, each
file's import after ``airflow.sdk``, and each task's imports fresh and in a fork of a preloaded
process. Run: ``.venv/bin/python bench/bench_dag_parse.py`` (bench/results/dag_parse.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import write_results

ROOT = Path(__file__).resolve().parents[1]
DAGS = sorted(path for path in (ROOT / "dags").glob("*.py") if not path.name.startswith("_"))
BIN = Path(sys.executable).parent

TASK_IMPORTS = {
    "customer_data.ingest_*": [
        "churnloop.orchestration.task_support",
        "churnloop.validation.ingest",
    ],
    "customer_data.validate_*": [
        "churnloop.orchestration.task_support",
        "churnloop.validation.partition",
    ],
    "customer_data.build_features": [
        "churnloop.features.build",
        "churnloop.orchestration.task_support",
    ],
    "customer_data.materialize_features": [
        "churnloop.features.materialize",
        "churnloop.orchestration.task_support",
    ],
    "continuous_training.plan": [
        "churnloop.orchestration.task_support",
        "churnloop.training.plan",
    ],
    "continuous_training.build_training_set": [
        "churnloop.training.steps",
        "churnloop.features.training_set",
    ],
    "continuous_training.validate_training_set": [
        "churnloop.orchestration.task_support",
        "churnloop.training.steps",
        "churnloop.validation.partition",
    ],
    "continuous_training.train_challenger": [
        "churnloop.orchestration.task_support",
        "churnloop.training.steps",
        "churnloop.features.feast_config",
        "churnloop.training.challenger",
        "churnloop.training.split",
    ],
    "continuous_training.evaluate_challenger": [
        "churnloop.training.steps",
        "churnloop.registry",
        "churnloop.training.gate",
        "churnloop.training.promotion",
        "churnloop.training.split",
    ],
    "continuous_training.promote_challenger": [
        "churnloop.training.steps",
        "churnloop.training.gate",
        "churnloop.training.model_card",
        "churnloop.training.promotion",
    ],
    "continuous_training.deploy_champion": [
        "churnloop.orchestration.task_support",
        "churnloop.serving.deploy",
        "churnloop.training.challenger",
        "churnloop.training.metrics",
    ],
    "drift_report.check_drift, emit_churn_drift": [
        "churnloop.monitoring.daily_check",
        "churnloop.orchestration.task_support",
    ],
}
"""What each task imports: its body's imports (dags/), then what the function it calls
imports when called (churnloop.training.steps and churnloop.serving.deploy import lazily)."""

_TIMED_IMPORT = """
import airflow.sdk, importlib, json, sys, time
started, started_cpu = time.perf_counter(), time.process_time()
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
print(json.dumps([time.perf_counter() - started, time.process_time() - started_cpu]))
"""

_FORKED_IMPORT = """
import airflow.sdk, importlib, json, os, sys, time
from churnloop.orchestration.executor import preload
preload()
for modules in json.loads(sys.argv[1]):
    for _ in range(int(sys.argv[2])):
        read, write = os.pipe()
        child = os.fork()
        if child == 0:
            started, started_cpu = time.perf_counter(), time.process_time()
            for name in modules:
                importlib.import_module(name)
            seconds = [time.perf_counter() - started, time.process_time() - started_cpu]
            os.write(write, json.dumps(seconds).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            print(json.dumps([modules, json.loads(pipe.read())]), flush=True)
        os.waitpid(child, 0)
"""


def airflow_environment(home: str) -> dict[str, str]:
    """What ``churnloop airflow-env`` exports for a throwaway home, with its DB migrated."""
    from churnloop.orchestration.environment import airflow_environment
    from churnloop.settings import Settings

    environment = {**os.environ, "CHURNLOOP_HOME": home}
    environment.update(airflow_environment(Settings(home=Path(home)), environ={}))
    subprocess.run(
        [str(BIN / "airflow"), "db", "migrate"], env=environment, check=True, capture_output=True
    )
    return environment


def dags_report_seconds(dag: Path, environment: dict[str, str], folder: Path) -> float:
    """The parse duration ``airflow dags report`` gives ``dag`` alone in a DAGS_FOLDER."""
    alone = folder / dag.stem
    alone.mkdir(exist_ok=True)
    if not (alone / dag.name).exists():
        (alone / dag.name).symlink_to(dag)
    result = subprocess.run(
        [str(BIN / "airflow"), "dags", "report", "-o", "json"],
        env={**environment, "AIRFLOW__CORE__DAGS_FOLDER": str(alone)},
        capture_output=True,
        text=True,
        check=True,
    )
    (report,) = json.loads(result.stdout.strip().splitlines()[-1])
    hours, minutes, seconds = report["duration"].split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def import_seconds(dag: Path) -> tuple[float, float]:
    """Wall and CPU seconds of executing ``dag`` in a fresh interpreter after airflow.sdk."""
    probe = (
        "import importlib.util, json, time\n"
        "import airflow.sdk\n"
        f"spec = importlib.util.spec_from_file_location('probe', {str(dag)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "started, started_cpu = time.perf_counter(), time.process_time()\n"
        "spec.loader.exec_module(module)\n"
        "print(json.dumps([time.perf_counter() - started, time.process_time() - started_cpu]))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    wall, cpu = json.loads(output.strip().splitlines()[-1])
    return wall, cpu


def task_import_fresh(modules: list[str]) -> tuple[float, float]:
    command = [sys.executable, "-c", _TIMED_IMPORT, json.dumps(modules)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    wall, cpu = json.loads(output.strip().splitlines()[-1])
    return wall, cpu


def task_import_forked(runs: int) -> dict[str, list[tuple[float, float]]]:
    """Each task's imports in ``runs`` forks of one preloaded process."""
    groups = list(TASK_IMPORTS.values())
    result = subprocess.run(
        [sys.executable, "-c", _FORKED_IMPORT, json.dumps(groups), str(runs)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, list[tuple[float, float]]] = {}
    by_modules = {json.dumps(modules): task for task, modules in TASK_IMPORTS.items()}
    for line in result.stdout.splitlines():
        if line.startswith("[["):
            modules, seconds = json.loads(line)
            figures.setdefault(by_modules[json.dumps(modules)], []).append(tuple(seconds))
    return figures


def _median(pairs: list[tuple[float, float]]) -> dict[str, float]:
    return {
        "seconds": statistics.median(wall for wall, _ in pairs),
        "cpu_seconds": statistics.median(cpu for _, cpu in pairs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    dags = []
    with tempfile.TemporaryDirectory(prefix="bench-dag-parse-") as home:
        environment = airflow_environment(home)
        for dag in DAGS:
            report = [dags_report_seconds(dag, environment, Path(home)) for _ in range(args.runs)]
            imports = [import_seconds(dag) for _ in range(args.runs)]
            figures = {
                "file": dag.name,
                "dags_report_seconds": statistics.median(report),
                "import": _median(imports),
                "runs": args.runs,
            }
            dags.append(figures)
            timed = figures["import"]
            print(
                f"{dag.name}: dags report {figures['dags_report_seconds']:.3f} s, import "
                f"{timed['seconds']:.3f} s (CPU {timed['cpu_seconds']:.3f})",
                flush=True,
            )

    forked = task_import_forked(args.runs)
    tasks = []
    for task, modules in TASK_IMPORTS.items():
        fresh = _median([task_import_fresh(modules) for _ in range(args.runs)])
        preloaded = _median(forked[task])
        tasks.append(
            {
                "task": task,
                "modules": modules,
                "fresh": fresh,
                "preloaded_fork": preloaded,
                "runs": args.runs,
            }
        )
        print(
            f"{task}: fresh {fresh['seconds']:.2f} s (CPU {fresh['cpu_seconds']:.2f}), "
            f"preloaded fork {preloaded['seconds']:.3f} s (CPU {preloaded['cpu_seconds']:.3f})",
            flush=True,
        )
    write_results("dag_parse", {"dags": dags, "task_imports": tasks})


if __name__ == "__main__":
    main()
