"""The model server's request and response bodies (pydantic models, shown at ``/docs``).

Requests forbid unknown fields; an instance gives exactly one of ``customer_id`` or
``features``, a request one of those or ``instances`` (a batch).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

FeatureValue = float | int | str | bool | None


class _InstanceFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int | None = Field(
        default=None, description="Score this customer from the online store's features."
    )
    features: dict[str, FeatureValue] | None = Field(
        default=None,
        description="Score these feature values: every model input (GET /model lists them), "
        "null for a missing value.",
    )


class Instance(_InstanceFields):
    """One customer to score: by id, or by explicit features (exactly one of them)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Instance:
        if (self.customer_id is None) == (self.features is None):
            raise ValueError("give exactly one of 'customer_id' or 'features'")
        return self


class PredictRequest(_InstanceFields):
    """A single instance (``customer_id`` or ``features``) or a batch (``instances``)."""

    instances: list[Instance] | None = Field(
        default=None, min_length=1, description="A batch; each is scored on its own."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> PredictRequest:
        given = [
            self.customer_id is not None,
            self.features is not None,
            self.instances is not None,
        ]
        if sum(given) != 1:
            raise ValueError("give exactly one of 'customer_id', 'features' or 'instances'")
        return self


class ModelRef(BaseModel):
    model: str
    version: int
    threshold: float


class Prediction(BaseModel):
    customer_id: int | None = None
    probability: float = Field(description="Churn probability of the champion.")
    label: int = Field(description="1 (will churn) when probability >= threshold, else 0.")


class PredictResponse(Prediction, ModelRef):
    """The champion's answer for one instance."""


class InstanceError(BaseModel):
    status: int
    detail: str


class BatchItem(BaseModel):
    customer_id: int | None = None
    probability: float | None = None
    label: int | None = None
    error: InstanceError | None = Field(
        default=None, description="Why this instance was not scored (e.g. 404 unknown customer)."
    )


class BatchResponse(ModelRef):
    predictions: list[BatchItem]


class ExplainResponse(ModelRef):
    customer_id: int | None = None
    probability: float
    raw_score: float = Field(description="Log-odds: base_value + sum(contributions).")
    base_value: float = Field(description="The model's expected raw score.")
    contributions: dict[str, float] = Field(description="Per input feature, in log-odds.")
