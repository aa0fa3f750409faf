"""Counts to compare two samples on: bins without blind spots, categories, and the effect
sizes computed from them.

Bins are cut from the reference and open at both ends, so mass that moves below the
reference's minimum or above its maximum is seen; point masses and the values of discrete
columns get bins of their own. Missing values count as a bin of their own, last.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import wasserstein_distance

PSI_EPSILON = 1e-4
"""Floor of a bin's share: an empty bin would make PSI infinite."""

WASSERSTEIN_MIN_STD = 1e-3
"""Floor of the norm, as in Evidently: a constant reference column must not divide by 0."""


def bin_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Left-closed bin edges ``[e_i, e_i+1)`` cut from the reference's present values.

    Values below the reference's minimum and above its maximum fall in bins of their own
    (the reference has none there). A value holding at least 1/``bins`` of the reference
    (a point mass such as 0), and every value of a column with at most ``bins`` distinct
    values, starts a bin that ends at the reference's next value, so it is alone there in
    the reference; the other values are cut at their quantiles into ``bins`` bins.
    """
    present = reference[~np.isnan(reference)]
    if present.size == 0:
        return np.empty(0)
    values, counts = np.unique(present, return_counts=True)
    point_masses = values if values.size <= bins else values[counts * bins >= present.size]
    others = values[~np.isin(values, point_masses)]
    other_rows = present[~np.isin(present, point_masses)]
    quantiles = np.quantile(other_rows, np.arange(1, bins) / bins) if others.size else []
    after = np.searchsorted(others, point_masses, side="right")
    next_values = others[after[after < others.size]]
    cuts = [values[:1], quantiles, point_masses, next_values, np.nextafter(values[-1:], np.inf)]
    return np.unique(np.concatenate(cuts))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the ``edges.size + 1`` bins, then of missing values (NaN)."""
    missing = np.isnan(values)
    index = np.searchsorted(edges, values[~missing], side="right")
    return np.append(np.bincount(index, minlength=edges.size + 1), missing.sum())


def category_counts(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Counts per category of both samples, in an order rows cannot change, then missing."""
    counts = [series.value_counts(dropna=False) for series in (reference, current)]
    present = [side[side.index.notna()] for side in counts]
    categories = sorted(set(present[0].index) | set(present[1].index), key=str)
    return tuple(
        np.append(side.reindex(categories, fill_value=0).to_numpy(), whole.sum() - side.sum())
        for side, whole in zip(present, counts, strict=True)
    )


def population_stability_index(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI of two samples' counts over the same bins, shares floored at ``PSI_EPSILON``."""
    expected = np.maximum(reference_counts / reference_counts.sum(), PSI_EPSILON)
    actual = np.maximum(current_counts / current_counts.sum(), PSI_EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def normed_wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """Wasserstein distance of the present values, in reference standard deviations."""
    reference, current = reference[~np.isnan(reference)], current[~np.isnan(current)]
    norm = max(float(np.std(reference)), WASSERSTEIN_MIN_STD)
    return float(wasserstein_distance(reference, current) / norm)
