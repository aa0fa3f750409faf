"""Frames as the model takes them: pandas' nullable dtypes turned into NumPy ones, and
seeded samples of frames too large to score whole.

A training set or a request may hold ``Int64``, ``Float64``, ``boolean`` or ``string``
columns with ``<NA>``; scikit-learn's encoders refuse ``<NA>``. Numbers become float64
with NaN, categories object with NaN, which LightGBM and the encoders treat as missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def with_numpy_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every nullable column converted; the same object if there is none."""
    converted = {
        name: _numpy_column(frame[name])
        for name, dtype in frame.dtypes.items()
        if isinstance(dtype, pd.api.extensions.ExtensionDtype)
        and not isinstance(dtype, pd.DatetimeTZDtype | pd.CategoricalDtype)
    }
    return frame.assign(**converted) if converted else frame


def _numpy_column(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return column.astype("float64")
    return column.astype(object).where(column.notna(), np.nan)


def at_most(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """``frame`` if it has at most ``rows`` rows, else a sample of ``rows`` rows drawn with
    ``seed``, kept in ``frame``'s order."""
    if len(frame) <= rows:
        return frame
    return frame.sample(n=rows, random_state=seed).sort_index()
