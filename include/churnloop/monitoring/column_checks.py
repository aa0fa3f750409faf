"""What drift may compare, checked before anything is measured: the columns (the model's
features by default; never ids, times, the label or the score), each column's kind, and
values of one type on both sides, so bad input is an error that names the column rather
than a drift verdict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from churnloop.errors import DataError
from churnloop.features.definition import FEATURE_SCHEMA
from churnloop.schema import ENTITY, LABEL, PREDICTION, TIMESTAMP

Kind = Literal["numeric", "categorical"]

NOT_FEATURES = (ENTITY, TIMESTAMP, LABEL, PREDICTION)
"""Never compared as features; the model's scores are compared by ``compute_score_drift``."""

FEATURE_COLUMNS = tuple(FEATURE_SCHEMA.names)
"""The columns compared when none are given: the model's inputs, as the feature definition
names them."""

_VALUE_TYPES = {
    "integer": "number",
    "floating": "number",
    "mixed-integer-float": "number",
    "decimal": "number",
    "string": "text",
    "boolean": "boolean",
}
"""pandas' inferred value types, grouped into the types a column may hold on both sides."""


def columns_to_compare(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str] | None
) -> list[str]:
    """``columns`` (default: the model's features) after checking both frames hold them."""
    compared = list(FEATURE_COLUMNS if columns is None else columns)
    if not compared:
        raise DataError("no columns to compare for drift")
    not_features = [column for column in compared if column in NOT_FEATURES]
    if not_features:
        raise DataError(
            f"drift compares the model's features, not {not_features} (ids, times and the "
            "label never; scores with compute_score_drift)"
        )
    for side, frame in (("reference", reference), ("current", current)):
        absent = [column for column in compared if column not in frame.columns]
        if absent:
            hint = (
                "; without columns drift compares the model's features" if columns is None else ""
            )
            raise DataError(
                f"the {side} data lacks column(s) {absent} that drift compares{hint}; "
                f"it has {list(frame.columns)}"
            )
    return compared


def column_kind(series: pd.Series, declared_categorical: bool = False) -> Kind:
    """Numeric or categorical, by the reference's dtype; booleans and declared codes are
    categorical, datetimes are refused."""
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise DataError(
            f"column {series.name!r} holds {dtype} values; drift compares numeric and "
            "categorical columns only (leave it out of the columns)"
        )
    if declared_categorical or pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    return "numeric" if pd.api.types.is_numeric_dtype(dtype) else "categorical"


def _value_type(series: pd.Series) -> str | None:
    """ "number", "text" or "boolean" (or what else pandas infers); None: no value present."""
    values = series.cat.categories if isinstance(series.dtype, pd.CategoricalDtype) else series
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred == "empty" or (inferred == "floating" and series.isna().all()):
        return None
    return _VALUE_TYPES.get(inferred, inferred)


def require_same_value_type(column: str, reference: pd.Series, current: pd.Series) -> None:
    """Refuse a column whose values change type between the samples (text vs numbers), which
    would otherwise read as a complete change of distribution."""
    types = {"reference": _value_type(reference), "current": _value_type(current)}
    for side, value_type in types.items():
        if value_type not in (None, *_VALUE_TYPES.values()):
            raise DataError(
                f"column {column!r} holds {value_type} values in the {side} data; drift "
                "compares columns of numbers, booleans or text"
            )
    if None not in types.values() and types["reference"] != types["current"]:
        raise DataError(
            f"column {column!r} holds {types['reference']} values in the reference data and "
            f"{types['current']} values in the current data: cast one side to the other's type"
        )


def numeric_values(series: pd.Series, column: str, side: str) -> np.ndarray:
    """The column as float64 with NaN for missing; non-numbers and infinities are errors."""
    try:
        numbers = pd.to_numeric(series, errors="raise")
    except (ValueError, TypeError) as error:
        raise DataError(
            f"column {column!r} is numeric, but the {side} data holds non-numeric values ({error})"
        ) from error
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    if np.isinf(values).any():
        raise DataError(f"column {column!r} holds infinite values in the {side} data")
    return values
