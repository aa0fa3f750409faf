"""Tuning the challenger's LightGBM parameters with Optuna, inside a budget.

`tune` searches `SEARCH_SPACE` (seeded TPE), scoring each trial by ROC AUC on expanding
windows of the training split's days (never the holdout); it stops at the trial count or
before a trial would pass the time budget, the best so far winning. `log_trials` records
the trials as child runs of the challenger's MLflow run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from time import monotonic
from typing import Any, Literal

import mlflow
import numpy as np
import optuna
import pandas as pd

from churnloop.errors import DataError
from churnloop.settings import Settings
from churnloop.training.metrics import binary_labels, classification_metrics, format_number, score
from churnloop.training.pipeline import fit_pipeline
from churnloop.training.split import snapshot_days

StoppedBy = Literal["trials", "timeout", "off"]


@dataclass(frozen=True)
class ParamRange:
    """The values one LightGBM parameter may take: ``low`` to ``high``, both included."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def suggest(self, trial: optuna.Trial, name: str) -> float | int:
        """The trial's value of ``name`` drawn from this range."""
        if self.integer:
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def clip(self, value: float) -> float | int:
        """``value`` moved into the range, so a parameter set can start the search."""
        inside = min(max(value, self.low), self.high)
        return int(round(inside)) if self.integer else float(inside)


SEARCH_SPACE: Mapping[str, ParamRange] = {
    "learning_rate": ParamRange(0.01, 0.3, log=True),
    "num_leaves": ParamRange(8, 128, log=True, integer=True),
    "min_child_samples": ParamRange(5, 200, log=True, integer=True),
    "subsample": ParamRange(0.5, 1.0),
    "colsample_bytree": ParamRange(0.5, 1.0),
    "reg_lambda": ParamRange(1e-3, 10.0, log=True),
    "n_estimators": ParamRange(50, 500, log=True, integer=True),
}
"""What `tune` searches; parameters outside it (``n_jobs``, ``subsample_freq``) keep their
base value. The bounds keep one trial's cost within a few times the default model's."""


@dataclass(frozen=True)
class TuningResult:
    """What tuning chose, what it tried, and which bound stopped it."""

    best_params: dict[str, Any]
    best_cv_auc: float | None
    trials: list[dict[str, Any]] = field(default_factory=list)
    stopped_by: StoppedBy = "off"
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Small and JSON-safe, for XCom and the decision log."""
        return {
            "best_params": self.best_params,
            "best_cv_auc": self.best_cv_auc,
            "trials": self.trials,
            "stopped_by": self.stopped_by,
            "seconds": self.seconds,
        }

    def describe(self) -> str:
        """A short text table of the trials, for the task log."""
        lines = [
            f"tuning: {len(self.trials)} trial(s) in {self.seconds:.1f} s, stopped by "
            f"{self.stopped_by}; best mean CV ROC AUC {format_number(self.best_cv_auc)}",
        ]
        if self.trials:
            lines.append(f"{'trial':>5}  {'state':<8}  {'cv_auc':>6}  {'seconds':>7}  params")
        for trial in self.trials:
            params = " ".join(
                f"{key}={format_number(value)}" for key, value in trial["params"].items()
            )
            lines.append(
                f"{trial['number']:>5}  {trial['state']:<8}  {format_number(trial['cv_auc']):>6}  "
                f"{trial['seconds']:>7.1f}  {params}"
            )
        return "\n".join(lines)


def tune(
    settings: Settings,
    train: pd.DataFrame,
    feature_names: list[str],
    *,
    base_params: Mapping[str, Any],
    trials: int,
    timeout_seconds: float,
    seed: int,
    space: Mapping[str, ParamRange] = SEARCH_SPACE,
) -> TuningResult:
    """The best parameters found in at most ``trials`` trials and ``timeout_seconds``.

    The first trial starts from ``base_params`` (moved into ``space``), so a short search
    still measures the current parameters. ``trials=0`` turns tuning off: ``base_params``
    come back as they are.
    """
    if trials == 0:
        return TuningResult(best_params=dict(base_params), best_cv_auc=None)
    folds = expanding_day_folds(snapshot_days(train, "training split"), settings.tuning_cv_folds)
    budget = _Budget(timeout_seconds, started=monotonic())
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(
        {name: space[name].clip(value) for name, value in base_params.items() if name in space}
    )

    def objective(trial: optuna.Trial) -> float:
        params = {**base_params, **{name: r.suggest(trial, name) for name, r in space.items()}}
        return _cv_roc_auc(train, feature_names, folds, params, seed, budget)

    study.optimize(objective, n_trials=trials, callbacks=[budget.stop_before_overrun])
    return _result(study, base_params, trials, budget)


def expanding_day_folds(days: pd.Series, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Row positions (train, validate) of ``folds`` expanding windows over ``days``.

    The distinct days are cut into ``folds + 1`` consecutive blocks; fold ``i`` trains on
    blocks ``0..i`` and validates on block ``i + 1``, so it never validates on a day it
    trained on or on one before. Days are compared as UTC datetime64 values: compared as
    tz-aware Timestamp objects, they take seconds on a large split.
    """
    values = days.to_numpy("datetime64[ns]")
    distinct = np.unique(values)
    if len(distinct) < folds + 1:
        raise DataError(
            f"tuning needs at least {folds + 1} snapshot days in the training split for "
            f"{folds} fold(s), got {len(distinct)}: widen the window or lower tuning_cv_folds"
        )
    blocks = np.array_split(distinct, folds + 1)
    return [
        (
            np.flatnonzero(values < block[0]),
            np.flatnonzero((values >= block[0]) & (values <= block[-1])),
        )
        for block in blocks[1:]
    ]


def log_trials(result: TuningResult) -> None:
    """Log each trial as a child run of the active run, and the search's totals on it.

    Call it inside the challenger's run: its parameters then say what tuning chose, and
    its children say what tuning tried.
    """
    parent = mlflow.active_run()
    if parent is None:
        raise RuntimeError("log_trials needs an active MLflow run (the challenger's)")
    for trial in result.trials:
        with mlflow.start_run(
            experiment_id=parent.info.experiment_id,
            run_name=f"tuning-trial-{trial['number']}",
            nested=True,
        ):
            mlflow.log_params(trial["params"])
            mlflow.set_tag("tuning.state", trial["state"])
            metrics = {"trial_seconds": trial["seconds"]}
            if trial["cv_auc"] is not None:
                metrics["cv_roc_auc"] = trial["cv_auc"]
            mlflow.log_metrics(metrics)
    totals = {"tuning_trials": len(result.trials), "tuning_seconds": result.seconds}
    if result.best_cv_auc is not None:
        totals["tuning_best_cv_roc_auc"] = result.best_cv_auc
    mlflow.log_metrics(totals)
    mlflow.set_tag("tuning.stopped_by", result.stopped_by)


@dataclass(frozen=True)
class _Budget:
    """The wall-clock budget of one search, on the monotonic clock."""

    seconds: float
    started: float

    def elapsed(self) -> float:
        return monotonic() - self.started

    def spent(self) -> bool:
        return self.elapsed() >= self.seconds

    def stop_before_overrun(self, study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
        """Optuna callback: no new trial when one more of mean length would overrun."""
        elapsed = self.elapsed()
        if elapsed + elapsed / len(study.trials) > self.seconds:
            study.stop()


def _cv_roc_auc(
    train: pd.DataFrame,
    feature_names: list[str],
    folds: list[tuple[np.ndarray, np.ndarray]],
    params: Mapping[str, Any],
    seed: int,
    budget: _Budget,
) -> float:
    """Mean ROC AUC of ``params`` over ``folds``; prunes the trial once the budget is spent,
    so one slow trial overruns it by at most one fold's fit."""
    aucs = []
    for number, (fit_rows, validation_rows) in enumerate(folds):
        if budget.spent():
            raise optuna.TrialPruned(f"time budget spent before fold {number}")
        model = fit_pipeline(train.iloc[fit_rows], feature_names, params, seed)
        validation = train.iloc[validation_rows]
        labels = binary_labels(validation, f"tuning fold {number}'s validation days")
        scores = score(model, validation, "tuning trial")
        aucs.append(classification_metrics(labels, scores)["roc_auc"])
    return float(np.mean(aucs))


def _result(
    study: optuna.Study, base_params: Mapping[str, Any], trials: int, budget: _Budget
) -> TuningResult:
    """The best complete trial's parameters over ``base_params``; the base if none completed."""
    summaries = [_summary(trial) for trial in study.trials]
    complete = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
    pruned = len(complete) < len(study.trials)
    stopped_by: StoppedBy = "trials" if len(study.trials) == trials and not pruned else "timeout"
    if not complete:
        return TuningResult(dict(base_params), None, summaries, stopped_by, budget.elapsed())
    best = study.best_trial
    return TuningResult(
        best_params={**base_params, **best.params},
        best_cv_auc=float(best.value),
        trials=summaries,
        stopped_by=stopped_by,
        seconds=budget.elapsed(),
    )


def _summary(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """One trial as a small JSON-safe dict."""
    finished = trial.datetime_complete or trial.datetime_start
    return {
        "number": trial.number,
        "params": dict(trial.params),
        "cv_auc": None if trial.value is None else float(trial.value),
        "seconds": (finished - trial.datetime_start).total_seconds(),
        "state": trial.state.name,
    }
