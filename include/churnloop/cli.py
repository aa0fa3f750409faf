"""The ``churnloop`` command: every routine step, runnable from a shell without Airflow."""

from __future__ import annotations

import argparse
import shlex
import sys

from churnloop.settings import get_settings


def _airflow_env(args: argparse.Namespace) -> int:
    """Print ``export`` lines for the embedded Airflow (used by ``make airflow``)."""
    from churnloop.airflow_env import airflow_environment

    for name, value in airflow_environment(get_settings()).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="churnloop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    env = commands.add_parser("airflow-env", help="print the embedded Airflow environment")
    env.set_defaults(handler=_airflow_env)

    # Each module's commands are added below, one block per module.
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
