"""Whether two samples' counts differ more than chance allows, over many columns at once.

A likelihood-ratio (G) test per column, then Holm's correction over every comparison of one
decision, so the chance of any false alarm among them stays at the level asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import chi2

MIN_EXPECTED_COUNT = 5.0
"""Bins expected to hold fewer rows of the smaller sample are pooled into one for the test:
the chi-square approximation fails on sparse bins (Cochran's rule)."""


def pooled_counts(
    reference_counts: np.ndarray, current_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Both samples' counts with empty bins dropped and the bins expected to hold fewer than
    ``MIN_EXPECTED_COUNT`` rows of the smaller sample pooled into one; mass where the
    reference has none still counts, in the pooled bin."""
    table = np.vstack([reference_counts, current_counts]).astype("float64")
    table = table[:, table.sum(axis=0) > 0]
    expected_in_smaller = table.sum(axis=0) * table.sum(axis=1).min() / table.sum()
    sparse = expected_in_smaller < MIN_EXPECTED_COUNT
    if sparse.any():
        table = np.column_stack([table[:, ~sparse], table[:, sparse].sum(axis=1)])
    return table[0], table[1]


def homogeneity_p_value(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """p-value of a likelihood-ratio (G) test that both samples share one distribution.

    Sparse bins are pooled first (`pooled_counts`), so that the chi-square approximation
    holds: rare categories would otherwise reject far more often than the level says.
    """
    table = np.vstack(pooled_counts(reference_counts, current_counts))
    if table.shape[1] < 2:
        return 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    observed = table > 0
    statistic = 2 * np.sum(table[observed] * np.log(table[observed] / expected[observed]))
    return float(chi2.sf(statistic, df=table.shape[1] - 1))


def holm_adjusted(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values: rejecting those <= alpha keeps the family-wise
    error rate at most alpha, whatever the dependence between the tests."""
    p = np.asarray(p_values, dtype="float64")
    order = np.argsort(p, kind="stable")
    steps = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(steps, 1.0)
    return adjusted
