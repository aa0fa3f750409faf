import numpy as np
import pytest
from scipy.stats import chi2_contingency

from churnloop.monitoring.significance import holm_adjusted, homogeneity_p_value


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
