"""One typed settings object for the whole project, read from ``CHURNLOOP_*`` variables.

With no variable set, everything runs on the embedded default: SQLite and local files
under ``CHURNLOOP_HOME``. The production profile (PostgreSQL, Redis, S3) is chosen by
setting variables alone; this module is the only place that derives one from the
other, so nothing else in the code branches on the profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from churnloop._settings.alerts import AlertSettings
from churnloop._settings.calibration import CalibrationSettings
from churnloop._settings.deploy import DeploySettings
from churnloop._settings.drift import DriftSettings
from churnloop._settings.evaluation import EvaluationSettings
from churnloop._settings.features import FeatureSettings
from churnloop._settings.gate import GateSettings
from churnloop._settings.performance import PerformanceSettings
from churnloop._settings.scheduling import SchedulingSettings
from churnloop._settings.serving import ServingSettings
from churnloop._settings.skew import SkewSettings
from churnloop._settings.slices import SliceGateSettings
from churnloop._settings.training import TrainingSettings
from churnloop._settings.triggering import TriggerSettings
from churnloop._settings.tuning import TuningSettings
from churnloop._settings.validation import ValidationSettings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class LocationSettings(BaseModel):
    """Where each part keeps its state and listens: what tells the two profiles apart."""

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


# pydantic collects fields from the last base to the first: listing the groups from the
# last stage back keeps the fields (and model_dump) in the loop's order.
class Settings(
    AlertSettings,
    SkewSettings,
    TriggerSettings,
    PerformanceSettings,
    DriftSettings,
    DeploySettings,
    ServingSettings,
    EvaluationSettings,
    SliceGateSettings,
    GateSettings,
    CalibrationSettings,
    TuningSettings,
    TrainingSettings,
    FeatureSettings,
    ValidationSettings,
    SchedulingSettings,
    LocationSettings,
    BaseSettings,
):
    """Where every part of the loop keeps its state, and the thresholds users tune."""

    model_config = SettingsConfigDict(
        env_prefix="CHURNLOOP_", extra="ignore", env_parse_none_str="null"
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
