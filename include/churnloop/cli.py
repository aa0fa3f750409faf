"""The ``churnloop`` command: every routine step, runnable from a shell without Airflow."""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys

from churnloop.settings import get_settings


def _airflow_env(args: argparse.Namespace) -> int:
    """Print ``export`` lines for the embedded Airflow (used by ``make airflow``)."""
    from churnloop.orchestration.environment import airflow_environment

    for name, value in airflow_environment(get_settings()).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    """Run the model server (uvicorn) on serving_host:serving_port until interrupted."""
    from churnloop.serving.app import run_server

    run_server(get_settings())
    return 0


def _feast_yaml(args: argparse.Namespace) -> int:
    """Render feature_repo/feature_store.yaml for the ``feast`` CLI and UI."""
    from churnloop.features.store import write_feature_store_yaml

    print(write_feature_store_yaml(get_settings()))
    return 0


def _feast_apply(args: argparse.Namespace) -> int:
    """Register the Feast definitions of feature_repo/ (idempotent)."""
    from churnloop.features.store import apply_definitions

    apply_definitions(get_settings())
    return 0


def _build_features(args: argparse.Namespace) -> int:
    """Build one day's feature partition from the validated snapshots."""
    from churnloop.features.store import build_feature_partition

    print(build_feature_partition(get_settings(), args.day))
    return 0


def _materialize(args: argparse.Namespace) -> int:
    """Write one day's features (and the overlap before it) to the online store."""
    from churnloop.features.store import materialize_day

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
    from churnloop.registry import rollback

    entry = rollback(get_settings(), args.to_version, args.reason)
    print(f"@champion is now version {entry.version} (was {entry.replaced}): {entry.reason}")
    return 0


def _champion_history(args: argparse.Namespace) -> int:
    """Print which version was champion from when to when, and why."""
    from churnloop.registry import champion_history

    settings = get_settings()
    entries = champion_history(settings)
    if not entries:
        print(f"model {settings.model_name!r} has had no champion yet")
    for entry in entries:
        print(entry.as_line())
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="churnloop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    env = commands.add_parser("airflow-env", help="print the embedded Airflow environment")
    env.set_defaults(handler=_airflow_env)
    setup = commands.add_parser("airflow-setup", help="migrate Airflow's DB and create pools")
    setup.set_defaults(handler=_airflow_setup)

    demo = commands.add_parser("demo", help="run the whole loop on the embedded default")
    demo.add_argument("--days", type=int, default=60, help="days to simulate and run (>= 50)")
    demo.add_argument("--customers", type=int, default=2_000, help="customers per day")
    demo.set_defaults(handler=_demo)

    # Each module's commands are added below, one block per module.

    serve = commands.add_parser(
        "serve",
        help="run the model server: serves @champion, follows the alias, logs predictions",
        description="FastAPI on uvicorn at CHURNLOOP_SERVING_HOST:CHURNLOOP_SERVING_PORT "
        "(default 127.0.0.1:8000); OpenAPI docs at /docs.",
    )
    serve.set_defaults(handler=_serve)

    feast_yaml = commands.add_parser(
        "feast-yaml", help="render feature_repo/feature_store.yaml from the settings"
    )
    feast_yaml.set_defaults(handler=_feast_yaml)
    feast_apply = commands.add_parser("feast-apply", help="register the Feast definitions")
    feast_apply.set_defaults(handler=_feast_apply)
    build = commands.add_parser("build-features", help="build one day's feature partition")
    build.add_argument("day", type=_day, help="feature day (YYYY-MM-DD)")
    build.set_defaults(handler=_build_features)
    materialize = commands.add_parser(
        "materialize", help="write one day's features to the online store"
    )
    materialize.add_argument("day", type=_day, help="feature day (YYYY-MM-DD)")
    materialize.add_argument(
        "--overlap-days", type=int, help="earlier days to re-send (default: from settings)"
    )
    materialize.set_defaults(handler=_materialize)

    drift = commands.add_parser(
        "drift-report",
        help="compare two Parquet files and save the day's drift report in the lake",
    )
    drift.add_argument("--reference", required=True, help="Parquet file of the reference")
    drift.add_argument("--current", required=True, help="Parquet file of the current data")
    drift.add_argument("--day", type=_day, required=True, help="report day (YYYY-MM-DD)")
    drift.add_argument(
        "--columns", nargs="+", help="columns to compare (default: all but id, time, label)"
    )
    drift.set_defaults(handler=_drift_report)

    day_steps = (
        (
            "ingest",
            "stage a day's landing drop in raw/ (fails on a missing, empty or corrupt drop)",
            _ingest,
        ),
        (
            "validate",
            "validate a day's raw partition (pass: to validated/, fail: to quarantine/)",
            _validate,
        ),
    )
    for name, help_text, handler in day_steps:
        step = commands.add_parser(name, help=help_text)
        step.add_argument("dataset", help="customer_snapshots or churn_labels")
        step.add_argument("day", type=_day, help="partition day (YYYY-MM-DD)")
        step.set_defaults(handler=handler)
    gx_setup = commands.add_parser(
        "validation-setup",
        help="add the GX asset, validation definition and checkpoint of any new suite",
    )
    gx_setup.set_defaults(handler=_validation_setup)

    back = commands.add_parser(
        "rollback",
        help="serve an earlier model version again (moves @champion)",
        description="Move @champion to --to VERSION, or to @previous-champion; the replaced "
        "champion becomes @previous-champion and the move is recorded in the champion history.",
    )
    back.add_argument("--to", dest="to_version", type=int, help="version (default: previous)")
    back.add_argument("--reason", required=True, help="why; recorded in the champion history")
    back.set_defaults(handler=_rollback)
    history = commands.add_parser(
        "champion-history", help="which model version was champion, from when to when, and why"
    )
    history.set_defaults(handler=_champion_history)

    sim = commands.add_parser(
        "simulate",
        help="write demo customer snapshots and churn labels to the landing zone",
        description="Write daily snapshot drops and 30-day-late label drops, with optional "
        "drift from --drift-start and broken drops on chosen days.",
    )
    sim.add_argument("--start", type=_day, required=True, help="first day (YYYY-MM-DD)")
    sim.add_argument("--days", type=int, default=60, help="days to write (default: 60)")
    sim.add_argument("--customers", type=int, default=2000, help="rows a day (default: 2000)")
    sim.add_argument(
        "--scenario",
        default="baseline",
        help="baseline, covariate_drift or concept_drift (default: baseline)",
    )
    sim.add_argument("--drift-start", type=_day, help="first drifted day (drift scenarios)")
    sim.add_argument("--ramp-days", type=int, help="days until the drift is complete (default: 14)")
    sim.add_argument(
        "--break",
        dest="breaks",
        type=_breakage,
        action="append",
        default=[],
        metavar="DAY:KIND",
        help="break that day's snapshot drop, e.g. 2026-01-20:out_of_range (repeatable; "
        "an unknown KIND lists the valid ones)",
    )
    sim.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    sim.add_argument(
        "--history-start",
        type=_day,
        help="first day that had snapshots, when extending an earlier simulation "
        "(labels are due from 30 days after it; default: --start)",
    )
    sim.set_defaults(handler=_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; bad input ends with its message and exit code 2 (1: quarantined, or
    the demo's Airflow failed: the message says where its logs are)."""
    from churnloop.demo.airflow_stack import AirflowStackError
    from churnloop.errors import DataError, DataValidationError

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (DataValidationError, AirflowStackError) as error:
        print(f"churnloop {args.command}: {error}", file=sys.stderr)
        return 1
    except (DataError, FileNotFoundError, ValueError) as error:
        print(f"churnloop {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
