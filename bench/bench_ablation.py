"""What each feature group contributes: the challenger refitted with one group left out.

The simulator's snapshots (``--customers``, seed ``--seed``) of the 89 days before each of
``--feature-days`` days go through the feature definition (``build_features``: every
column of ``FEATURE_SCHEMA``, as Feast serves them), joined with the days' labels. The latest
``--holdout-days`` are the holdout, as ``split_by_time`` holds them out for the gate.

For each model seed (``settings.training_seed`` first, then ``--seeds`` more), the full
pipeline (``fit_pipeline``, ``settings.model_params``) and one pipeline per group left out
are fitted on the same training days; each group's ROC AUC change (without it minus full)
gets its paired DeLong interval on the same holdout (``settings.gate_confidence``). The
data stay the same across seeds: the seeds show what the model's own randomness
(row and column subsampling) moves. Beside it, the full model's feature importance
(``churnloop.training.importance``) at the first seed, as the evaluation step logs it.

Groups are defined once, here (``GROUP_PREFIXES``), by name prefix; a feature no group or
two groups claim stops the run, so a new feature cannot slip out of the ablation.

LightGBM runs on ``--threads`` threads (default 1: on a loaded shared machine two OpenMP
threads wait on each other; with ``deterministic=True`` the model is the same).

Run: ``nice -n 10 .venv/bin/python bench/bench_ablation.py`` (figures to
bench/results/ablation.json; docs/ablation.md reads them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from harness import commit, write_results

from churnloop import schema
from churnloop.demo.simulation import generate_labels, generate_snapshots
from churnloop.features.definition import FEATURE_SCHEMA, LOOKBACK_DAYS, build_features
from churnloop.settings import get_settings
from churnloop.training.importance import feature_importance
from churnloop.training.intervals import auc_difference, auc_interval
from churnloop.training.metrics import binary_labels, score
from churnloop.training.pipeline import fit_pipeline
from churnloop.training.split import split_by_time

REPO = Path(__file__).resolve().parent.parent
FIRST_FEATURE_DAY = dt.date(2026, 3, 31)
"""The simulator's first day is 2026-01-01: the first feature day has a full lookback."""
GROUP_PREFIXES = {
    "profile": ("plan", "region", "contract", "age", "tenure"),
    "billing": ("monthly_charges", "spend", "payment_failures", "days_since_last_payment"),
    "activity": ("logins", "session_minutes", "minutes_per_login", "days_since_last_login"),
    "support": ("support_tickets", "days_since_last_ticket"),
    "coverage": ("days_observed",),
}
"""Who the customer is; what they pay and whether payments fail; how they use the service;
how often they call support; and how many days of history a row's windows saw."""


@dataclass(frozen=True)
class Config:
    """What one benchmark run measures, as recorded in the results."""

    customers: int
    feature_days: int
    holdout_days: int
    simulation_seed: int
    model_seeds: tuple[int, ...]
    confidence: float
    importance_repeats: int
    importance_max_rows: int
    model_params: dict[str, Any]


def feature_groups(names: list[str]) -> dict[str, list[str]]:
    """Each feature in the one group whose prefix it starts with; refuses any other case."""
    groups: dict[str, list[str]] = {group: [] for group in GROUP_PREFIXES}
    for name in names:
        claims = [group for group, prefixes in GROUP_PREFIXES.items() if name.startswith(prefixes)]
        if len(claims) != 1:
            raise SystemExit(
                f"feature {name!r} is claimed by {claims or 'no group'}: fix GROUP_PREFIXES"
            )
        groups[claims[0]].append(name)
    return groups


def labelled_features(config: Config) -> pd.DataFrame:
    """Feature rows of ``feature_days`` days, each with its full lookback, and their labels."""
    first_history_day = FIRST_FEATURE_DAY - dt.timedelta(days=LOOKBACK_DAYS - 1)
    days = config.feature_days + LOOKBACK_DAYS - 1
    history = pd.concat(
        generate_snapshots(
            first_history_day + dt.timedelta(days=offset), config.customers, config.simulation_seed
        ).to_pandas()
        for offset in range(days)
    )
    frames = []
    for offset in range(config.feature_days):
        day = FIRST_FEATURE_DAY + dt.timedelta(days=offset)
        labels = generate_labels(day, config.customers, config.simulation_seed).to_pandas()
        frames.append(
            build_features(history, day).merge(labels, on=[schema.ENTITY, schema.TIMESTAMP])
        )
    return pd.concat(frames, ignore_index=True)


def ablate(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    groups: dict[str, list[str]],
    seed: int,
    config: Config,
) -> tuple[dict[str, Any], Any]:
    """The full model's AUC and, per group, the paired AUC change without it; and the model."""
    names = [name for members in groups.values() for name in members]
    labels = binary_labels(holdout, "holdout")
    began = time.perf_counter()
    full = fit_pipeline(train, names, config.model_params, seed)
    full_scores = score(full, holdout, "full model")
    changes = {}
    for group, members in groups.items():
        kept = [name for name in names if name not in members]
        reduced = fit_pipeline(train, kept, config.model_params, seed)
        reduced_scores = score(reduced, holdout, f"model without {group}")
        changes[group] = asdict(
            auc_difference(labels, reduced_scores, full_scores, config.confidence)
        )
    record = {
        "seed": seed,
        "full_auc": asdict(auc_interval(labels, full_scores, config.confidence)),
        "change_without": changes,
        "seconds": round(time.perf_counter() - began, 1),
    }
    return record, full


def summarize(runs: list[dict[str, Any]], groups: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Per group: the first seed's change with its interval, the median and range over seeds,
    and how many seeds' intervals lie wholly below zero (the group helps) or above it."""
    rows = []
    for group, members in groups.items():
        changes = [run["change_without"][group] for run in runs]
        estimates = [change["estimate"] for change in changes]
        rows.append(
            {
                "group": group,
                "features": len(members),
                "first_seed": changes[0],
                "median": statistics.median(estimates),
                "min": min(estimates),
                "max": max(estimates),
                "seeds_below_zero": sum(change["high"] < 0 for change in changes),
                "seeds_above_zero": sum(change["low"] > 0 for change in changes),
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]], runs: list[dict[str, Any]], config: Config) -> None:
    seeds = len(runs)
    first = config.model_seeds[0]
    print(
        f"| group | features | ROC AUC change without it, seed {first} "
        f"[{config.confidence:.0%} DeLong] | median over {seeds} seeds [range] | "
        "seeds whose interval is below 0 |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        change = row["first_seed"]
        print(
            f"| {row['group']} | {row['features']} | {change['estimate']:+.4f} "
            f"[{change['low']:+.4f}, {change['high']:+.4f}] | {row['median']:+.4f} "
            f"[{row['min']:+.4f}, {row['max']:+.4f}] | {row['seeds_below_zero']} of {seeds} |"
        )
    aucs = ", ".join(f"seed {run['seed']}: {run['full_auc']['estimate']:.4f}" for run in runs)
    print(f"full model ROC AUC: {aucs}")


def parse_config() -> tuple[Config, str]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=3_000)
    parser.add_argument("--feature-days", type=int, default=28)
    parser.add_argument("--holdout-days", type=int, default=7)
    parser.add_argument("--seeds", type=int, default=4, help="model seeds beyond the settings'")
    parser.add_argument("--seed", type=int, default=42, help="the simulator's seed")
    parser.add_argument("--threads", type=int, default=1, help="LightGBM's n_jobs")
    parser.add_argument("--result", default="ablation", help="bench/results/<result>.json")
    args = parser.parse_args()
    settings = get_settings()
    others = [seed for seed in range(args.seeds + 1) if seed != settings.training_seed]
    config = Config(
        customers=args.customers,
        feature_days=args.feature_days,
        holdout_days=args.holdout_days,
        simulation_seed=args.seed,
        model_seeds=(settings.training_seed, *others[: args.seeds]),
        confidence=settings.gate_confidence,
        importance_repeats=settings.importance_repeats,
        importance_max_rows=settings.importance_max_rows,
        model_params={**settings.model_params, "n_jobs": args.threads},
    )
    return config, args.result


def main() -> None:
    config, result = parse_config()
    began = time.perf_counter()
    frame = labelled_features(config)
    train, holdout = split_by_time(frame, config.holdout_days)
    groups = feature_groups(list(FEATURE_SCHEMA.names))
    print(
        f"features built: {len(train):,} training and {len(holdout):,} holdout rows, "
        f"{time.perf_counter() - began:.0f} s",
        flush=True,
    )
    runs, models = [], []
    for seed in config.model_seeds:
        record, model = ablate(train, holdout, groups, seed, config)
        runs.append(record)
        models.append(model)
        print(f"seed {seed}: {record['seconds']:.0f} s", flush=True)
    importance_began = time.perf_counter()
    importance = feature_importance(
        models[0],
        holdout,
        repeats=config.importance_repeats,
        max_rows=config.importance_max_rows,
        seed=config.model_seeds[0],
        confidence=config.confidence,
    )
    importance_seconds = time.perf_counter() - importance_began
    rows = summarize(runs, groups)
    seconds = time.perf_counter() - began
    print_table(rows, runs, config)
    print(importance.describe())
    path = write_results(
        result,
        {
            "commit": commit(),
            "seconds": round(seconds, 1),
            "importance_seconds": round(importance_seconds, 1),
            "config": asdict(config),
            "data": {
                "training_rows": len(train),
                "holdout_rows": len(holdout),
                "holdout_positives": int(holdout[schema.LABEL].sum()),
                "holdout_start": str(holdout[schema.TIMESTAMP].min().date()),
                "holdout_end": str(holdout[schema.TIMESTAMP].max().date()),
            },
            "groups": groups,
            "summary": rows,
            "runs": runs,
            "importance": importance.to_dict(),
        },
    )
    print(f"{seconds:.0f} s; figures in {path}")


if __name__ == "__main__":
    main()
