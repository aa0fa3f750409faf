import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import chi2_contingency

from churnloop.monitoring.binning import population_stability_index
from churnloop.monitoring.significance import (
    decile_bins,
    holm_adjusted,
    homogeneity_p_value,
    psi_lower_bound,
)


def g_test(reference: list[int], current: list[int]) -> float:
    table = np.vstack([reference, current])
    return chi2_contingency(table, correction=False, lambda_="log-likelihood").pvalue


def test_the_test_is_a_g_test_with_sparse_bins_pooled():
    """Bins expected to hold < 5 rows of the smaller sample are pooled into one."""
    reference, current = [400, 300, 200, 100], [45, 25, 20, 10]
    sparse_reference, sparse_current = (
        [8_000, 6_000, 4_000, 1_990, 5, 5, 0],
        [40, 30, 20, 8, 0, 0, 2],
    )

    assert homogeneity_p_value(np.array(reference), np.array(current)) == pytest.approx(
        g_test(reference, current)
    )
    assert homogeneity_p_value(np.array(sparse_reference), np.array(sparse_current)) == (
        pytest.approx(g_test([8_000, 6_000, 4_000, 1_990, 10], [40, 30, 20, 8, 2]))
    )
    moved = np.array([8_000, 6_000, 4_000, 2_000, 0]), np.array([0, 0, 0, 0, 100])
    assert homogeneity_p_value(*moved) < 1e-10, "every value where the reference has none"


def test_holm_matches_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p_values = np.random.default_rng(5).random(30) ** 3

    expected = multitest.multipletests(p_values, method="holm")[1]

    np.testing.assert_allclose(holm_adjusted(p_values), expected)


BINS = 20
DRAWS = 2_000


def tilted(tilt: float) -> np.ndarray:
    """Shares of ``BINS`` ordered bins, uniform at tilt 0, leaning to the last bins above."""
    weights = np.exp(tilt * np.linspace(0, 1, BINS))
    return weights / weights.sum()


def true_psi(current: np.ndarray) -> float:
    """The population PSI over the population's own merged deciles: what the bound bounds."""
    reference = tilted(0.0)
    starts = decile_bins(reference + current)
    merged = np.add.reduceat(reference, starts), np.add.reduceat(current, starts)
    return population_stability_index(*merged)


TILT_AT_LIMIT = brentq(lambda tilt: true_psi(tilted(tilt)) - 0.2, 0.1, 5.0)


@pytest.mark.parametrize("rows", [100, 300, 1_000])
def test_a_true_psi_at_the_limit_is_exceeded_by_the_bound_at_about_alpha(rows: int):
    """Known truth: both histograms drawn from shares whose PSI is exactly 0.2. The bound
    lies above it in about alpha of draws (noncentral chi-square: measured 5.5-6.5% at
    alpha 5%; 3 sd of 2,000 draws is 1.5 points)."""
    rng, alpha = np.random.default_rng(rows), 0.05
    above = sum(
        psi_lower_bound(
            rng.multinomial(rows, tilted(0.0)), rng.multinomial(rows, tilted(TILT_AT_LIMIT)), alpha
        )[1]
        > 0.2
        for _ in range(DRAWS)
    )
    assert above <= (alpha + 0.02) * DRAWS


def test_noise_reads_as_psi_but_not_as_its_bound():
    """One distribution, 100 rows a side: the point estimate reads about (k - 1) / n high
    (~0.18 on 10 deciles) and above a limit of 0.2 in a fifth of draws; the bound is above
    zero in ~7% of draws at alpha 5% (the equality test behind it is a little liberal on
    100 rows) and above 0.2 in none."""
    rng, alpha = np.random.default_rng(5), 0.05
    bounds = [
        psi_lower_bound(rng.multinomial(100, tilted(0.0)), rng.multinomial(100, tilted(0.0)), alpha)
        for _ in range(DRAWS)
    ]
    points, lows = np.array(bounds).T
    assert np.mean(points > 0.2) > 0.15
    assert np.mean(lows > 0) <= 2 * alpha
    assert np.mean(lows > 0.2) <= 1 / DRAWS


def test_a_large_shift_is_bounded_above_the_limit():
    """A PSI of ~1.2 on 300 rows a side: the bound at alpha 0.1% clears 0.2 in 99% of draws."""
    rng, tilt = np.random.default_rng(9), brentq(lambda t: true_psi(tilted(t)) - 1.2, 0.1, 9.0)
    lows = [
        psi_lower_bound(
            rng.multinomial(300, tilted(0.0)), rng.multinomial(300, tilted(tilt)), 1e-3
        )[1]
        for _ in range(500)
    ]
    assert np.mean(np.array(lows) > 0.2) >= 0.99


@pytest.mark.parametrize(
    ("counts", "starts"),
    [
        ([1] * 11, [0, 2, 4, 6, 8]),  # the short remainder (index 10) joins the last bin
        ([50, 0, 0, 3, 2, 1, 60, 0, 0, 1], [0, 1]),
        ([30, 30, 30, 10], [0, 1, 2, 3]),
    ],
)
def test_decile_bins_hold_a_tenth_each(counts: list[int], starts: list[int]):
    assert decile_bins(np.array(counts)).tolist() == starts
