"""One typed settings object for the whole project, read from ``CHURNLOOP_*`` variables.

With no variable set, everything runs on the embedded default: SQLite and local files
under ``CHURNLOOP_HOME``. The production profile (PostgreSQL, Redis, S3) is chosen by
setting variables alone; this module is the only place that derives one from the
other, so nothing else in the code branches on the profile.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Where every part of the loop keeps its state, and the thresholds users tune."""

    model_config = SettingsConfigDict(
        env_prefix="CHURNLOOP_", extra="ignore", env_parse_none_str="null"
    )

    home: Path = Field(
        default=PROJECT_ROOT / ".churnloop",
        description="Working folder of the embedded profile (lake, databases, Airflow home).",
    )
    project_root: Path = Field(default=PROJECT_ROOT, description="Checkout holding dags/ etc.")

    landing_uri: str = Field(default="", description="Where upstream drops daily files.")
    lake_uri: str = Field(
        default="", description="Root of the lake: a folder or s3://bucket/prefix."
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, SeaweedFS); None for AWS."
    )
    s3_region: str = "us-east-1"

    mlflow_tracking_uri: str = Field(default="", description="MLflow backend or server URL.")
    mlflow_artifact_uri: str = Field(default="", description="Artifact root of new experiments.")
    mlflow_experiment: str = "churnloop"
    model_name: str = "churn-model"

    feast_project: str = "churnloop"
    feast_registry: str = Field(
        default="", description="File path, or a SQLAlchemy URL for Feast's SQL registry."
    )
    feast_redis: str | None = Field(
        default=None,
        description="Redis connection string (host:port) for the online store; SQLite if unset.",
    )
    feast_sqlite_path: str = Field(default="", description="Online store file when Redis is unset.")

    airflow_api_url: str = Field(
        default="http://localhost:8080", description="Airflow UI/API base, for links."
    )
    airflow_api_host: str = Field(
        default="127.0.0.1",
        description="Interface the embedded Airflow's API server (UI, REST API, report pages) "
        "listens on. Every user is an admin there: widen it only behind your own login.",
    )

    serving_host: str = "127.0.0.1"
    serving_port: int = 8000
    serving_admin_token: SecretStr | None = Field(
        default=None, description="Token the model server's admin endpoints require."
    )

    # -- scheduling ------------------------------------------------------------------------
    schedule_start: dt.date = Field(
        default=dt.date(2026, 1, 1), description="First logical day of customer_data (catchup)."
    )
    training_cron: str | None = Field(
        default="0 3 * * 1",
        description="When continuous_training runs on its own besides drift (UTC cron); null: "
        "only drift events and manual runs (a simulated history, where real time is not the "
        "data's time). Weekly: without drift a retrain buys no ROC AUC, after a concept drift "
        "each week's run adds a week of matured post-drift labels (see docs/staleness.md).",
    )
    customer_data_max_active_runs: int = Field(
        default=2, description="Days customer_data may process at once (backfills)."
    )

    # -- validation ----------------------------------------------------------------------
    snapshot_min_rows: int = Field(default=50, description="Fewest rows a daily drop may have.")
    snapshot_max_rows: int = Field(default=5_000_000, description="Most rows in a daily drop.")
    data_docs_index_runs: int = Field(
        default=60,
        ge=1,
        description="Validation runs the Data Docs index lists, newest first (bounds its build).",
    )

    # -- features --------------------------------------------------------------------------
    feast_pool_slots: int = Field(
        default=1,
        ge=1,
        description="Slots of the Airflow pool for Feast writes (1 for a file "
        "registry; more with the SQL registry).",
    )
    feature_ttl_days: int = Field(
        default=2,
        ge=1,
        description="Feast feature view TTL: the oldest feature row a training example may "
        "join when its own day's row is missing; older gaps fail the training set.",
    )
    materialize_overlap_days: int = Field(
        default=1,
        ge=0,
        description="Days before the logical day re-materialized with it, to carry late rows.",
    )
    feast_online_write_batch_rows: int = Field(
        default=20_000, gt=0, description="Rows per write to the online store (bounds memory)."
    )
    feast_registry_cache_ttl_seconds: int = Field(
        default=60,
        ge=0,
        description="How long a process trusts its cached Feast registry; a new apply is seen "
        "by long-running readers (the model server) after at most this.",
    )

    # -- training and evaluation -----------------------------------------------------------
    training_window_days: int = Field(
        default=90, ge=2, description="Days of labelled snapshots a training set spans."
    )
    holdout_days: int = Field(
        default=7, ge=1, description="Latest days of the window held out for evaluation."
    )
    training_seed: int = Field(default=42, description="Seed of the model and of sampling.")
    model_params: dict[str, Any] = Field(
        default_factory=lambda: {
            "n_estimators": 200,
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_child_samples": 50,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "n_jobs": 2,
        },
        description="LightGBM parameters of the challenger (JSON in CHURNLOOP_MODEL_PARAMS).",
    )
    tuning_trials: int = Field(
        default=0,
        ge=0,
        description="Most Optuna trials searching the LightGBM parameters before training; "
        "0: tuning off, the parameters are reused as they are.",
    )
    tuning_timeout_seconds: float = Field(
        default=600,
        gt=0,
        description="Wall-clock budget of tuning; no trial starts that the mean trial time "
        "says would end past it, and the best trial so far wins.",
    )
    tuning_cv_folds: int = Field(
        default=3,
        ge=1,
        description="Expanding-window folds by snapshot day that score each tuning trial, "
        "inside the training split (never the holdout).",
    )
    git_sha: str | None = Field(
        default=None,
        description="The commit the code was built from (the image's GIT_SHA build argument); "
        "None: asked of git in the checkout.",
    )
    require_known_commit: bool = Field(
        default=False,
        description="Refuse to register a model whose commit is unknown (production).",
    )
    training_min_rows: int = Field(
        default=1_000, ge=1, description="Fewest labelled snapshots a training set may have."
    )
    training_min_positive_rate: float = Field(
        default=0.01, ge=0, le=1, description="Lowest share of churners a training set may have."
    )
    training_max_positive_rate: float = Field(
        default=0.6, ge=0, le=1, description="Highest share of churners a training set may have."
    )
    reference_max_rows: int = Field(
        default=20_000, ge=100, description="Rows of the holdout kept as the drift reference."
    )
    train_metrics_max_rows: int = Field(
        default=100_000,
        ge=100,
        description="Rows of the training split scored for the train_* metrics (a sample "
        "above it).",
    )
    calibration: Literal["auto", "off"] = Field(
        default="auto",
        description="auto: calibrate the challenger's probabilities (isotonic or sigmoid) when "
        "that lowers Brier and ECE on the latest training days; off: serve the raw scores.",
    )
    calibration_share: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of the training split's snapshot days (the latest) that "
        "calibrators are fitted and judged on; at least one day, never all.",
    )
    calibration_min_positives: int = Field(
        default=100,
        ge=10,
        description="Fewer churners in the calibration days: no calibration is tried.",
    )
    calibration_min_negatives: int = Field(
        default=100,
        ge=10,
        description="Fewer non-churners in the calibration days: no calibration is tried.",
    )
    calibration_confidence: float = Field(
        default=0.95,
        gt=0.5,
        lt=1,
        description="One-sided confidence that a calibrator lowers the Brier score before it "
        "is applied (out-of-fold, rows grouped by customer).",
    )
    gate_confidence: float = Field(
        default=0.95,
        gt=0.5,
        lt=1,
        description="Two-sided confidence of the gate's DeLong intervals of ROC AUC.",
    )
    gate_min_holdout_positives: int = Field(
        default=100,
        ge=2,
        description="Fewer churners in the holdout fail the gate: its intervals would be too "
        "wide to tell a model from noise (widen holdout_days).",
    )
    gate_min_holdout_negatives: int = Field(
        default=100, ge=2, description="Fewer non-churners in the holdout fail the gate."
    )
    gate_min_roc_auc: float = Field(
        default=0.65,
        description="Value threshold: the lower bound of the challenger's holdout ROC AUC.",
    )
    gate_noninferiority_margin: float | None = Field(
        default=0.01,
        ge=0,
        description="Non-inferiority: the lower bound of the ROC AUC change vs the champion "
        "must stay above minus this; None: off.",
    )
    gate_superiority_margin: float = Field(
        default=0.005,
        ge=0,
        description="A change whose lower bound exceeds this is called superior (a label; "
        "seed-to-seed differences of one specification stay below it).",
    )
    gate_min_gain_over_baseline: float | None = Field(
        default=0.0,
        description="The lower bound of the ROC AUC gain over the best baseline must exceed "
        "this; None: baselines are reported, not required.",
    )
    gate_slice_columns: list[str] = Field(
        default=["plan", "region", "contract", "age_band", "tenure_bucket"],
        description="Columns whose values are slices (age_band and tenure_bucket are cut "
        "from age and tenure_months).",
    )
    gate_min_slice_positives: int = Field(
        default=30, ge=2, description="Fewer churners in a slice: reported, not judged."
    )
    gate_min_slice_negatives: int = Field(
        default=30, ge=2, description="Fewer non-churners in a slice: reported, not judged."
    )
    gate_max_slice_drop: float | None = Field(
        default=0.05,
        ge=0,
        description="A judged slice fails when its whole change interval vs the champion "
        "lies below minus this; None: off.",
    )
    gate_min_slice_auc: float | None = Field(
        default=0.6,
        description="Inclusion floor: a judged slice fails when its whole AUC interval lies "
        "below this, at bootstrap too; None: off.",
    )
    gate_max_slice_gap: float | None = Field(
        default=0.15,
        ge=0,
        description="Inclusion: the best and worst judged slice of a column fail when their "
        "AUC gap's whole interval exceeds this, at bootstrap too; None: off.",
    )
    baseline_max_rows: int = Field(
        default=200_000,
        ge=1_000,
        description="Rows of the training split the baselines are fitted on (a sample above).",
    )
    importance_max_rows: int = Field(
        default=20_000,
        ge=1_000,
        description="Holdout rows the challenger's permutation importance shuffles (a seeded "
        "sample above); informative, the gate does not use it.",
    )
    importance_repeats: int = Field(
        default=3,
        ge=1,
        description="Shuffles per feature of the permutation importance; each repeat costs "
        "one prediction of importance_max_rows rows per feature.",
    )

    # -- serving ---------------------------------------------------------------------------
    serving_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Churn probability from which the label is 1."
    )
    serving_poll_seconds: float = Field(
        default=10, gt=0, description="How often the server checks whether @champion moved."
    )
    serving_shadow_fraction: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of requests the @challenger also scores (logged, never answered).",
    )
    serving_max_instances: int = Field(
        default=1_000, ge=1, description="Most instances one batch /predict request may hold."
    )
    serving_max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Largest request body the model server reads (413 beyond); a full batch "
        "of serving_max_instances feature rows is about 1 MB.",
    )
    serving_max_instance_bytes: int = Field(
        default=2048,
        ge=64,
        description="Body bytes allowed per instance of serving_max_instances: a body over "
        "their product is refused (413) before it is parsed, so it cannot carry far more "
        "instances than the cap (a feature row of the 34 features is about 1 KB).",
    )
    serving_workers: int = Field(
        default=1, ge=1, description="uvicorn worker processes of `churnloop serve`."
    )
    prediction_log_flush_rows: int = Field(
        default=5_000, ge=1, description="Pending prediction-log rows that trigger a write."
    )
    prediction_log_flush_seconds: float = Field(
        default=60, gt=0, description="Longest a prediction-log row waits before it is written."
    )
    prediction_log_max_pending_rows: int = Field(
        default=500_000,
        ge=1,
        description="Unwritten rows kept while the lake is unreachable; older ones are dropped.",
    )
    deploy_timeout_seconds: float = Field(
        default=120, gt=0, description="How long the deploy step waits for the server to serve."
    )
    deploy_smoke_rows: int = Field(
        default=200, ge=1, description="Reference rows the deploy step scores on the server."
    )
    deploy_skew_tolerance: float = Field(
        default=1e-6,
        ge=0,
        description="Largest |served - offline| probability the deploy step accepts.",
    )
    deploy_start_server: bool = Field(
        default=True,
        description="Let the deploy step start `churnloop serve` when nothing answers at a "
        "loopback serving_url (embedded profile); a remote server is never started.",
    )

    # -- drift -----------------------------------------------------------------------------
    drift_numeric_method: Literal["psi", "wasserstein"] = Field(
        default="psi",
        description="Effect size for numeric columns: PSI on reference-quantile bins (counts "
        "missing values as a bin), or Wasserstein distance over the reference's std.",
    )
    drift_psi_threshold: float = Field(
        default=0.2, gt=0, description="PSI from which a numeric column or the score drifted."
    )
    drift_psi_bins: int = Field(
        default=10, ge=2, description="Quantile bins of the reference that PSI compares."
    )
    drift_wasserstein_threshold: float = Field(
        default=0.1, gt=0, description="Normed Wasserstein distance from which a column drifted."
    )
    drift_jensenshannon_threshold: float = Field(
        default=0.1, gt=0, description="Jensen-Shannon distance from which a categorical drifted."
    )
    drift_share_threshold: float = Field(
        default=0.5, gt=0, le=1, description="Share of drifted columns that is dataset drift."
    )
    drift_min_rows: int = Field(
        default=100,
        ge=2,
        description="Fewest rows per side (the whole day or a slice) for a drift verdict; "
        "fewer: insufficient data, never drift (see docs/drift.md).",
    )
    drift_alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Family-wise error rate of the drift tests: a column drifts only when its "
        "test of 'same distribution' rejects at this level, Holm-corrected over the columns "
        "compared (columns x slices for slice drift).",
    )
    drift_slice_columns: list[str] = Field(
        default=["plan", "region", "tenure_bucket"],
        description="Slices whose drift is checked on its own (JSON list); age_band and "
        "tenure_bucket are cut from age and tenure_months as the gate's slices are.",
    )
    drift_important_columns: list[str] = Field(
        default=["age", "monthly_charges", "plan", "contract", "region"],
        description="Columns whose drift alone triggers retraining (JSON list): who the "
        "customers are, which rolling aggregates do not change as history accumulates.",
    )
    drift_report_sample_rows: int = Field(
        default=50_000, ge=1_000, description="Rows per side the Evidently HTML is drawn from."
    )
    drift_max_auc_drop: float = Field(
        default=0.05, ge=0, description="Largest ROC AUC drop on matured labels vs the baseline."
    )
    drift_performance_min_rows: int = Field(
        default=200, ge=2, description="Fewer labelled rows are reported, not judged."
    )
    drift_max_estimated_auc_drop: float | None = Field(
        default=0.05,
        ge=0,
        description="Largest ROC AUC loss estimated before the labels (the reference's "
        "estimate minus the upper bound of the day's); drift with a smaller loss does not "
        "trigger retraining (see docs/drift.md). None: drift alone triggers, as before.",
    )
    drift_estimate_simulations: int = Field(
        default=200,
        ge=20,
        description="Label draws (Bernoulli of each score) whose AUCs' spread gives the "
        "interval of the estimated ROC AUC.",
    )
    drift_confidence: float = Field(
        default=0.95,
        gt=0.5,
        lt=1,
        description="Two-sided confidence of the drift check's intervals of ROC AUC "
        "(estimated before the labels, and served).",
    )
    drift_auc_min_positives: int = Field(
        default=30,
        ge=2,
        description="Fewer churners (expected, before the labels) leave an estimated or "
        "served ROC AUC reported, not judged.",
    )
    drift_auc_min_negatives: int = Field(
        default=30, ge=2, description="Fewer non-churners: likewise not judged."
    )
    drift_max_training_age_days: int = Field(
        default=45,
        ge=1,
        description="Days the champion's training data may end before the day judged; labels "
        "lag 30 days, so this must exceed 30 plus the training cadence. A guard against a "
        "stopped or rejecting cron: age alone costs no measurable ROC AUC by 60 days (see "
        "docs/staleness.md).",
    )
    drift_cooldown_days: int = Field(
        default=7, ge=0, description="Days after a training run in which drift triggers nothing."
    )
    skew_max_mismatch_rate: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="Share of a feature's served values that may differ from the lake's row "
        "of the same customer; the skew check fails when its interval's lower bound is above.",
    )
    skew_numeric_tolerance: float = Field(
        default=1e-9,
        ge=0,
        description="Relative and absolute difference up to which a served number equals the "
        "lake's (both are doubles of the same value when nothing is skewed).",
    )
    skew_min_rows: int = Field(
        default=200,
        ge=1,
        description="Served rows matched to a lake row below which the skew check reports "
        "insufficient data instead of a verdict.",
    )
    skew_confidence: float = Field(
        default=0.95,
        gt=0,
        lt=1,
        description="Two-sided confidence of the skew check's Wilson intervals of mismatch rates.",
    )

    @model_validator(mode="after")
    def _derive_embedded_defaults(self) -> Settings:
        """Fill every unset location from ``home``: that is the embedded profile."""
        home = self.home
        defaults: dict[str, Any] = {
            "landing_uri": str(home / "landing"),
            "lake_uri": str(home / "lake"),
            "mlflow_tracking_uri": f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
            "mlflow_artifact_uri": str(home / "mlflow" / "artifacts"),
            "feast_registry": str(home / "feast" / "registry.db"),
            "feast_sqlite_path": str(home / "feast" / "online.db"),
        }
        for name, value in defaults.items():
            if not getattr(self, name):
                setattr(self, name, value)
        return self

    @property
    def great_expectations_dir(self) -> Path:
        return self.project_root / "great_expectations"

    @property
    def feature_repo_dir(self) -> Path:
        return self.project_root / "feature_repo"

    @property
    def dags_dir(self) -> Path:
        return self.project_root / "dags"

    @property
    def serving_url(self) -> str:
        return f"http://{self.serving_host}:{self.serving_port}"


def get_settings() -> Settings:
    """Read the settings afresh, so a changed environment (a test, a task) is seen."""
    return Settings()
