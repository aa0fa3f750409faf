"""The model server's request and response bodies (pydantic models, shown at ``/docs``).

Requests forbid unknown fields and hold values to the data contract at the door: int64
ids, the contract's categories or null, finite numbers, strings of at most
`MAX_TEXT_CHARS`; a refused value is never scored or logged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    model_validator,
    with_config,
)
from pydantic_core import core_schema
from typing_extensions import TypedDict

from churnloop import schema
from churnloop.serving import routing

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The range of the contract's ``customer_id`` (an Arrow int64), and of integer features."""
MAX_TEXT_CHARS = 64
"""Longest string a feature value may be: the contract's categories are single words."""
FEATURE_VALUE_RULE = (
    f"Input should be a finite number (an integer within int64), a string of at most "
    f"{MAX_TEXT_CHARS} characters, a boolean or null"
)


class _OneErrorPerValue:
    """Report a value that fits no type of its union as one error at the value's place
    (pydantic would list one per type, each under the type's name)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        union = schema["schema"] if schema["type"] == "nullable" else schema
        union.update(custom_error_type="feature_value", custom_error_message=FEATURE_VALUE_RULE)
        return schema


FeatureValue = Annotated[
    Annotated[float, Field(allow_inf_nan=False)]
    | Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
    | Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
    | bool
    | None,
    _OneErrorPerValue(),
]
"""What Python's JSON parser accepts but no model input can be is refused here: NaN,
Infinity, 1e400 (read as infinity), integers no float holds, long strings."""


@with_config(ConfigDict())  # its own: extra_items, not the request's extra="forbid"
class RequestFeatures(TypedDict, total=False, extra_items=FeatureValue):
    """One row of feature values by name (GET /model lists the model's); the contract's
    categorical columns take only its values or null."""

    plan: Literal[schema.PLANS] | None
    region: Literal[schema.REGIONS] | None
    contract: Literal[schema.CONTRACTS] | None


class _InstanceFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int | None = Field(
        default=None,
        ge=INT64_MIN,
        le=INT64_MAX,
        description="Score this customer from the online store's features.",
    )
    features: RequestFeatures | None = Field(
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


Variant = Literal[routing.CHAMPION, routing.CANDIDATE]
VARIANT_RULE = (
    "Who answered: the champion, or the candidate for the share of customers a canary "
    "routes to it (a stable hash of customer_id; explicit-feature instances go to the "
    "champion)."
)


class ModelRef(BaseModel):
    model: str
    version: int
    threshold: float


class Prediction(BaseModel):
    customer_id: int | None = None
    probability: float = Field(description="Churn probability of the model that answered.")
    label: int = Field(description="1 (will churn) when probability >= threshold, else 0.")
    variant: Variant = Field(description=VARIANT_RULE)


class PredictResponse(Prediction, ModelRef):
    """The answer for one instance; ``version`` is the version that answered."""


class InstanceError(BaseModel):
    status: int
    detail: str


class BatchItem(BaseModel):
    customer_id: int | None = None
    probability: float | None = None
    label: int | None = None
    version: int | None = Field(default=None, description="The version that scored it.")
    variant: Variant | None = Field(default=None, description=VARIANT_RULE)
    error: InstanceError | None = Field(
        default=None, description="Why this instance was not scored (e.g. 404 unknown customer)."
    )


class BatchResponse(ModelRef):
    """``model`` and ``version`` name the champion; each item names what scored it."""

    predictions: list[BatchItem]


class ExplainResponse(ModelRef):
    customer_id: int | None = None
    variant: Variant = Field(description=VARIANT_RULE)
    probability: float
    raw_score: float = Field(
        description=(
            "The booster's log-odds before calibration: base_value + sum(contributions). "
            "probability is its logistic, or the calibrator's map of it when the model is "
            "calibrated."
        )
    )
    base_value: float = Field(description="The model's expected raw score.")
    contributions: dict[str, float] = Field(description="Per input feature, in log-odds.")
