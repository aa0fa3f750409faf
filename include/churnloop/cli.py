"""The ``churnloop`` command: every routine step, runnable from a shell without Airflow."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from churnloop.settings import get_settings


def _airflow_env(args: argparse.Namespace) -> int:
    """Print ``export`` lines for the embedded Airflow (used by ``make airflow``)."""
    from churnloop.orchestration.environment import airflow_environment

    for name, value in airflow_environment(get_settings()).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _mlflow_ui(args: argparse.Namespace) -> int:
    """Serve MLflow's UI on loopback over the embedded profile's store (``make mlflow``);
    a tracking server (production profile) is its own UI."""
    settings = get_settings()
    store = settings.mlflow_tracking_uri
    if store.startswith(("http://", "https://")):
        print(f"MLflow runs as a tracking server: open {store}")
        return 0
    database = store.removeprefix("sqlite:///")
    if database != store and not os.path.exists(database):
        raise FileNotFoundError(f"no MLflow runs yet ({database}): run `make demo` first")
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
    command += ["--port", str(args.port), "--workers", "1", "--backend-store-uri", store]
    command += ["--default-artifact-root", settings.mlflow_artifact_uri]
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    print(f"MLflow UI on http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    os.execv(sys.executable, command)


def _serve(args: argparse.Namespace) -> int:
    """Run the model server (uvicorn) on serving_host:serving_port until interrupted."""
    from churnloop.serving.app import run_server

    run_server(get_settings())
    return 0


def _feast_yaml(args: argparse.Namespace) -> int:
    """Render feature_repo/feature_store.yaml for the ``feast`` CLI and UI."""
    from churnloop.features.feast_config import write_feature_store_yaml

    print(write_feature_store_yaml(get_settings()))
    return 0


def _feast_apply(args: argparse.Namespace) -> int:
    """Register the Feast definitions of feature_repo/ (idempotent)."""
    from churnloop.features.feast_config import apply_definitions

    apply_definitions(get_settings())
    return 0


def _build_features(args: argparse.Namespace) -> int:
    """Build one day's feature partition from the validated snapshots."""
    from churnloop.features.build import build_feature_partition

    print(build_feature_partition(get_settings(), args.day))
    return 0


def _materialize(args: argparse.Namespace) -> int:
    """Write one day's features (and the overlap before it) to the online store."""
    from churnloop.features.materialize import materialize_day

    print(materialize_day(get_settings(), args.day, args.overlap_days))
    return 0


def _drift_report(args: argparse.Namespace) -> int:
    """Compare two Parquet files, save the day's drift report, print the verdict and link."""
    import pandas as pd

    from churnloop.links import report_url
    from churnloop.monitoring.effect_sizes import compute_drift
    from churnloop.monitoring.report import build_report, save_report

    settings = get_settings()
    reference, current = pd.read_parquet(args.reference), pd.read_parquet(args.current)
    result = compute_drift(reference, current, args.columns)
    notes = [f"reference: {args.reference}", f"current: {args.current}"]
    report = build_report(reference, current, result, title=f"Drift {args.day}", notes=notes)
    paths = save_report(settings, args.day, report)
    print(result.summary)
    print(f"report: {report_url(settings, paths['html'])}")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    """Stage one day's landing drop in raw/ (schema-coerced), as the ingest task does."""
    from churnloop.validation.ingest import ingest_day

    result = ingest_day(get_settings(), args.dataset, args.day)
    print(f"{result.rows} rows staged at {result.staged_uri}")
    if result.off_contract:
        print(f"off contract, left to validation: {', '.join(result.off_contract)}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    """Validate one day's raw partition: publish it to validated/ or quarantine it."""
    from churnloop.validation.partition import validate_partition

    outcome = validate_partition(get_settings(), args.dataset, args.day)
    print(f"{outcome.rows} rows passed, published to {outcome.uri}")
    print(f"Data Docs: {outcome.data_docs_url}")
    return 0


def _validation_setup(args: argparse.Namespace) -> int:
    """Give every GX suite its asset, validation definition and checkpoint (idempotent)."""
    from churnloop.validation.project import setup_gx_project

    added = setup_gx_project(get_settings())
    print("\n".join(f"added {what}" for what in added) or "nothing to add")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    """Move ``@champion`` back to an earlier version and record why."""
    from churnloop.champion import rollback

    entry = rollback(get_settings(), args.to_version, args.reason)
    print(f"@champion is now version {entry.version} (was {entry.replaced}): {entry.reason}")
    return 0


def _champion_history(args: argparse.Namespace) -> int:
    """Print which version was champion from when to when, and why."""
    from churnloop.champion import champion_history

    settings = get_settings()
    entries = champion_history(settings)
    if not entries:
        print(f"model {settings.model_name!r} has had no champion yet")
    for entry in entries:
        print(entry.describe())
    return 0


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


def _breakage(text: str) -> tuple[dt.date, str]:
    day, separator, kind = text.partition(":")
    if not separator or not kind:
        raise argparse.ArgumentTypeError(
            f"expected DAY:KIND (e.g. 2026-01-20:null_keys), got {text!r}"
        )
    return _day(day), kind


def _simulate(args: argparse.Namespace) -> int:
    """Write demo snapshot and label drops to the landing zone; progress goes to stderr."""
    from churnloop.demo.simulation import InvalidSimulation, Scenario, simulate

    breaks = dict(args.breaks)
    if len(breaks) < len(args.breaks):
        raise InvalidSimulation("two --break options name the same day")
    ramp = {} if args.ramp_days is None else {"ramp_days": args.ramp_days}
    scenario = Scenario(args.scenario, args.drift_start, breaks=breaks, **ramp)
    summary = simulate(
        get_settings(),
        args.start,
        args.days,
        args.customers,
        scenario,
        seed=args.seed,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        history_start=args.history_start,
    )
    print(summary)
    return 0


def _airflow_setup(args: argparse.Namespace) -> int:
    """Migrate the embedded Airflow DB and create the pools the DAGs use."""
    from churnloop.orchestration.environment import prepare_airflow

    prepare_airflow(get_settings(), sys.stdout)
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Simulate, run the DAGs on the embedded default, print what happened and where to look."""
    from churnloop.demo.run import DemoPlan, render_summary, run_demo

    summary = run_demo(DemoPlan(days=args.days, customers=args.customers))
    print(render_summary(summary))
    return 0


@dataclass(frozen=True)
class Argument:
    """One ``add_argument`` call: its flags (or positional name) and options."""

    flags: tuple[str, ...]
    options: dict[str, Any]


def _argument(*flags: str, **options: Any) -> Argument:
    return Argument(flags, options)


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, its one-line help, what it runs, and its arguments."""

    name: str
    help: str
    handler: Callable[[argparse.Namespace], int]
    arguments: tuple[Argument, ...] = ()
    description: str | None = None


FEATURE_DAY = _argument("day", type=_day, help="feature day (YYYY-MM-DD)")
DATASET = _argument("dataset", help="customer_snapshots or churn_labels")
PARTITION_DAY = _argument("day", type=_day, help="partition day (YYYY-MM-DD)")

DEMO_ARGUMENTS = (
    _argument("--days", type=int, default=60, help="days to simulate and run (>= 50)"),
    _argument("--customers", type=int, default=2_000, help="customers per day"),
)

DRIFT_REPORT_ARGUMENTS = (
    _argument("--reference", required=True, help="Parquet file of the reference"),
    _argument("--current", required=True, help="Parquet file of the current data"),
    _argument("--day", type=_day, required=True, help="report day (YYYY-MM-DD)"),
    _argument(
        "--columns",
        nargs="+",
        help="columns to compare (default: the model's features, churnloop.features.definition)",
    ),
)

ROLLBACK_ARGUMENTS = (
    _argument("--to", dest="to_version", type=int, help="version (default: previous)"),
    _argument("--reason", required=True, help="why; recorded in the champion history"),
)

SIMULATE_ARGUMENTS = (
    _argument("--start", type=_day, required=True, help="first day (YYYY-MM-DD)"),
    _argument("--days", type=int, default=60, help="days to write (default: 60)"),
    _argument("--customers", type=int, default=2000, help="rows a day (default: 2000)"),
    _argument(
        "--scenario",
        default="baseline",
        help="baseline, covariate_drift or concept_drift (default: baseline)",
    ),
    _argument("--drift-start", type=_day, help="first drifted day (drift scenarios)"),
    _argument("--ramp-days", type=int, help="days until the drift is complete (default: 14)"),
    _argument(
        "--break",
        dest="breaks",
        type=_breakage,
        action="append",
        default=[],
        metavar="DAY:KIND",
        help="break that day's snapshot drop, e.g. 2026-01-20:out_of_range (repeatable; "
        "an unknown KIND lists the valid ones)",
    ),
    _argument("--seed", type=int, default=42, help="random seed (default: 42)"),
    _argument(
        "--history-start",
        type=_day,
        help="first day that had snapshots, when extending an earlier simulation "
        "(labels are due from 30 days after it; default: --start)",
    ),
)

COMMANDS = (
    Command("airflow-env", "print the embedded Airflow environment", _airflow_env),
    Command("airflow-setup", "migrate Airflow's DB and create pools", _airflow_setup),
    Command("demo", "run the whole loop on the embedded default", _demo, DEMO_ARGUMENTS),
    Command(
        "mlflow-ui",
        "serve MLflow's UI on the embedded default's runs and models",
        _mlflow_ui,
        (_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default: 5000)"),),
    ),
    Command(
        "serve",
        "run the model server: serves @champion, follows the alias, logs predictions",
        _serve,
        description="FastAPI on uvicorn at CHURNLOOP_SERVING_HOST:CHURNLOOP_SERVING_PORT "
        "(default 127.0.0.1:8000); OpenAPI docs at /docs.",
    ),
    Command("feast-yaml", "render feature_repo/feature_store.yaml from the settings", _feast_yaml),
    Command("feast-apply", "register the Feast definitions", _feast_apply),
    Command("build-features", "build one day's feature partition", _build_features, (FEATURE_DAY,)),
    Command(
        "materialize",
        "write one day's features to the online store",
        _materialize,
        (
            FEATURE_DAY,
            _argument(
                "--overlap-days", type=int, help="earlier days to re-send (default: from settings)"
            ),
        ),
    ),
    Command(
        "drift-report",
        "compare two Parquet files and save the day's drift report in the lake",
        _drift_report,
        DRIFT_REPORT_ARGUMENTS,
    ),
    Command(
        "ingest",
        "stage a day's landing drop in raw/ (fails on a missing, empty or corrupt drop)",
        _ingest,
        (DATASET, PARTITION_DAY),
    ),
    Command(
        "validate",
        "validate a day's raw partition (pass: to validated/, fail: to quarantine/)",
        _validate,
        (DATASET, PARTITION_DAY),
    ),
    Command(
        "validation-setup",
        "add the GX asset, validation definition and checkpoint of any new suite",
        _validation_setup,
    ),
    Command(
        "rollback",
        "serve an earlier model version again (moves @champion)",
        _rollback,
        ROLLBACK_ARGUMENTS,
        description="Move @champion to --to VERSION, or to @previous-champion; the replaced "
        "champion becomes @previous-champion and the move is recorded in the champion history.",
    ),
    Command(
        "champion-history",
        "which model version was champion, from when to when, and why",
        _champion_history,
    ),
    Command(
        "simulate",
        "write demo customer snapshots and churn labels to the landing zone",
        _simulate,
        SIMULATE_ARGUMENTS,
        description="Write daily snapshot drops and 30-day-late label drops, with optional "
        "drift from --drift-start and broken drops on chosen days.",
    ),
)
"""Every ``churnloop`` subcommand, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="churnloop", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        subparser = subparsers.add_parser(
            command.name, help=command.help, description=command.description
        )
        for argument in command.arguments:
            subparser.add_argument(*argument.flags, **argument.options)
        subparser.set_defaults(handler=command.handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; bad input ends with its message and exit code 2 (1: quarantined, or
    the demo's Airflow failed: the message says where its logs are)."""
    from churnloop.demo.airflow_stack import AirflowStackError
    from churnloop.errors import DataError, DataValidationError
    from churnloop.redaction import redact

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (DataValidationError, AirflowStackError) as error:
        print(f"churnloop {args.command}: {redact(str(error))}", file=sys.stderr)
        return 1
    except (DataError, FileNotFoundError, ValueError) as error:
        print(f"churnloop {args.command}: error: {redact(str(error))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
