"""
### continuous_training: train a challenger, let the gate decide, serve the champion

Runs weekly (`settings.training_cron`: Monday 03:00 UTC, docs/staleness.md; `null`: drift and manual
runs only), when `drift_report` emits the `churn_drift` asset, or by hand from the
trigger form (every Param below has a description). One run at a time; drift events that
arrive meanwhile are merged into the next run, which records the events it consumed on
the model version it trains.

1. **plan**: the as-of day (logical date, or the day after the drift it reacts to) and
   the training window, whose labels have matured (30 days).
2. **build_training_set**: point-in-time join in Feast (`churn_model_v1`), saved to
   `training_sets/dt=<as-of>/` in the lake.
3. **validate_training_set**: the Great Expectations suite `training_set` (label present
   and binary, class balance, row count, feature nulls). Not retried.
4. **train_challenger**: LightGBM in a scikit-learn pipeline, its parameters searched by
   Optuna within a budget (Params `tuning_trials`, `tuning_timeout_seconds`; each trial a
   child run in MLflow) or the champion's reused, logged to MLflow and registered with
   alias `@challenger`.
5. **evaluate_challenger**: champion, challenger and two baselines (logistic regression,
   best single feature) fitted on the same split, judged on the same holdout with DeLong
   intervals: value, non-inferiority vs the champion, gain over the best baseline, slices
   (plan, region, contract, age band, tenure bucket) with enough churners, inclusion floors
   and gaps; the decision, its intervals and every reason are tags on the version and a
   table in the log; a model card is logged with the run.
6. **promote_challenger**: only a blessed (or forced, with a reason) challenger moves on:
   with a champion to compare with it becomes `@candidate` for the canary, otherwise (the
   first model, or Param `canary_steps` empty) `@champion` at once, the old one keeping
   `@previous-champion`. A run as of a day older than the champion's data never promotes,
   so a backfill cannot demote a newer model.
7. **canary**: the model server routes a share of customers to `@candidate` (a stable hash
   of `customer_id`), step by step (Param `canary_steps`, default 10% → 50% → 100%), each
   step baking `canary_bake_seconds` with enough traffic before guardrails compare the
   candidate with the champion: 5xx rate, p99 latency, NaN/infinite scores, the score
   distribution, and label agreement on shadow-scored requests both ways (intervals, see
   docs/canary.md). A passed last step makes the candidate `@champion`; a tripped
   guardrail removes it and fails the task naming the guardrail. A sensor in reschedule
   mode: no worker slot is held while a step bakes. Each step is in the champion history.
8. **deploy_champion**: the model server serves the new champion, passes a smoke test and
   a training/serving skew check, or the alias rolls back and the task fails.

**On-call**: a red `validate_training_set` means the training data broke its suite (see
the Report link); a red `canary` means the candidate was rolled back (the log names the
guardrail and its numbers; `@champion` never moved); a red `deploy_champion` means the new
champion was rolled back (the log says why). `churnloop canary status` shows a running
canary's guardrails, `churnloop canary abort|finish --reason "…"` ends it by hand, and
`churnloop rollback --reason "…"` moves `@champion` back. A run not finished
`training_run_budget` after it was queued raises a Deadline Alert (e-mail, Slack;
Browse → Deadlines), whether it is stuck, slow or waiting behind another run.
"""

from __future__ import annotations

from airflow.sdk import (
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    Param,
    PokeReturnValue,
    dag,
    get_current_context,
    task,
)

from churnloop.orchestration.dag_defaults import (
    CHURN_DRIFT,
    CREDENTIALS_MASKED,
    DECISIONS_LOGGED,
    FAILURES_ALERTED,
    FEAST_POOL,
    INFRA_RETRIES,
    NO_RETRIES,
    dag_start_date,
)
from churnloop.orchestration.deadlines import training_budget
from churnloop.settings import get_settings

SETTINGS = get_settings()

DATA, GATE, TUNING, PROMOTION, CANARY = (
    "Training data",
    "Evaluation gate",
    "Tuning",
    "Promotion",
    "Canary",
)
"""Sections of the trigger form; each Param's title is what the form shows above its field."""

PARAMS = {
    "training_window_days": Param(
        SETTINGS.training_window_days,
        type="integer",
        minimum=2,
        title="Training window (days)",
        section=DATA,
        description="Days of labelled snapshots to train and evaluate on, counted back from "
        "the as-of day: the run's logical date (empty: today), whose labels have matured.",
    ),
    "holdout_days": Param(
        SETTINGS.holdout_days,
        type="integer",
        minimum=1,
        title="Holdout (days)",
        section=DATA,
        description="Latest days of the window held out to compare champion and challenger.",
    ),
    "min_roc_auc": Param(
        SETTINGS.gate_min_roc_auc,
        type="number",
        minimum=0,
        maximum=1,
        title="Minimum ROC AUC",
        section=GATE,
        description="Value threshold: the lower bound of the challenger's holdout ROC AUC "
        "interval must reach this.",
    ),
    "noninferiority_margin": Param(
        SETTINGS.gate_noninferiority_margin,
        type=["null", "number"],
        minimum=0,
        title="Non-inferiority margin",
        section=GATE,
        description="The lower bound of the ROC AUC change vs the champion must stay above "
        "minus this. Empty: the check is off.",
    ),
    "min_gain_over_baseline": Param(
        SETTINGS.gate_min_gain_over_baseline,
        type=["null", "number"],
        title="Minimum gain over the baselines",
        section=GATE,
        description="The lower bound of the ROC AUC gain over the best baseline (logistic "
        "regression, best single feature) must exceed this. Empty: reported, not required.",
    ),
    "max_slice_drop": Param(
        SETTINGS.gate_max_slice_drop,
        type=["null", "number"],
        minimum=0,
        title="Largest slice drop",
        section=GATE,
        description="A slice with enough churners and non-churners fails when its whole "
        "change interval vs the champion lies below minus this. Empty: the check is off.",
    ),
    "tuning_trials": Param(
        SETTINGS.tuning_trials,
        type="integer",
        minimum=0,
        title="Tuning trials",
        section=TUNING,
        description="Optuna trials searching the LightGBM parameters by time-ordered CV "
        "inside the training split (0: reuse the champion's parameters).",
    ),
    "tuning_timeout_seconds": Param(
        SETTINGS.tuning_timeout_seconds,
        type="number",
        minimum=0,
        title="Tuning budget (seconds)",
        section=TUNING,
        description="Wall-clock budget of tuning; the best trial so far wins when it runs out.",
    ),
    "force_promote_reason": Param(
        None,
        type=["null", "string"],  # "" with type string makes the UI form require it
        pattern=r"\S",
        title="Force promotion: reason",
        section=PROMOTION,
        description="Empty: the gate decides. A reason forces the promotion even if the gate "
        "rejects the challenger, and is recorded on the model version.",
    ),
    "dry_run": Param(
        False,
        type="boolean",
        title="Dry run",
        section=PROMOTION,
        description="Train and evaluate, but promote and deploy nothing.",
    ),
    "canary_steps": Param(
        SETTINGS.canary_steps,
        type="array",
        items={"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        title="Canary steps (shares of customers)",
        section=CANARY,
        description="Shares of customers the candidate serves, step by step, rising to 1.0. "
        "Empty: no canary, a blessed challenger becomes @champion at once.",
    ),
    "canary_bake_seconds": Param(
        SETTINGS.canary_bake_seconds,
        type="number",
        exclusiveMinimum=0,
        title="Bake period per step (seconds)",
        section=CANARY,
        description="Least time each step serves live traffic before its guardrails are "
        "judged (it also waits for canary_min_requests per variant).",
    ),
}

CANARY_TIMEOUT_SECONDS = 86_400 * 7
"""The canary sensor's backstop: its own wait (canary_evidence_wait_factor bake periods per
step without enough traffic) rolls the candidate back long before."""


@task(multiple_outputs=True)
def plan() -> dict:
    """Resolve Params, as-of day, training window and consumed drift events."""
    from churnloop.orchestration.task_support import data_errors_fail_fast
    from churnloop.training.plan import plan_run

    context = get_current_context()
    with data_errors_fail_fast():
        return plan_run(
            get_settings(),
            params=context["params"],
            logical_date=context.get("logical_date"),
            run_after=context["dag_run"].run_after,
            run_type=context["dag_run"].run_type,
            asset_events=context.get("triggering_asset_events"),
        )


@task(pool=FEAST_POOL, pool_slots=1)
def build_training_set(planned: dict) -> str:
    """Point-in-time training set from Feast, saved to the lake."""
    from churnloop.training import steps

    return steps.build_training_set(get_settings(), planned)


@task(**NO_RETRIES)
def validate_training_set(planned: dict) -> None:
    """Great Expectations suite `training_set`; a failure stops the run."""
    from churnloop.orchestration.task_support import data_errors_fail_fast, publish_report_link
    from churnloop.training import steps

    with data_errors_fail_fast():
        report = steps.validate_training_set(get_settings(), planned)
    publish_report_link(report)


@task(multiple_outputs=True)
def train_challenger(planned: dict) -> dict:
    """Fit the challenger; log to MLflow; register it as `@challenger`."""
    from churnloop.orchestration.task_support import data_errors_fail_fast
    from churnloop.training import steps

    context = get_current_context()
    lineage = {"dag_id": context["dag"].dag_id, "run_id": context["run_id"]}
    with data_errors_fail_fast():
        return steps.train_challenger(get_settings(), planned, lineage)


@task(multiple_outputs=True)
def evaluate_challenger(planned: dict, trained: dict) -> dict:
    """Champion vs challenger on the same holdout; decision tagged on the version."""
    from churnloop.training import steps

    return steps.evaluate_challenger(get_settings(), planned, trained)


@task(multiple_outputs=True)
def promote_challenger(planned: dict, trained: dict, decision: dict) -> dict:
    """Move `@champion` if blessed (or forced); never in a dry run or a stale run."""
    from churnloop.training import steps

    return steps.promote_challenger(get_settings(), planned, trained, decision)


@task.sensor(
    mode="reschedule",
    poke_interval=SETTINGS.canary_poke_seconds,
    timeout=CANARY_TIMEOUT_SECONDS,
)
def canary(planned: dict, promotion: dict) -> PokeReturnValue:
    """Step the candidate's share of customers up while its guardrails hold, then make it
    `@champion`; a tripped guardrail rolls it back and fails here, naming it."""
    import logging

    from churnloop.canary.controller import advance
    from churnloop.orchestration.task_support import data_errors_fail_fast

    if not promotion.get("candidate"):
        return PokeReturnValue(is_done=True, xcom_value=promotion)
    with data_errors_fail_fast():
        progress = advance(
            get_settings(),
            promotion["version"],
            planned["canary_steps"],
            planned["canary_bake_seconds"],
        )
    logging.getLogger(__name__).info("%s", progress.message)
    return PokeReturnValue(is_done=progress.done, xcom_value=progress.promotion())


@task(multiple_outputs=True)
def deploy_champion(promotion: dict) -> dict:
    """Serve the new champion: reload, smoke test, skew check; else roll back."""
    from churnloop.orchestration.task_support import data_errors_fail_fast, skip_task
    from churnloop.serving.deploy import deploy

    if not promotion["promoted"]:
        skip_task(f"nothing to deploy: {promotion['reason']}")
    with data_errors_fail_fast():  # a rolled-back deployment must not be retried
        return deploy(get_settings(), promotion["version"]).to_dict()


@dag(
    dag_id="continuous_training",
    description="Train, gate, promote, deploy: "
    + (f"cron {SETTINGS.training_cron} UTC and " if SETTINGS.training_cron else "")
    + "each churn_drift event",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(SETTINGS.training_cron, timezone="UTC"), assets=CHURN_DRIFT
    )
    if SETTINGS.training_cron
    else CHURN_DRIFT,
    start_date=dag_start_date(SETTINGS),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    default_args={
        "owner": "ml-engineering",
        **INFRA_RETRIES,
        **CREDENTIALS_MASKED,
        **DECISIONS_LOGGED,
        **FAILURES_ALERTED,
    },
    tags=["churnloop", "training", "mlflow"],
    deadline=training_budget(SETTINGS),
    doc_md=__doc__,
)
def continuous_training():
    planned = plan()
    trained = train_challenger(planned)
    build_training_set(planned) >> validate_training_set(planned) >> trained
    decision = evaluate_challenger(planned, trained)
    promotion = promote_challenger(planned, trained, decision)
    deploy_champion(canary(planned, promotion))


continuous_training()
