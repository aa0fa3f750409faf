"""LightGBM's fast single-row prediction, which its Python package does not expose.

A request usually scores one row. ``Booster.predict`` parses its parameters, sets up a
predictor and converts the matrix on every call (about 40 µs for the default 200 trees);
the C API's ``LGBM_BoosterPredictForMatSingleRowFast`` does that set-up once, and a row
then costs about 12 µs (docs/benchmarks.md, serving). `churnloop.serving.model` checks its
answers against the pipeline's when a version loads.

Private parts of the ``lightgbm`` package it touches: ``lightgbm.basic._LIB`` (the loaded
library), ``_safe_call``, ``_c_str`` and ``Booster._handle``. The C functions themselves are
LightGBM's public C API (``c_api.h``), and the predictor they set up is thread-safe (it
holds a mutex of its own). It predicts with as many trees as ``Booster.predict`` does by
default (the best iteration, if training stopped early), which matters twice: LightGBM
keeps the count of the last predict call in the booster, and every call shares it.
"""

from __future__ import annotations

import ctypes
import weakref

import numpy as np
from lightgbm import Booster
from lightgbm.basic import _LIB, _c_str, _safe_call

_PREDICT_NORMAL = 0
_PREDICT_RAW_SCORE = 1
_DTYPE_FLOAT64 = 1


class SingleRowPredictor:
    """``booster.predict`` (or its raw score) for one row, set up once."""

    def __init__(self, booster: Booster, *, raw_score: bool) -> None:
        self._booster = booster  # the predictor points into it: it must outlive the handle
        self._handle = ctypes.c_void_p()
        iterations = booster.best_iteration if booster.best_iteration > 0 else -1
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_PREDICT_RAW_SCORE if raw_score else _PREDICT_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(iterations),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(booster.num_feature()),
                _c_str("num_threads=1"),
                ctypes.byref(self._handle),
            )
        )
        weakref.finalize(self, _LIB.LGBM_FastConfigFree, self._handle)

    def predict(self, row: np.ndarray) -> float:
        """The prediction for ``row``: a C-contiguous float64 vector of every feature."""
        result, length = ctypes.c_double(), ctypes.c_int64()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                self._handle,
                ctypes.c_void_p(row.ctypes.data),
                ctypes.byref(length),
                ctypes.byref(result),
            )
        )
        return result.value
