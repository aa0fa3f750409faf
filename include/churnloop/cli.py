"""The ``churnloop`` command: every routine step, runnable from a shell without Airflow."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_settings import SettingsError

from churnloop.cli_arguments import (
    CANARY_ARGUMENTS,
    DATASET,
    DEMO_ARGUMENTS,
    DRIFT_REPORT_ARGUMENTS,
    FEATURE_DAY,
    MATERIALIZE_ARGUMENTS,
    PARTITION_DAY,
    ROLLBACK_ARGUMENTS,
    SERVE_ARGUMENTS,
    SIMULATE_ARGUMENTS,
    Argument,
    argument,
)
from churnloop.demo.run import DemoPlan
from churnloop.demo.simulation import (
    InvalidSimulation,
    Scenario,
    simulate,
)
from churnloop.redaction import redact
from churnloop.settings import Settings, configuration_errors, get_settings

INTERNAL_HEADING = "internal (setup run by make, docker compose and Airflow tasks)"


def _airflow_env(args: argparse.Namespace, settings: Settings) -> int:
    """Print ``export`` lines for the embedded Airflow (used by ``make airflow``)."""
    from churnloop.orchestration.environment import airflow_environment

    for name, value in airflow_environment(settings).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _mlflow_ui(args: argparse.Namespace, settings: Settings) -> int:
    """Serve MLflow's UI on loopback over the embedded profile's store (``make mlflow``);
    a tracking server (production profile) is its own UI."""
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


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the model server (uvicorn) until interrupted, on ``--host``/``--port`` where given,
    else on the settings' serving_host:serving_port."""
    from churnloop.serving.app import run_server

    given = {"serving_host": args.host, "serving_port": args.port}
    run_server(settings.model_copy(update={k: v for k, v in given.items() if v is not None}))
    return 0


def _feast_yaml(args: argparse.Namespace, settings: Settings) -> int:
    """Render feature_repo/feature_store.yaml for the ``feast`` CLI and UI."""
    from churnloop.features.feast_config import write_feature_store_yaml

    print(write_feature_store_yaml(settings))
    return 0


def _feast_apply(args: argparse.Namespace, settings: Settings) -> int:
    """Register the Feast definitions of feature_repo/ (idempotent)."""
    from churnloop.features.feast_config import apply_definitions

    apply_definitions(settings)
    return 0


def _build_features(args: argparse.Namespace, settings: Settings) -> int:
    """Build one day's feature partition from the validated snapshots."""
    from churnloop.features.build import build_feature_partition

    print(build_feature_partition(settings, args.day))
    return 0


def _materialize(args: argparse.Namespace, settings: Settings) -> int:
    """Write one day's features (and the overlap before it) to the online store."""
    from churnloop.features.materialize import materialize_day

    print(materialize_day(settings, args.day, args.overlap_days))
    return 0


def _drift_report(args: argparse.Namespace, settings: Settings) -> int:
    """Compare two Parquet files, save the day's drift report, print the verdict and link."""
    import pandas as pd

    from churnloop.links import report_url
    from churnloop.monitoring.effect_sizes import compute_drift
    from churnloop.monitoring.report import build_report, save_report

    reference, current = pd.read_parquet(args.reference), pd.read_parquet(args.current)
    result = compute_drift(reference, current, args.columns)
    notes = [f"reference: {args.reference}", f"current: {args.current}"]
    report = build_report(reference, current, result, title=f"Drift {args.day}", notes=notes)
    paths = save_report(settings, args.day, report)
    print(result.summary)
    print(f"report: {report_url(settings, paths['html'])}")
    return 0


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Stage one day's landing drop in raw/ (schema-coerced), as the ingest task does."""
    from churnloop.validation.ingest import ingest_day

    result = ingest_day(settings, args.dataset, args.day)
    print(f"{result.rows} rows staged at {result.staged_uri}")
    if result.off_contract:
        print(f"off contract, left to validation: {', '.join(result.off_contract)}")
    return 0


def _validate(args: argparse.Namespace, settings: Settings) -> int:
    """Validate one day's raw partition: publish it to validated/ or quarantine it."""
    from churnloop.validation.partition import validate_partition

    outcome = validate_partition(settings, args.dataset, args.day)
    print(f"{outcome.rows} rows passed, published to {outcome.uri}")
    print(f"Data Docs: {outcome.data_docs_url}")
    return 0


def _validation_setup(args: argparse.Namespace, settings: Settings) -> int:
    """Give every GX suite its asset, validation definition and checkpoint (idempotent)."""
    from churnloop.validation.project import setup_gx_project

    added = setup_gx_project(settings)
    print("\n".join(f"added {what}" for what in added) or "nothing to add")
    return 0


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    """Move ``@champion`` back to an earlier version and record why."""
    from churnloop.champion import rollback

    entry = rollback(settings, args.to_version, args.reason)
    print(f"@champion is now version {entry.version} (was {entry.replaced}): {entry.reason}")
    return 0


def _canary(args: argparse.Namespace, settings: Settings) -> int:
    """Print the running canary, or end it by hand with a reason."""
    from churnloop.canary import controller

    if args.action == "status":
        print(controller.describe(settings))
        return 0
    end = controller.abort if args.action == "abort" else controller.finish
    version = end(settings, args.reason or "")
    verb = "rolled back" if args.action == "abort" else "promoted to @champion"
    print(f"canary of v{version} {verb}: {args.reason}")
    return 0


def _champion_history(args: argparse.Namespace, settings: Settings) -> int:
    """Print which version was champion from when to when, and why; each canary's steps."""
    from churnloop.champion import history_events

    entries = history_events(settings)
    if not entries:
        print(f"model {settings.model_name!r} has had no champion yet")
    for entry in entries:
        print(entry.describe())
    return 0


def _show_settings(args: argparse.Namespace, settings: Settings) -> int:
    """Print the profile and every setting by its variable, credentials masked."""
    from churnloop.settings_listing import settings_listing

    print(settings_listing(settings, as_json=args.json))
    return 0


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Write demo snapshot and label drops to the landing zone; progress goes to stderr."""
    breaks = dict(args.breaks)
    if len(breaks) < len(args.breaks):
        raise InvalidSimulation("two --break options name the same day")
    scenario = Scenario(args.scenario, args.drift_start, args.ramp_days, breaks)
    summary = simulate(
        settings,
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


def _airflow_setup(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate the embedded Airflow DB and create the pools the DAGs use."""
    from churnloop.orchestration.environment import prepare_airflow

    prepare_airflow(settings, sys.stdout)
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    """Simulate, run the DAGs on the embedded default, print what happened and where to look."""
    from churnloop.demo.run import render_summary, run_demo

    summary = run_demo(DemoPlan(days=args.days, customers=args.customers))
    print(render_summary(summary))
    return 0


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, its one-line help, what it runs, and its arguments."""

    name: str
    help: str
    handler: Callable[[argparse.Namespace, Settings], int]
    arguments: tuple[Argument, ...] = ()
    description: str | None = None


COMMANDS = (
    Command("demo", "run the whole loop on the embedded default", _demo, DEMO_ARGUMENTS),
    Command(
        "simulate",
        "write demo customer snapshots and churn labels to the landing zone",
        _simulate,
        SIMULATE_ARGUMENTS,
        description="Write daily snapshot drops and 30-day-late label drops, with optional "
        "drift from --drift-start and broken drops on chosen days.",
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
    Command("build-features", "build one day's feature partition", _build_features, (FEATURE_DAY,)),
    Command(
        "materialize",
        "write one day's features to the online store",
        _materialize,
        MATERIALIZE_ARGUMENTS,
    ),
    Command(
        "drift-report",
        "compare two Parquet files and save the day's drift report in the lake",
        _drift_report,
        DRIFT_REPORT_ARGUMENTS,
    ),
    Command(
        "serve",
        "run the model server: serves @champion, follows the alias, logs predictions",
        _serve,
        SERVE_ARGUMENTS,
        description="FastAPI on uvicorn; OpenAPI docs at /docs.",
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
        "canary",
        "show, abort or finish the running canary of @candidate",
        _canary,
        CANARY_ARGUMENTS,
        description="status prints the step, share and every guardrail's reading now; abort "
        "rolls @candidate back, finish makes it @champion at once (the continuous_training "
        "run's canary task then fails or succeeds accordingly). Both need --reason.",
    ),
    Command(
        "champion-history",
        "which model version was champion, from when to when, and why; each canary's steps",
        _champion_history,
    ),
    Command(
        "mlflow-ui",
        "serve MLflow's UI on the embedded default's runs and models",
        _mlflow_ui,
        (
            argument(
                "--port", type=int, default=5000, help="port on 127.0.0.1 (default: %(default)s)"
            ),
        ),
    ),
    Command(
        "settings",
        "print the profile and every setting, by the CHURNLOOP_* variable that sets it",
        _show_settings,
        (argument("--json", action="store_true", help="print them as JSON"),),
        description="Print the active profile (embedded, production or mixed) and every "
        "setting as VARIABLE=value; credentials are masked.",
    ),
)
"""The commands for users, in the order ``--help`` lists them."""

INTERNAL_COMMANDS = (
    Command("airflow-env", "print the embedded Airflow environment", _airflow_env),
    Command("airflow-setup", "migrate Airflow's DB and create pools", _airflow_setup),
    Command("feast-yaml", "render feature_repo/feature_store.yaml from the settings", _feast_yaml),
    Command("feast-apply", "register the Feast definitions", _feast_apply),
    Command(
        "validation-setup",
        "add the GX asset, validation definition and checkpoint of any new suite",
        _validation_setup,
    ),
)
"""Setup steps that make, docker compose and Airflow tasks run; ``--help`` lists them last,
under `INTERNAL_HEADING`."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="churnloop",
        description=__doc__,
        epilog=_internal_listing(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )
    for command in COMMANDS + INTERNAL_COMMANDS:
        listed = {"help": command.help} if command in COMMANDS else {}
        subparser = subparsers.add_parser(
            command.name, description=command.description or command.help, **listed
        )
        for each in command.arguments:
            subparser.add_argument(*each.flags, **each.options)
        subparser.set_defaults(handler=command.handler)
    return parser


def _internal_listing() -> str:
    """`INTERNAL_COMMANDS` under a heading of their own, laid out as argparse lists the
    others: argparse has one list of subcommands, and they are left out of it (no help)."""
    column = min(max(len(command.name) for command in COMMANDS) + 4, 24)
    lines = [f"{INTERNAL_HEADING}:"]
    for command in INTERNAL_COMMANDS:
        name = f"    {command.name}"
        if len(name) + 2 > column:
            lines.append(name)
            name = ""
        lines += textwrap.wrap(
            command.help, 78, initial_indent=name.ljust(column), subsequent_indent=" " * column
        )
    return "\n".join(lines)


def _read_settings(command: str) -> Settings | None:
    """The settings, or None once each configuration error is printed, named by the
    ``CHURNLOOP_*`` variable to fix."""
    try:
        return get_settings()
    except (ValidationError, SettingsError) as error:
        for line in configuration_errors(error):
            print(f"churnloop {command}: error: {redact(line)}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    """Run a command; bad input or a bad ``CHURNLOOP_*`` variable ends with its message and
    exit code 2 (1: quarantined, or the demo's Airflow failed: the message says where its
    logs are)."""
    from churnloop.demo.airflow_stack import AirflowStackError
    from churnloop.errors import DataError, DataValidationError

    args = build_parser().parse_args(argv)
    settings = _read_settings(args.command)
    if settings is None:
        return 2
    try:
        return args.handler(args, settings)
    except (DataValidationError, AirflowStackError) as error:
        print(f"churnloop {args.command}: {redact(str(error))}", file=sys.stderr)
        return 1
    except (DataError, FileNotFoundError, ValueError) as error:
        print(f"churnloop {args.command}: error: {redact(str(error))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
