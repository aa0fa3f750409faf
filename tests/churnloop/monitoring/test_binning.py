import numpy as np
import pytest

from churnloop.monitoring.binning import bin_counts, bin_edges


@pytest.mark.parametrize(
    ("reference", "probes", "shared"),
    [
        ([7.0] * 50, [6.0, 7.0, 8.0], []),
        ([0.0, 1, 1, 2, 2, 2, 4], [-5.0, 0.0, 1.0, 2.0, 4.0, 9.0], [0.5, 1.5, 3.0]),
    ],
    ids=["constant", "four codes"],
)
def test_a_column_with_few_values_gets_a_bin_per_value_and_open_ends(reference, probes, shared):
    """Below, at each of and above the reference's values, every probe has a bin of its own
    (before, a constant column moving up and a code moving from 0 to 1 scored 0); a value
    between two reference values shares the lower one's bin."""
    edges = bin_edges(np.array(reference), bins=10)

    def bin_of(value: float) -> int:
        return int(np.flatnonzero(bin_counts(np.array([value]), edges))[0])

    bins = [bin_of(probe) for probe in probes]
    assert bins == sorted(set(bins)) and len(set(bins)) == len(probes)
    assert [bin_of(value) for value in shared] == [bin_of(np.floor(value)) for value in shared]
    assert bin_counts(np.array([np.nan]), edges)[-1] == 1, "missing values: the last bin"


def test_a_point_mass_gets_its_own_bin_and_the_rest_its_quantiles():
    rng = np.random.default_rng(4)
    reference = np.where(rng.random(10_000) < 0.9, 0.0, rng.lognormal(3, 1, 10_000))

    edges = bin_edges(reference, bins=10)
    counts = bin_counts(reference, edges)

    zero_bin = np.searchsorted(edges, 0.0, side="right")
    assert counts[zero_bin] == (reference == 0).sum(), "zero is alone in its bin"
    rest = np.delete(counts[:-1], zero_bin)
    assert np.count_nonzero(rest) == 10 and rest.max() < 2 * rest[rest > 0].min()
