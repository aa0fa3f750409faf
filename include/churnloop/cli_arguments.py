"""The ``churnloop`` command's arguments: their parsers, choices from the code's own
constants, and defaults shown in ``--help``."""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from typing import Any

from churnloop.demo.breakages import BREAKAGES
from churnloop.demo.run import DemoPlan
from churnloop.demo.simulation import DEFAULT_RAMP_DAYS, SCENARIOS, Scenario
from churnloop.settings import Settings, env_variable
from churnloop.validation.ingest import CONTRACTS

LANDING_DATASETS = tuple(CONTRACTS)


@dataclass(frozen=True)
class Argument:
    """One ``add_argument`` call: its flags (or positional name) and options."""

    flags: tuple[str, ...]
    options: dict[str, Any]


def argument(*flags: str, **options: Any) -> Argument:
    return Argument(flags, options)


def default_from_settings(field: str) -> str:
    """The help of an option that overrides a setting: where its default comes from."""
    return f"(default: {env_variable(field)}, else {Settings.model_fields[field].default})"


def day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


def breakage(text: str) -> tuple[dt.date, str]:
    """``DAY:KIND`` of ``simulate --break``, the kind one of `BREAKAGES`."""
    when, separator, kind = text.partition(":")
    if not separator or not kind:
        raise argparse.ArgumentTypeError(
            f"expected DAY:KIND (e.g. 2026-01-20:null_keys), got {text!r}"
        )
    if kind not in BREAKAGES:
        raise argparse.ArgumentTypeError(
            f"unknown breakage {kind!r}; valid: {', '.join(BREAKAGES)}"
        )
    return day(when), kind


FEATURE_DAY = argument("day", type=day, help="feature day (YYYY-MM-DD)")
DATASET = argument("dataset", choices=LANDING_DATASETS, help="landing dataset")
PARTITION_DAY = argument("day", type=day, help="partition day (YYYY-MM-DD)")

DEMO_ARGUMENTS = (
    argument(
        "--days",
        type=int,
        default=DemoPlan.days,
        help="days to simulate and run, >= 50 (default: %(default)s)",
    ),
    argument(
        "--customers",
        type=int,
        default=DemoPlan.customers,
        help="customers per day (default: %(default)s)",
    ),
)

DRIFT_REPORT_ARGUMENTS = (
    argument("--reference", required=True, help="Parquet file of the reference"),
    argument("--current", required=True, help="Parquet file of the current data"),
    argument("--day", type=day, required=True, help="report day (YYYY-MM-DD)"),
    argument(
        "--columns",
        nargs="+",
        help="columns to compare (default: the model's features, churnloop.features.definition)",
    ),
)

MATERIALIZE_ARGUMENTS = (
    FEATURE_DAY,
    argument(
        "--overlap-days",
        type=int,
        help="earlier days to re-send " + default_from_settings("materialize_overlap_days"),
    ),
)

ROLLBACK_ARGUMENTS = (
    argument("--to", dest="to_version", type=int, help="version (default: @previous-champion)"),
    argument("--reason", required=True, help="why; recorded in the champion history"),
)

CANARY_ACTIONS = ("status", "abort", "finish")
CANARY_ARGUMENTS = (
    argument(
        "action",
        choices=CANARY_ACTIONS,
        help="status: the running canary's step and guardrails; abort: roll the candidate "
        "back now; finish: make it @champion now",
    ),
    argument("--reason", help="why (abort, finish); recorded in the champion history"),
)

SERVE_ARGUMENTS = (
    argument("--host", help="interface to listen on " + default_from_settings("serving_host")),
    argument("--port", type=int, help="port to listen on " + default_from_settings("serving_port")),
)

SIMULATE_ARGUMENTS = (
    argument("--start", type=day, required=True, help="first day (YYYY-MM-DD)"),
    argument("--days", type=int, default=60, help="days to write (default: %(default)s)"),
    argument("--customers", type=int, default=2000, help="rows a day (default: %(default)s)"),
    argument(
        "--scenario",
        choices=SCENARIOS,
        default=Scenario.name,
        help="what upstream does over time (default: %(default)s)",
    ),
    argument("--drift-start", type=day, help="first drifted day (drift scenarios)"),
    argument(
        "--ramp-days",
        type=int,
        default=DEFAULT_RAMP_DAYS,
        help="days until the drift is complete (default: %(default)s)",
    ),
    argument(
        "--break",
        dest="breaks",
        type=breakage,
        action="append",
        default=[],
        metavar="DAY:KIND",
        help=f"break that day's snapshot drop, e.g. 2026-01-20:out_of_range (repeatable); "
        f"KIND is one of {', '.join(BREAKAGES)}",
    ),
    argument("--seed", type=int, default=42, help="random seed (default: %(default)s)"),
    argument(
        "--history-start",
        type=day,
        help="first day that had snapshots, when extending an earlier simulation "
        "(labels are due from 30 days after it; default: --start)",
    ),
)
