"""One typed settings object for the whole project, read from ``CHURNLOOP_*`` variables.

With no variable set, everything runs on the embedded default: SQLite and local files
under ``CHURNLOOP_HOME``. The production profile (PostgreSQL, Redis, S3) is chosen by
setting variables alone; this module is the only place that derives one from the
other, so nothing else in the code branches on the profile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from churnloop._settings.alerts import AlertSettings
from churnloop._settings.calibration import CalibrationSettings
from churnloop._settings.canary import CanarySettings
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
URI_LOCATIONS = (
    "landing_uri",
    "lake_uri",
    "mlflow_tracking_uri",
    "mlflow_artifact_uri",
    "feast_registry",
)
"""Locations that are a local path or SQLite file in the embedded profile, a service's URL
(S3, an MLflow server, a database) in production."""
_LOCAL_SCHEMES = ("sqlite:", "file:")
_FIELD_NAMED = re.compile(r'field "(?P<field>\w+)"')
"""How pydantic-settings' ``SettingsError`` names the field whose value it could not parse."""


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
    CanarySettings,
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

    @property
    def locations_in_services(self) -> list[str]:
        """The locations a service holds (S3, an MLflow server, a database, Redis) rather
        than a local path or SQLite file: none in the embedded profile, all in production."""
        remote = [name for name in URI_LOCATIONS if _in_a_service(getattr(self, name))]
        return remote + (["feast_redis"] if self.feast_redis else [])

    @property
    def profile(self) -> str:
        """``embedded`` (every location local), ``production`` (every one in a service), or
        ``mixed``: what ``churnloop settings`` reports."""
        remote = self.locations_in_services
        if not remote:
            return "embedded"
        return "production" if len(remote) == len(URI_LOCATIONS) + 1 else "mixed"


def _in_a_service(location: str) -> bool:
    return "://" in location and not location.startswith(_LOCAL_SCHEMES)


def get_settings() -> Settings:
    """Read the settings afresh, so a changed environment (a test, a task) is seen."""
    return Settings()


def env_variable(field: str) -> str:
    """The variable that sets ``field``: users set variables, so messages name them."""
    return f"{Settings.model_config['env_prefix']}{field}".upper()


def configuration_errors(error: ValidationError | SettingsError) -> list[str]:
    """What is wrong in the environment, one line per error, each named by its variable;
    a check across fields (a model validator) has no variable and says it all itself."""
    if isinstance(error, SettingsError):
        field = _FIELD_NAMED.search(str(error))
        where = env_variable(field["field"]) if field else "settings"
        return [f"{where}: {error.__cause__ or error} (lists and mappings are written as JSON)"]
    return [_configuration_error(detail) for detail in error.errors(include_url=False)]


def _configuration_error(detail: Mapping[str, Any]) -> str:
    message = detail["msg"].removeprefix("Value error, ")
    if not detail["loc"]:
        return message
    field, *inside = detail["loc"]
    where = env_variable(str(field)) + "".join(f"[{part!r}]" for part in inside)
    return f"{where}: {message} (got {detail['input']!r})"
