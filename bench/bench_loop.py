"""The loop from ingest to deploy, stage by stage, beside a bare script doing the same work.

One day's drops land (the day's snapshots and the labels maturing that day, which
complete the training window); the loop then runs every step the DAGs run, through the
package functions the tasks call (no Airflow):

ingest (both drops) -> validate (GX, both) -> build features -> materialize (Feast,
SQLite online store, with the definitions applied as the task does) -> training set
(Feast point-in-time, saved to the lake) -> validate training set (GX) -> train + log
(LightGBM, MLflow) -> evaluate (champion vs challenger) -> promote (+ model card) ->
deploy (the model server, a process of its own as in production, reloads, smoke test,
skew check). Without a canary (``CHURNLOOP_CANARY_STEPS=[]``): promotion sets
``@champion`` at once, as the loop measures the way to serving, not hours of canary bake.

The lake already holds what earlier days left: validated snapshots from the day before
the window to the day before the drops, the feature partitions of the window, the labels
matured so far, a registered ``@champion`` (trained on the window one day earlier) and
Feast's registry. The training window is ``--window-days`` days (``--holdout-days``
held out), ending 30 days before the as-of day; so the day's features are built from
the window and the 30 days after it, not from a full 90-day history.

The peer is a bare script doing the same data and model work with pandas, scikit-learn
and LightGBM only (no Airflow, GX, Feast or MLflow): read the day's drop, its history, the
window's features and labels; build the day's features (``churnloop.features.definition``'
pure function); join labels to same-day features; fit the same pipeline with the same
parameters; calibrate it as the package does, from a fit on the training split's earlier
days whose margins on its latest ``calibration_share`` of days an isotonic map learns (one
method, not judged: the loop also fits sigmoid and judges both out of fold; neither
calibrates a training split of one day, the 1M loop's); permutation
importance with scikit-learn's ``permutation_importance`` (ROC AUC, ``importance_repeats``
shuffles of ``importance_max_rows`` holdout rows, every feature); predict the holdout and
the day's customers, calibrated. Its calibrate and importance stages are the model work
the loop's training and evaluation gained in commits e6cdd3b and a219253: without them, the
bare script is the one results before 2026-12-04 were measured against. It fits no
baselines and computes no intervals, plots or slices (the loop's gate does).

Each loop run is a child forked from a process that imported the task libraries once (as
``churnloop.orchestration.executor`` forks Airflow's task processes), on a fresh copy of the
prepared state; each bare run is a freshly spawned process that imports only its own
libraries (not timed). Loop and bare runs alternate, so load changes hit both alike. Per
stage: median wall and CPU seconds of ``--runs`` runs and the largest peak RSS (the
process's high-water mark over that stage, libraries included; the model server's
process is not counted).

Online store: the embedded profile's SQLite store (a row per customer,
``feast_extensions.online_store``) by default; with ``--redis HOST:PORT``, the production
profile's Redis store (Feast's, written by ``feast_extensions.redis_online_writer``), in
database ``BENCH_REDIS_DB`` (emptied before each run and after the last); the rest stays
embedded (lake on disk, file registry, MLflow on SQLite).
Written to ``--result loop_redis`` by ``make bench``.

Tuning: with ``--tuning-trials N`` (0, the default: tuning off) the loop runs with
``CHURNLOOP_TUNING_TRIALS=N`` and a time budget of a day (``TUNING_TIMEOUT_SECONDS``,
which cannot bind: each run checks that the trial count stopped the search), and the
bare script runs the same search itself: Optuna's TPE with the training seed over
``SEARCH_SPACE`` (its ranges passed as data), the first trial from the same base
parameters, each trial scored by mean ROC AUC on the same number of expanding day folds
of its training split, fitted and scored with scikit-learn and LightGBM; then the final
fit with the best parameters. Tuning is a stage of its own on both sides: in the loop,
the package's ``tune`` is timed where ``train_challenger`` calls it (``tuning_apart``),
and "train + log" keeps the rest of that task. Both sides' best mean CV ROC AUC and
parameters are recorded per run. Written to ``--result loop_tuned`` by ``make bench``.

Sizes: ``--customers 10000 100000`` by default. At 1M customers (``--customers
1000000``) the training window is sampled in days rather than in customers (the package
trains on every labelled snapshot of its window): ``--window-days-1m`` (default 2, one
day held out), so the training set holds 2M rows, as many as 20 days at 100k.

Run: ``.venv/bin/python bench/bench_loop.py`` (figures to bench/results/loop.json).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import io
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness import StageClock, peak_rss_mb, reset_peak_rss, summarize, write_results

DAY = dt.date(2026, 4, 1)
"""The day whose drops land; the training run is as of the next day."""
ADMIN_TOKEN = "bench-admin-token"
MILLION = 1_000_000
BENCH_REDIS_DB = 13
"""The Redis database the loop's online store uses with ``--redis``; emptied before each run
and after the last."""


def empty_bench_redis(redis: str | None) -> None:
    """Empty `BENCH_REDIS_DB` on ``redis`` (HOST:PORT), if given."""
    if redis is None:
        return
    import redis as redis_client

    host, port = redis.rsplit(":", 1)
    redis_client.Redis(host, int(port), db=BENCH_REDIS_DB).flushdb()


def _environment(
    home: Path, window_days: int, holdout_days: int, redis: str | None
) -> dict[str, str]:
    online = {"CHURNLOOP_FEAST_REDIS": f"{redis},db={BENCH_REDIS_DB}"} if redis else {}
    return {
        **online,
        "CHURNLOOP_HOME": str(home),
        "CHURNLOOP_TRAINING_WINDOW_DAYS": str(window_days),
        "CHURNLOOP_HOLDOUT_DAYS": str(holdout_days),
        "CHURNLOOP_SERVING_ADMIN_TOKEN": ADMIN_TOKEN,
        "CHURNLOOP_DEPLOY_START_SERVER": "false",
        "CHURNLOOP_SERVING_POLL_SECONDS": "3600",
        "CHURNLOOP_CANARY_STEPS": "[]",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def window(window_days: int) -> tuple[dt.date, dt.date]:
    """First and last snapshot day of the window of the run as of ``DAY + 1``."""
    from churnloop.schema import LABEL_DELAY_DAYS

    end = DAY - dt.timedelta(days=LABEL_DELAY_DAYS)
    return end - dt.timedelta(days=window_days - 1), end


# -- the state earlier days left ----------------------------------------------------------


def prepare(
    home: Path, customers: int, window_days: int, holdout_days: int, redis: str | None
) -> None:
    """Write what the days before ``DAY`` left in the lake, registry and Feast (not timed)."""
    os.environ.update(_environment(home, window_days, holdout_days, redis))
    from churnloop import registry, schema, storage
    from churnloop.demo.simulation import BASELINE, generate_labels, generate_snapshots, simulate
    from churnloop.features.build import build_feature_partition
    from churnloop.features.feast_config import apply_definitions
    from churnloop.settings import get_settings
    from churnloop.training import steps
    from churnloop.training.plan import plan_training_run

    settings = get_settings()
    lake = storage.lake(settings)
    start, end = window(window_days)
    start -= dt.timedelta(days=1)  # the champion's window starts a day earlier
    history = [start + dt.timedelta(days=offset) for offset in range((DAY - start).days)]
    for day in history:
        lake.write_table(
            schema.validated_dataset(schema.SNAPSHOTS), day, generate_snapshots(day, customers)
        )
        labelled = day - dt.timedelta(days=schema.LABEL_DELAY_DAYS)
        if labelled >= start:
            labels = generate_labels(labelled, customers)
            lake.write_table(schema.validated_dataset(schema.LABELS), day, labels)
    for day in history:
        if day <= end:
            build_feature_partition(settings, day)
    simulate(settings, DAY, 1, customers, BASELINE, progress=lambda line: None, history_start=start)
    apply_definitions(settings)
    # The champion: the run of the day before, on the window one day earlier.
    plan = plan_training_run(settings, as_of=DAY, params={}, trigger="bench")
    steps.build_training_set(settings, plan.to_dict())
    steps.validate_training_set(settings, plan.to_dict())
    trained = steps.train_challenger(settings, plan.to_dict(), {"dag_id": "bench"})
    registry.connect(settings).set_registered_model_alias(
        settings.model_name, registry.CHAMPION, str(trained["version"])
    )


# -- one run of the loop ------------------------------------------------------------------


def import_task_libraries() -> None:
    """What a preloaded Airflow worker holds before it forks a task (not timed): the
    preloading executor's list, its caches warmed."""
    from churnloop.orchestration.executor import preload

    preload()


@contextlib.contextmanager
def model_server(version: int) -> Iterator[str]:
    """The model server, a process of its own as in production, once it serves ``version``.

    Not a thread of the loop's process: a thread that has run LightGBM keeps its OpenMP
    team, and libgomp, counting more threads than cores, then makes the training task's
    threads sleep between parallel regions instead of spinning (75k context switches
    and a 15-25% slower fit at 100k customers, docs/benchmarks.md).
    """
    import httpx

    from churnloop.demo.airflow_stack import free_port
    from churnloop.serving.process import running_model_server
    from churnloop.settings import get_settings

    os.environ["CHURNLOOP_SERVING_PORT"] = str(free_port())
    with running_model_server(get_settings()) as url:
        deadline = time.monotonic() + 120
        while httpx.get(f"{url}/model", timeout=10).json().get("version") != version:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the model server at {url} did not load v{version}")
            time.sleep(0.1)
        yield url


def materialize_stage(settings) -> str:
    """The materialization stage's name, which says the online store."""
    return f"materialize (Feast, {'Redis' if settings.feast_redis else 'SQLite'})"


def daily_stages(settings, clock: StageClock, day: dt.date) -> None:
    """customer_data's work for ``day``'s drops, each step timed."""
    from churnloop import schema
    from churnloop.features.build import build_feature_partition
    from churnloop.features.feast_config import apply_definitions
    from churnloop.features.materialize import materialize_day
    from churnloop.validation.ingest import ingest_day
    from churnloop.validation.partition import validate_partition

    datasets = (schema.SNAPSHOTS, schema.LABELS)
    with clock.stage("ingest"):
        for dataset in datasets:
            ingest_day(settings, dataset, day)
    with clock.stage("validate (GX)"):
        for dataset in datasets:
            validate_partition(settings, dataset, day)
    with clock.stage("build features"):
        build_feature_partition(settings, day)
    with clock.stage(materialize_stage(settings)):
        apply_definitions(settings)
        materialize_day(settings, day)


def training_stages(settings, clock: StageClock, plan, *, force_reason: str) -> dict:
    """continuous_training's work for ``plan``, each step timed; returns the promotion.

    A challenger the gate rejects is promoted with ``force_reason`` (the same code path),
    so that every run times a deployment.
    """
    from churnloop.serving.deploy import deploy
    from churnloop.training import steps

    with clock.stage("training set (Feast point-in-time)"):
        steps.build_training_set(settings, plan.to_dict())
    with clock.stage("validate training set (GX)"):
        steps.validate_training_set(settings, plan.to_dict())
    tuning = tuning_apart(clock) if plan.tuning_trials else contextlib.nullcontext({})
    with tuning as tuned, clock.stage("train + log (MLflow)"):
        trained = steps.train_challenger(settings, plan.to_dict(), {"dag_id": "bench"})
    with clock.stage("evaluate"):
        decision = steps.evaluate_challenger(settings, plan.to_dict(), trained)
    if not decision["blessed"]:
        plan = dataclasses.replace(plan, force_reason=force_reason)
    with clock.stage("promote (+ model card)"):
        promotion = steps.promote_challenger(settings, plan.to_dict(), trained, decision)
    with clock.stage("deploy (reload, smoke, skew)"):
        deploy(settings, promotion["version"])
    return {**promotion, "blessed": decision["blessed"], "tuning": tuned}


TUNE_STAGE = "tune (Optuna)"


@contextlib.contextmanager
def tuning_apart(clock: StageClock) -> Iterator[dict]:
    """Time the package's `tune` as a stage of its own inside the clock's next stage.

    `train_challenger` imports `tune` when it is called, so for the stage's duration it
    calls this wrapper, which runs the real one: the code under test is unchanged. On
    exit the enclosing stage loses the tuning's wall and CPU seconds, and its peak RSS is
    its own high-water mark before and after tuning. Yields the `TuningResult`, as a
    dict, once tuned.
    """
    from churnloop.training import tuning

    search, outcome = tuning.tune, {}

    def timed(*args: Any, **kwargs: Any) -> Any:
        outcome["peak_before_mb"] = peak_rss_mb()
        with clock.stage(TUNE_STAGE):
            result = search(*args, **kwargs)
        reset_peak_rss()
        outcome.update(result.to_dict())
        return result

    tuning.tune = timed
    try:
        yield outcome
    finally:
        tuning.tune = search
    tuned, enclosing = clock.stages[-2], clock.stages[-1]
    if tuned.stage != TUNE_STAGE:
        raise RuntimeError(f"the stage {enclosing.stage!r} did not tune: is tuning on?")
    enclosing.seconds -= tuned.seconds
    enclosing.cpu_seconds -= tuned.cpu_seconds
    enclosing.peak_rss_mb = max(enclosing.peak_rss_mb, outcome.pop("peak_before_mb"))


FORCE_REASON = "bench: time the deployment whatever the gate says"


TUNING_TIMEOUT_SECONDS = 86_400
"""The loop's tuning budget with ``--tuning-trials``: a day, so that the trial count alone
stops its search, as it stops the bare script's (each run checks that it did)."""


@dataclasses.dataclass(frozen=True)
class Search:
    """The search both sides run with ``--tuning-trials``, as plain data: the bare script
    gets `SEARCH_SPACE`'s ranges as dicts and imports none of the package's training code."""

    trials: int
    folds: int
    seed: int
    space: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, trials: int) -> Search:
        """``trials`` trials over the package's search space, folds and seed."""
        from churnloop.settings import Settings
        from churnloop.training.tuning import SEARCH_SPACE

        settings = Settings()
        space = {name: dataclasses.asdict(bounds) for name, bounds in SEARCH_SPACE.items()}
        return cls(trials, settings.tuning_cv_folds, settings.training_seed, space)

    def environment(self) -> dict[str, str]:
        """The loop's settings for this search."""
        return {
            "CHURNLOOP_TUNING_TRIALS": str(self.trials),
            "CHURNLOOP_TUNING_TIMEOUT_SECONDS": str(TUNING_TIMEOUT_SECONDS),
            "CHURNLOOP_TUNING_CV_FOLDS": str(self.folds),
        }


def loop_run(
    prepared: Path,
    home: Path,
    window_days: int,
    holdout_days: int,
    redis: str | None,
    search: Search | None,
) -> dict:
    """One timed run of the loop on a fresh copy of ``prepared`` (in a child process)."""
    os.environ.update(_environment(home, window_days, holdout_days, redis))
    os.environ.update(search.environment() if search else {})
    empty_bench_redis(redis)
    import_task_libraries()
    from churnloop import registry
    from churnloop.settings import get_settings
    from churnloop.training.plan import plan_training_run

    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(prepared, home)
    champion = registry.aliases(get_settings())[registry.CHAMPION]
    clock = StageClock()
    with (
        model_server(champion),
        contextlib.redirect_stdout(io.StringIO()),  # the task logs' prints
    ):
        daily_stages(get_settings(), clock, DAY)
        plan = plan_training_run(
            get_settings(), as_of=DAY + dt.timedelta(days=1), params={}, trigger="bench"
        )
        promotion = training_stages(get_settings(), clock, plan, force_reason=FORCE_REASON)
    tuned = _loop_tuning(promotion["tuning"], search) if search else None
    return {"stages": clock.as_dicts(), "blessed": promotion["blessed"], "tuning": tuned}


def _loop_tuning(tuned: dict, search: Search) -> dict:
    """What the loop's search chose; refuses a search the time budget cut short."""
    if tuned["stopped_by"] != "trials" or len(tuned["trials"]) != search.trials:
        raise RuntimeError(
            f"the loop's tuning ran {len(tuned['trials'])} of {search.trials} trials, stopped "
            f"by {tuned['stopped_by']}: the comparison needs the trial count to stop it"
        )
    return {
        "best_cv_auc": tuned["best_cv_auc"],
        "best_params": tuned["best_params"],
        "trial_cv_aucs": [trial["cv_auc"] for trial in tuned["trials"]],
        "package_seconds": tuned["seconds"],
    }


# -- the bare peer ------------------------------------------------------------------------


def bare_run(
    prepared: Path, window_days: int, holdout_days: int, params: dict, search: Search | None
) -> dict:
    """Read, build features, (tune,) fit, calibrate, importance, predict: pandas,
    scikit-learn and LightGBM only, and Optuna with ``search``."""
    import importlib

    import numpy as np
    import pandas as pd
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import roc_auc_score

    from churnloop import schema
    from churnloop.features import definition
    from churnloop.settings import Settings

    if search is not None:
        importlib.import_module("optuna")  # before the clocks, as the loop's worker has it

    def partition(dataset: str, day: dt.date) -> Path:
        return prepared / "lake" / dataset / f"dt={day.isoformat()}" / "data.parquet"

    start, end = window(window_days)
    held = [start + dt.timedelta(days=offset) for offset in range(-1, (DAY - start).days)]
    days = [d for d in held if start <= d <= end]
    label_days = [d + dt.timedelta(days=schema.LABEL_DELAY_DAYS) for d in days]
    snapshots, labels = (
        schema.validated_dataset(schema.SNAPSHOTS),
        schema.validated_dataset(schema.LABELS),
    )
    clock = StageClock()
    with clock.stage("read"):
        landing = prepared / "landing"
        today = pd.read_parquet(landing / schema.SNAPSHOTS / f"dt={DAY}" / "data.parquet")
        new_labels = pd.read_parquet(landing / schema.LABELS / f"dt={DAY}" / "data.parquet")
        history = [
            pd.read_parquet(partition(snapshots, d), columns=definition.HISTORY_COLUMNS)
            for d in held
        ]
        window_features = pd.concat(
            [pd.read_parquet(partition(definition.DATASET, d)) for d in days], ignore_index=True
        )
        matured = [pd.read_parquet(partition(labels, d)) for d in label_days if d < DAY]
        window_labels = pd.concat([*matured, new_labels], ignore_index=True)
    with clock.stage("build features"):
        day_features = definition.build_features(pd.concat([*history, today]), DAY)
        training = window_labels.merge(window_features, on=[schema.ENTITY, schema.TIMESTAMP])
    names = list(definition.FEATURE_SCHEMA.names)
    categorical = list(schema.CATEGORICAL)
    split, tuned = None, None
    if search is not None:
        with clock.stage(TUNE_STAGE):
            split = _bare_split(training, end, holdout_days)
            tuned = bare_search(split[0], names, categorical, params, search)
        params = tuned["best_params"]
    settings = Settings()
    seed = settings.training_seed

    def fitted(rows):
        model = bare_pipeline(names, categorical, params, seed)
        return model.fit(
            rows[names], rows[schema.LABEL], classifier__categorical_feature=categorical
        )

    with clock.stage("fit"):
        train, holdout = split or _bare_split(training, end, holdout_days)
        model = fitted(train)
    with clock.stage("calibrate"):
        churn = bare_calibrated(model, fitted, train, names, settings.calibration_share)
    with clock.stage("importance"):
        rows = holdout.sample(n=min(len(holdout), settings.importance_max_rows), random_state=seed)
        permutation_importance(
            model,
            rows[names],
            rows[schema.LABEL],
            scoring="roc_auc",
            n_repeats=settings.importance_repeats,
            random_state=seed,
        )
    with clock.stage("predict"):
        auc = roc_auc_score(holdout[schema.LABEL], churn(holdout))
        scores = churn(day_features)
    return {
        "stages": clock.as_dicts(),
        "holdout_roc_auc": auc,
        "scored": int(np.size(scores)),
        "tuning": tuned,
    }


def _bare_split(training, end: dt.date, holdout_days: int) -> tuple:
    """The window's rows before the last ``holdout_days`` days, and those days'."""
    from churnloop import schema

    recent = training[schema.TIMESTAMP].dt.date > end - dt.timedelta(days=holdout_days)
    return training[~recent], training[recent]


def bare_calibrated(model, fit: Callable, train, names: list[str], share: float) -> Callable:
    """``model``'s churn scores of a frame, calibrated as the package calibrates: an
    isotonic map of the margins that ``fit`` of the earlier days gives the latest days;
    uncalibrated for a training split of one day."""
    from sklearn.isotonic import IsotonicRegression

    from churnloop import schema

    held_out = _bare_calibration_split(train, share)
    if held_out is None:
        return lambda frame: model.predict_proba(frame[names])[:, 1]
    earlier, latest = held_out
    margins = fit(earlier).decision_function(latest[names])
    calibrator = IsotonicRegression(out_of_bounds="clip").fit(margins, latest[schema.LABEL])
    return lambda frame: calibrator.predict(model.decision_function(frame[names]))


def _bare_calibration_split(train, share: float) -> tuple | None:
    """The training split's earlier days and its latest ``share`` of days (at least one,
    never all), as the package holds them out to calibrate on; None for a split of one
    day, which the package does not calibrate (the 1M loop's)."""
    from churnloop import schema

    days = sorted(train[schema.TIMESTAMP].dt.date.unique())
    if len(days) < 2:
        return None
    latest = min(len(days) - 1, max(1, round(share * len(days))))
    recent = train[schema.TIMESTAMP].dt.date >= days[-latest]
    return train[~recent], train[recent]


def bare_pipeline(names: list[str], categorical: list[str], params: dict, seed: int):
    """The package's pipeline, written with scikit-learn and LightGBM directly."""
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    numeric = [name for name in names if name not in categorical]
    encoder = OrdinalEncoder(  # as churnloop.training.pipeline.build_pipeline
        handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
    )
    preprocess = ColumnTransformer(
        [("numeric", "passthrough", numeric), ("categorical", encoder, categorical)],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    classifier = LGBMClassifier(
        **params, random_state=seed, deterministic=True, force_col_wise=True, verbose=-1
    )
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def bare_search(train, names: list[str], categorical: list[str], params: dict, search: Search):
    """Optuna's seeded TPE over ``search.space``, each trial scored by its mean ROC AUC on
    expanding day folds of ``train``: the package's search, written bare.

    It starts where the loop's does: from the champion's parameters, fitted from
    ``params``, so LightGBM's defaults fill the space's other names.
    """
    import numpy as np
    import optuna
    from lightgbm import LGBMClassifier
    from sklearn.metrics import roc_auc_score

    from churnloop import schema

    defaults = LGBMClassifier(**params).get_params()
    base = {key: defaults[key] for key in sorted({*params, *search.space}) if key in defaults}
    days = train[schema.TIMESTAMP].dt.normalize().to_numpy("datetime64[ns]")
    folds = bare_folds(days, search.folds)
    sampler = optuna.samplers.TPESampler(seed=search.seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial(
        {
            name: _clip(value, search.space[name])
            for name, value in base.items()
            if name in search.space
        }
    )

    def objective(trial: optuna.Trial) -> float:
        drawn = {name: _suggest(trial, name, bounds) for name, bounds in search.space.items()}
        aucs = []
        for fit_rows, validation_rows in folds:
            fitting, validation = train.iloc[fit_rows], train.iloc[validation_rows]
            model = bare_pipeline(names, categorical, {**base, **drawn}, search.seed)
            model.fit(
                fitting[names], fitting[schema.LABEL], classifier__categorical_feature=categorical
            )
            scores = model.predict_proba(validation[names])[:, 1]
            aucs.append(roc_auc_score(validation[schema.LABEL], scores))
        return float(np.mean(aucs))

    study.optimize(objective, n_trials=search.trials)
    return {
        "best_cv_auc": study.best_value,
        "best_params": {**base, **study.best_params},
        "trial_cv_aucs": [trial.value for trial in study.trials],
    }


def bare_folds(days, folds: int) -> list[tuple]:
    """Row positions (fit, validate): the distinct days in ``folds + 1`` consecutive blocks,
    fold ``i`` fitting on the days before block ``i + 1`` and validating on it."""
    import numpy as np

    blocks = np.array_split(np.unique(days), folds + 1)
    return [
        (np.flatnonzero(days < block[0]), np.flatnonzero(np.isin(days, block)))
        for block in blocks[1:]
    ]


def _suggest(trial, name: str, bounds: dict[str, Any]) -> float | int:
    """The trial's value of ``name`` within ``bounds`` (a ``ParamRange`` as a dict)."""
    low, high, log = bounds["low"], bounds["high"], bounds["log"]
    if bounds["integer"]:
        return trial.suggest_int(name, int(low), int(high), log=log)
    return trial.suggest_float(name, low, high, log=log)


def _clip(value: float, bounds: dict[str, Any]) -> float | int:
    """``value`` moved into ``bounds``, so the base parameters can start the search."""
    inside = min(max(value, bounds["low"]), bounds["high"])
    return int(round(inside)) if bounds["integer"] else float(inside)


# -- driver -------------------------------------------------------------------------------


def _in_child(function: Callable[..., Any], *args: Any, method: str = "fork") -> Any:
    """``function(*args)`` in a child: forked from this preloaded process, or spawned."""
    with multiprocessing.get_context(method).Pool(1) as pool:
        return pool.apply(function, args)


def bench_size(
    root: Path,
    customers: int,
    runs: int,
    window_days: int,
    holdout_days: int,
    redis: str | None,
    search: Search | None,
) -> dict:
    from churnloop.settings import Settings

    params = Settings().model_params
    prepared, home = root / f"prepared-{customers}", root / "home"
    print(f"{customers:,} customers: preparing {window_days}-day window ...", flush=True)
    _in_child(prepare, home, customers, window_days, holdout_days, redis)
    shutil.rmtree(prepared, ignore_errors=True)
    home.rename(prepared)
    loop_runs, bare_runs, blessed, tunings = [], [], [], {"loop": [], "bare": []}
    for index in range(runs):
        loop = _in_child(loop_run, prepared, home, window_days, holdout_days, redis, search)
        loop_runs.append(loop["stages"])
        blessed.append(loop["blessed"])
        bare = _in_child(
            bare_run, prepared, window_days, holdout_days, params, search, method="spawn"
        )
        bare_runs.append(bare["stages"])
        total = sum(stage["seconds"] for stage in loop["stages"])
        bare_total = sum(stage["seconds"] for stage in bare["stages"])
        print(f"  run {index + 1}: loop {total:.1f} s, bare {bare_total:.1f} s", flush=True)
        for side, outcome in (("loop", loop), ("bare", bare)):
            tunings[side].append(outcome["tuning"])
            if outcome["tuning"]:
                print(f"    {side} best CV ROC AUC {outcome['tuning']['best_cv_auc']:.4f}")
    shutil.rmtree(prepared, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    empty_bench_redis(redis)
    return {
        "customers": customers,
        "online_store": "redis" if redis else "sqlite",
        "window_days": window_days,
        "holdout_days": holdout_days,
        "training_rows": customers * window_days,
        "runs": runs,
        "gate_blessed": blessed,
        "loop": summarize(loop_runs),
        "bare": summarize(bare_runs),
        "loop_total_seconds": _median_total(loop_runs),
        "bare_total_seconds": _median_total(bare_runs),
        "loop_peak_rss_mb": max(s["peak_rss_mb"] for run in loop_runs for s in run),
        "bare_peak_rss_mb": max(s["peak_rss_mb"] for run in bare_runs for s in run),
        **({"tuning": _search_record(search, tunings)} if search else {}),
    }


def _search_record(search: Search, tunings: dict[str, list[dict]]) -> dict:
    """The search both sides ran and, per side, what each run chose."""
    return {
        "trials": search.trials,
        "cv_folds": search.folds,
        "seed": search.seed,
        "loop_timeout_seconds": TUNING_TIMEOUT_SECONDS,
        **tunings,
    }


def _median_total(runs: list[list[dict]]) -> float:
    return statistics.median(sum(stage["seconds"] for stage in run) for run in runs)


def print_table(size: dict) -> None:
    print(
        f"\n{size['customers']:,} customers, {size['window_days']}-day window "
        f"({size['training_rows']:,} labelled rows), median of {size['runs']}:"
    )
    print("| stage | wall (s) | CPU (s) | peak RSS (MB) |")
    print("| --- | ---: | ---: | ---: |")
    for side in ("loop", "bare"):
        for row in size[side]:
            name = row["stage"] if side == "loop" else f"bare: {row['stage']}"
            print(
                f"| {name} | {row['seconds']:.2f} | {row['cpu_seconds']:.2f} "
                f"| {row['peak_rss_mb']:,.0f} |"
            )
        print(
            f"| **{side} total** | {size[f'{side}_total_seconds']:.2f} | | "
            f"{size[f'{side}_peak_rss_mb']:,.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window-days", type=int, default=7)
    parser.add_argument("--holdout-days", type=int, default=2)
    parser.add_argument("--window-days-1m", type=int, default=2)
    parser.add_argument("--redis", help="HOST:PORT: Feast's Redis online store, not SQLite")
    parser.add_argument("--result", default="loop", help="name of the results file")
    parser.add_argument(
        "--tuning-trials", type=int, default=0, help="tune both sides with this many trials"
    )
    args = parser.parse_args()
    search = Search.of(args.tuning_trials) if args.tuning_trials else None
    import_task_libraries()  # once: the loop's runs fork from here, as Airflow's tasks would
    sizes = []
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as folder:
        for customers in args.customers:
            days, held = args.window_days, args.holdout_days
            if customers >= MILLION:
                days, held = args.window_days_1m, 1
            size = bench_size(Path(folder), customers, args.runs, days, held, args.redis, search)
            print_table(size)
            sizes.append(size)
    write_results(args.result, {"sizes": sizes})


if __name__ == "__main__":
    main()
