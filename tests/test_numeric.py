"""causal_hcc._numeric's distribution helpers equal scipy.stats bit for bit (they replace
it so that the package does not import scipy.stats, about 1.2 s)."""

import numpy as np
import pytest
from scipy import stats

from causal_hcc import _numeric as nm

RNG = np.random.default_rng(20261203)


def test_normal_tail_and_quantile_equal_scipy_stats():
    x = np.r_[RNG.normal(size=500) * 6, 0.0, -0.0, 8.5, -40.0, np.inf, -np.inf, np.nan]
    assert np.array_equal(nm.norm_sf(x), stats.norm.sf(x), equal_nan=True)
    q = np.r_[RNG.uniform(size=500), 0.0, 1.0, 0.5, 0.975, np.nan]
    assert np.array_equal(nm.norm_ppf(q), stats.norm.ppf(q), equal_nan=True)
    assert nm.norm_sf(1.959963984540054) == stats.norm.sf(1.959963984540054)
    assert nm.z_value(0.95) == float(stats.norm.ppf(0.975))


def test_chi_square_tail_equals_scipy_stats():
    x = np.r_[RNG.chisquare(3, size=400) * 4, 0.0, 1e-300, 500.0]
    df = np.r_[RNG.integers(1, 12, size=400), 1, 2, 3].astype(float)
    assert np.array_equal(nm.chi2_sf(x, df), stats.chi2.sf(x, df))
    assert nm.chi2_sf(7.81, 3) == stats.chi2.sf(7.81, 3)
    assert np.isnan(nm.chi2_sf(1.0, 0)) and np.isnan(stats.chi2.sf(1.0, 0))


@pytest.mark.parametrize("shape, axis", [((60,), None), ((8, 30), None), ((8, 30), 1),
                                         ((8, 30), 0)])
def test_rankdata_equals_scipy_with_ties(shape, axis):
    a = np.round(RNG.normal(size=shape), 1)     # one decimal: many ties
    assert np.array_equal(nm.rankdata(a, axis=axis), stats.rankdata(a, axis=axis))
    ints = RNG.integers(0, 4, size=shape)
    assert np.array_equal(nm.rankdata(ints, axis=axis), stats.rankdata(ints, axis=axis))


def test_rankdata_propagates_nan_like_scipy():
    a = np.array([3.0, np.nan, 1.0])
    assert np.isnan(nm.rankdata(a)).all() and np.isnan(stats.rankdata(a)).all()


@pytest.mark.parametrize("n", [3, 4, 10, 57, 400])
def test_correlations_equal_scipy_stats(n):
    """r and P of pearsonr / spearmanr equal scipy.stats' bit for bit, with ties, strong
    and weak correlation, and very different scales."""
    for scale, slope in ((1.0, 0.9), (1e6, -0.2), (1e-3, 0.0), (50.0, 5.0)):
        x = np.round(RNG.normal(size=n) * scale, 1 if scale > 1 else 6)
        y = slope * x + RNG.normal(size=n) * scale
        want = stats.pearsonr(x, y)
        assert nm.pearsonr(x, y) == (want.statistic, want.pvalue)
        want = stats.spearmanr(x, y)
        assert nm.spearmanr(x, y) == (want.statistic, want.pvalue)


def test_correlations_of_perfect_and_constant_input():
    x = np.arange(6.0)
    assert nm.pearsonr(x, 2 * x + 1) == (stats.pearsonr(x, 2 * x + 1).statistic,
                                         stats.pearsonr(x, 2 * x + 1).pvalue)
    assert nm.spearmanr(x, -x) == (stats.spearmanr(x, -x).statistic,
                                   stats.spearmanr(x, -x).pvalue)
    assert all(np.isnan(v) for v in nm.pearsonr(x, np.ones(6)))
    assert all(np.isnan(v) for v in nm.spearmanr(np.ones(6), x))
    assert nm.pearsonr([1.0, 2.0], [3.0, 1.0]) == (-1.0, 1.0)


def test_to_jsonable_hand_checked():
    """Leaves by exact type and by subclass (numpy scalars, bool, IntEnum, str subclass)
    give the same JSON values; NaN, infinities and pandas' missing markers give None."""
    import enum
    import json

    import pandas as pd

    class Level(enum.IntEnum):
        B = 2

    class Name(str):
        pass

    obj = {1: [1.5, float("nan"), float("-inf"), -0.0, True, np.bool_(False), 3,
               np.int64(4), np.float32(2.5), np.float64("nan"), Level.B, Name("x"), "s",
               None, pd.NA, pd.NaT, (7, 8)],
           "frame": pd.DataFrame({"x": [1.0, np.nan], "y": ["a", None]}),
           "array": np.array([[1, 2], [3, 4]]), "other": complex(1, 2)}
    out = nm.to_jsonable(obj)
    assert json.dumps(out) == (
        '{"1": [1.5, null, null, -0.0, true, false, 3, 4, 2.5, null, 2, "x", "s", null, '
        'null, null, [7, 8]], "frame": [{"x": 1.0, "y": "a"}, {"x": null, "y": null}], '
        '"array": [[1, 2], [3, 4]], "other": "(1+2j)"}')
    assert type(out["1"][10]) is int and type(out["1"][5]) is bool
