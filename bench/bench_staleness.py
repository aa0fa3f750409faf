"""What staleness costs: a model's ROC AUC by its age, without drift and through drift.

For each of the simulator's scenarios (baseline, covariate_drift, concept_drift) and each
of ``--runs`` training days, the challenger's pipeline (``fit_pipeline`` with
``settings.model_params``, seeded) is trained on ``--window-days`` days of labelled
snapshots ending on day E, then scored on every later day d = E+1 .. E+``--max-age`` on
that day's snapshots and labels. The model's age on d is d - E, as the drift check counts
it (``StalenessCheck.age_days``: days since the last training day). Each day gets its
ROC AUC and DeLong interval (``settings.gate_confidence``); the curve is the median over
the runs, whose windows start ``--spacing-days`` apart. The drifting scenarios start
drifting ``--drift-age`` days after E (ramping over ``--ramp-days``), so every run meets
the drift at the same age.

Beside it, the weekly cron (``--retrain-every`` days, 0: off) as production runs it: a
model deployed on its day is 31 days old (its window ends 31 days before, the newest whose
labels have matured), so the first model is the cron's champion up to age 37, then each
week a model trained on the window ending 31 days before takes over (always promoted
here). On each day it serves, its AUC and its paired DeLong gain over the first model.

LightGBM runs on ``--threads`` threads (default 1, whatever ``model_params`` says): on a
loaded shared machine two OpenMP threads wait on each other, a fit taking 4-30 times as
long; with ``deterministic=True`` the model is the same either way.

Features are the snapshot's own columns, not Feast's rolling aggregates (those need the
whole feature pipeline); labels come straight from the simulator, as if matured.

Run: ``.venv/bin/python bench/bench_staleness.py`` (figures to bench/results/staleness.json,
the plot to docs/staleness.png; docs/staleness.md reads them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
from harness import commit, write_results

from churnloop import schema
from churnloop.demo.simulation import (
    DEFAULT_RAMP_DAYS,
    DRIFTING_SCENARIOS,
    SCENARIOS,
    Scenario,
    generate_labels,
    generate_snapshots,
)
from churnloop.settings import get_settings
from churnloop.training.intervals import auc_difference, auc_interval
from churnloop.training.metrics import score
from churnloop.training.pipeline import fit_pipeline

matplotlib.use("Agg")
from matplotlib import pyplot  # noqa: E402  (after choosing the Agg backend)

REPO = Path(__file__).resolve().parent.parent
FIRST_WINDOW_START = dt.date(2026, 1, 1)
FEATURES = [*schema.CATEGORICAL, *schema.NUMERIC]
TABLE_AGES = (1, 7, 14, 30, 45, 60)
FRESHEST_DEPLOYABLE_AGE = schema.LABEL_DELAY_DAYS + 1
AGE_BANDS = {"1-7": (1, 7), "31-37": (31, 37), "38-45": (38, 45), "46-60": (46, 60)}
"""Ages averaged for the doc: the first week, the ages a weekly champion serves at, up to
the maximum training age, and past it."""
WEEK_DAYS = 7
"""The weekly cron (settings.training_cron) deploys a model of FRESHEST_DEPLOYABLE_AGE
that serves until the next run, a week later."""
COLOURS = {"baseline": "tab:blue", "covariate_drift": "tab:orange", "concept_drift": "tab:red"}


@dataclass(frozen=True)
class Config:
    """What one benchmark run measures, as recorded in the results."""

    customers: int
    window_days: int
    max_age: int
    runs: int
    spacing_days: int
    drift_age: int
    ramp_days: int
    retrain_every: int
    simulation_seed: int
    training_seed: int
    confidence: float
    max_training_age_days: int
    model_params: dict[str, Any]


class LabelledDays:
    """One scenario's snapshots joined with their labels, generated once per day."""

    def __init__(self, customers: int, seed: int, scenario: Scenario) -> None:
        self._customers, self._seed, self._scenario = customers, seed, scenario
        self._days: dict[dt.date, pd.DataFrame] = {}

    def day(self, day: dt.date) -> pd.DataFrame:
        if day not in self._days:
            snapshots = generate_snapshots(day, self._customers, self._seed, self._scenario)
            labels = generate_labels(day, self._customers, self._seed, self._scenario)
            labelled = labels.select([schema.ENTITY, schema.LABEL]).to_pandas()
            self._days[day] = snapshots.to_pandas().merge(labelled, on=schema.ENTITY)
        return self._days[day]

    def window(self, end: dt.date, days: int) -> pd.DataFrame:
        """The ``days`` labelled days ending on ``end``, as one training frame."""
        first = end - dt.timedelta(days=days - 1)
        frames = [self.day(first + dt.timedelta(days=offset)) for offset in range(days)]
        return pd.concat(frames, ignore_index=True)


def scenario_for(name: str, window_end: dt.date, config: Config) -> Scenario:
    """``name`` with its drift (if any) starting ``drift_age`` days after the window."""
    if name not in DRIFTING_SCENARIOS:
        return Scenario(name)
    drift_start = window_end + dt.timedelta(days=config.drift_age)
    return Scenario(name, drift_start=drift_start, ramp_days=config.ramp_days)


def run_once(config: Config, name: str, run: int) -> dict[str, Any]:
    """Train as of one day and score every later day, beside the weekly retrained champion."""
    window_start = FIRST_WINDOW_START + dt.timedelta(days=run * config.spacing_days)
    window_end = window_start + dt.timedelta(days=config.window_days - 1)
    scenario = scenario_for(name, window_end, config)
    days = LabelledDays(config.customers, config.simulation_seed, scenario)
    began = time.perf_counter()
    stale = fit_model(days, window_end, config)
    fit_seconds = time.perf_counter() - began
    retrained = {
        age: fit_model(days, window_end + dt.timedelta(days=age - FRESHEST_DEPLOYABLE_AGE), config)
        for age in retrain_ages(config)
    }
    by_age = []
    for age in range(1, config.max_age + 1):
        deployed = [deploy_age for deploy_age in retrained if deploy_age <= age]
        champion = retrained[max(deployed)] if deployed else None
        by_age.append(score_day(days, window_end, age, stale, champion, config.confidence))
    return {
        "scenario": name,
        "run": run,
        "window_start": window_start,
        "window_end": window_end,
        "drift_start": scenario.drift_start,
        "fit_seconds": round(fit_seconds, 2),
        "by_age": by_age,
    }


def retrain_ages(config: Config) -> list[int]:
    """Ages of the first model at which the weekly cron deploys a newer one: the cron's
    first model (age 31 on its day) is the first model itself, so from a week later on."""
    if not config.retrain_every:
        return []
    first = FRESHEST_DEPLOYABLE_AGE + config.retrain_every
    return list(range(first, config.max_age + 1, config.retrain_every))


def fit_model(days: LabelledDays, window_end: dt.date, config: Config) -> Any:
    training = days.window(window_end, config.window_days)
    return fit_pipeline(training, FEATURES, config.model_params, config.training_seed)


def score_day(
    days: LabelledDays,
    window_end: dt.date,
    age: int,
    stale: Any,
    retrained: Any | None,
    confidence: float,
) -> dict[str, Any]:
    """The stale model's AUC on the day it is ``age`` days old; with a retrained champion,
    its AUC too and its gain over the stale model, paired on the same rows."""
    day = window_end + dt.timedelta(days=age)
    frame = days.day(day)
    labels = frame[schema.LABEL].to_numpy()
    stale_scores = score(stale, frame)
    row: dict[str, Any] = {
        "age": age,
        "day": day,
        "positives": int(labels.sum()),
        "stale": asdict(auc_interval(labels, stale_scores, confidence)),
        "retrained": None,
        "gain": None,
    }
    if retrained is not None:
        retrained_scores = score(retrained, frame)
        row["retrained"] = asdict(auc_interval(labels, retrained_scores, confidence))
        gain = auc_difference(labels, retrained_scores, stale_scores, confidence)
        row["gain"] = asdict(gain)
    return row


def summarize(runs: list[dict[str, Any]], config: Config) -> dict[str, Any]:
    """One scenario's runs as a curve: per age and model, the median AUC and median
    interval bounds over the runs, the range of the AUCs; band means of the curves."""
    curve = []
    for index in range(config.max_age):
        rows = [run["by_age"][index] for run in runs]
        point = {"age": rows[0]["age"], **median_interval(rows, "stale", "auc")}
        point["auc_min"] = min(row["stale"]["estimate"] for row in rows)
        point["auc_max"] = max(row["stale"]["estimate"] for row in rows)
        if rows[0]["retrained"] is not None:
            point.update(median_interval(rows, "retrained", "retrained_auc"))
            point.update(median_interval(rows, "gain", "gain"))
        curve.append(point)
    bands = {}
    for label, (first, last) in AGE_BANDS.items():
        points = [point for point in curve if first <= point["age"] <= last]
        if last <= config.max_age:
            bands[label] = {
                "stale": statistics.mean(point["auc"] for point in points),
                "retrained": statistics.mean(
                    point.get("retrained_auc", point["auc"]) for point in points
                ),
            }
    return {"curve": curve, "band_means": bands}


def median_interval(rows: list[dict[str, Any]], model: str, prefix: str) -> dict[str, float]:
    """``prefix``, ``prefix_low``, ``prefix_high``: medians over the runs of one model's
    estimate and interval bounds on the same age."""
    return {
        prefix: statistics.median(row[model]["estimate"] for row in rows),
        f"{prefix}_low": statistics.median(row[model]["low"] for row in rows),
        f"{prefix}_high": statistics.median(row[model]["high"] for row in rows),
    }


def draw(summaries: dict[str, dict[str, Any]], config: Config, path: Path) -> None:
    """ROC AUC against model age, a line and interval band per scenario, with the drift
    start, the ages a weekly champion serves at and the maximum training age marked.
    Before the drift the scenarios are the same data, so baseline is drawn on top."""
    figure, axes = pyplot.subplots(figsize=(9, 5))
    weekly_end = FRESHEST_DEPLOYABLE_AGE + WEEK_DAYS
    axes.axvspan(FRESHEST_DEPLOYABLE_AGE, weekly_end, color="0.9", label="weekly champion's ages")
    axes.axvline(
        config.max_training_age_days,
        color="0.3",
        linestyle=":",
        label=f"drift_max_training_age_days ({config.max_training_age_days})",
    )
    drifting = [name for name in summaries if name in DRIFTING_SCENARIOS]
    if drifting:
        axes.axvline(
            config.drift_age, color="k", linestyle="--", label=f"{', '.join(drifting)} start"
        )
    for name, summary in summaries.items():
        ages = [row["age"] for row in summary["curve"]]
        colour, layer = COLOURS.get(name), 3 if name == "baseline" else 2
        aucs = [row["auc"] for row in summary["curve"]]
        axes.plot(ages, aucs, color=colour, label=name, zorder=layer)
        lows = [row["auc_low"] for row in summary["curve"]]
        highs = [row["auc_high"] for row in summary["curve"]]
        axes.fill_between(ages, lows, highs, color=colour, alpha=0.15, linewidth=0)
        retrained = [row for row in summary["curve"] if "retrained_auc" in row]
        if retrained and name != "baseline":
            axes.plot(
                [row["age"] for row in retrained],
                [row["retrained_auc"] for row in retrained],
                color=colour,
                linestyle=(0, (1, 1)),
                label=f"{name}, retrained weekly",
                zorder=layer,
            )
    axes.set_xlabel("model age: days since the last training day")
    axes.set_ylabel(f"ROC AUC (median of {config.runs} runs; band: {config.confidence:.0%} DeLong)")
    axes.set_title(
        f"What staleness costs: {config.customers:,} customers, {config.window_days}-day window, "
        f"drift ramps over {config.ramp_days} days"
    )
    axes.set_xlim(1, config.max_age)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def print_table(summaries: dict[str, dict[str, Any]], config: Config) -> None:
    """The first model's AUC at the table's ages, then band means and weekly gains."""
    ages = [age for age in TABLE_AGES if age <= config.max_age]
    print("| scenario | " + " | ".join(f"age {age}" for age in ages) + " |")
    print("| --- |" + " ---: |" * len(ages))
    for name, summary in summaries.items():
        cells = []
        for age in ages:
            point = summary["curve"][age - 1]
            cells.append(f"{point['auc']:.3f} [{point['auc_low']:.3f}, {point['auc_high']:.3f}]")
        print(f"| {name} | " + " | ".join(cells) + " |")
    for name, summary in summaries.items():
        bands = ", ".join(
            f"{label}: {means['stale']:.3f} (weekly {means['retrained']:.3f})"
            for label, means in summary["band_means"].items()
        )
        print(f"{name}: mean AUC by ages {bands}")
        for point in summary["curve"]:
            if "gain" in point and point["age"] in ages:
                print(
                    f"  age {point['age']}: weekly champion {point['retrained_auc']:.3f}, gain "
                    f"{point['gain']:+.3f} [{point['gain_low']:+.3f}, {point['gain_high']:+.3f}]"
                )


def run_record(run: dict[str, Any]) -> dict[str, Any]:
    """One run as the results keep it: its days, and per age its AUC and weekly gain."""
    keys = ("scenario", "run", "window_start", "window_end", "drift_start", "fit_seconds")
    return {
        **{key: run[key] for key in keys},
        "auc_by_age": [row["stale"]["estimate"] for row in run["by_age"]],
        "weekly_gain_by_age": {
            row["age"]: row["gain"]["estimate"] for row in run["by_age"] if row["gain"]
        },
    }


def rounded(value: Any) -> Any:
    """``value`` with every float to 4 decimals, so the results stay readable."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


def parse_config() -> tuple[Config, Path, str]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--window-days", type=int, default=30)
    parser.add_argument("--max-age", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3, help="training days per scenario")
    parser.add_argument("--spacing-days", type=int, default=30, help="between training days")
    parser.add_argument("--drift-age", type=int, default=15, help="model age the drift starts at")
    parser.add_argument("--ramp-days", type=int, default=DEFAULT_RAMP_DAYS)
    parser.add_argument(
        "--retrain-every", type=int, default=WEEK_DAYS, help="the cron's days; 0: never retrain"
    )
    parser.add_argument("--seed", type=int, default=42, help="the simulator's seed")
    parser.add_argument("--threads", type=int, default=1, help="LightGBM's n_jobs")
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "staleness.png")
    parser.add_argument("--result", default="staleness", help="bench/results/<result>.json")
    args = parser.parse_args()
    settings = get_settings()
    config = Config(
        customers=args.customers,
        window_days=args.window_days,
        max_age=args.max_age,
        runs=args.runs,
        spacing_days=args.spacing_days,
        drift_age=args.drift_age,
        ramp_days=args.ramp_days,
        retrain_every=args.retrain_every,
        simulation_seed=args.seed,
        training_seed=settings.training_seed,
        confidence=settings.gate_confidence,
        max_training_age_days=settings.drift_max_training_age_days,
        model_params={**settings.model_params, "n_jobs": args.threads},
    )
    return config, args.plot, args.result


def main() -> None:
    config, plot, result = parse_config()
    began = time.perf_counter()
    runs, summaries = [], {}
    for name in SCENARIOS:
        scenario_runs = [run_once(config, name, run) for run in range(config.runs)]
        print(
            f"{name}: {config.runs} runs, {time.perf_counter() - began:.0f} s elapsed", flush=True
        )
        runs.extend(scenario_runs)
        summaries[name] = summarize(scenario_runs, config)
    seconds = time.perf_counter() - began
    print_table(summaries, config)
    draw(summaries, config, plot)
    path = write_results(
        result,
        {
            "commit": commit(),
            "seconds": round(seconds, 1),
            "config": asdict(config),
            "summaries": rounded(summaries),
            "runs": [rounded(run_record(run)) for run in runs],
        },
    )
    print(f"{seconds:.0f} s; figures in {path}, plot in {plot}")


if __name__ == "__main__":
    main()
