"""Whether two samples' counts differ more than chance allows, over many columns at once.

A likelihood-ratio (G) test per column, then Holm's correction over every comparison of one
decision, so the chance of any false alarm among them stays at the level asked for; and a
lower confidence bound of PSI, for a decision on how much two samples differ.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import brentq
from scipy.stats import chi2, ncx2

from churnloop.monitoring.binning import population_stability_index

MIN_EXPECTED_COUNT = 5.0
"""Bins expected to hold fewer rows of the smaller sample are pooled into one for the test:
the chi-square approximation fails on sparse bins (Cochran's rule)."""
MIN_BIN_SHARE = 0.1
"""The least share of both samples' rows in a bin of `psi_lower_bound`."""


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


def psi_lower_bound(
    reference_counts: np.ndarray, current_counts: np.ndarray, alpha: float
) -> tuple[float, float]:
    """PSI of two histograms (counts of the same ordered bins) and its lower confidence
    bound at 1 - ``alpha``, both over `decile_bins`.

    PSI is Jeffreys' divergence: ``n`` PSI (``n = n1 n2 / (n1 + n2)``) is close to a noncentral
    chi-square with k - 1 degrees of freedom and noncentrality ``n`` times the true PSI, and
    the bound inverts it (as RMSEA's interval does). The point estimate reads about
    (k - 1) / ``n`` high on pure noise; the bound does not."""
    starts = decile_bins(reference_counts + current_counts)
    reference = np.add.reduceat(reference_counts, starts)
    current = np.add.reduceat(current_counts, starts)
    psi = population_stability_index(reference, current)
    size = reference.sum() * current.sum() / (reference.sum() + current.sum())
    statistic, df = size * psi, starts.size - 1
    if df < 1 or chi2.sf(statistic, df) >= alpha:
        return psi, 0.0
    noncentrality = brentq(lambda nc: ncx2.sf(statistic, df, nc) - alpha, 0.0, statistic)
    return psi, float(noncentrality / size)


def decile_bins(counts: np.ndarray) -> np.ndarray:
    """Where each merged bin starts when adjacent bins are merged until each holds at least
    ``MIN_BIN_SHARE`` of ``counts`` (a short remainder joins the last): the textbook PSI's
    deciles, read from fixed buckets. On sparse bins the chi-square approximation behind
    `psi_lower_bound` trips several times more often than its level at a true limit."""
    starts, held, least = [0], 0.0, MIN_BIN_SHARE * counts.sum()
    for index, count in enumerate(counts[:-1]):
        held += count
        if held >= least:
            starts.append(index + 1)
            held = 0.0
    if len(starts) > 1 and held + counts[-1] < least:
        starts.pop()
    return np.asarray(starts)


def holm_adjusted(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values: rejecting those <= alpha keeps the family-wise
    error rate at most alpha, whatever the dependence between the tests."""
    p = np.asarray(p_values, dtype="float64")
    order = np.argsort(p, kind="stable")
    steps = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(steps, 1.0)
    return adjusted
