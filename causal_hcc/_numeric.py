"""Small numerical helpers shared by the estimators.

The normal and chi-square tail functions and ``rankdata`` are here rather than taken from
``scipy.stats``, whose import alone costs about 1.2 s (it builds every distribution's
docstring); they call the same ``scipy.special`` routines ``scipy.stats`` calls, so the
numbers are the same bit for bit (tests/test_numeric.py).
"""

import math
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import special


def norm_ppf(q):
    """Standard normal quantile: ``scipy.stats.norm.ppf`` (which is ``special.ndtri``)."""
    return special.ndtri(q)


def norm_sf(x):
    """Standard normal upper tail P(Z > x): ``scipy.stats.norm.sf`` (``ndtr(-x)``)."""
    return special.ndtr(-np.asarray(x, dtype=float))[()]


def chi2_sf(x, df):
    """Chi-square upper tail P(X > x) on ``df`` degrees of freedom: ``scipy.stats.chi2.sf``
    (``special.chdtrc``); NaN for df <= 0 as there."""
    x = np.asarray(x, dtype=float)
    df = np.asarray(df, dtype=float)
    out = np.where(df > 0, special.chdtrc(np.where(df > 0, df, 1.0), np.maximum(x, 0.0)),
                   np.nan)
    return out[()]


def rankdata(a, axis=None):
    """Ranks with ties averaged (1-based): ``scipy.stats.rankdata(a, axis=axis)``.

    A slice with a NaN ranks as all NaN (scipy's ``nan_policy='propagate'``). Without
    ``axis`` the array is flattened.
    """
    a = np.asarray(a)
    if axis is None:
        return _rank_1d(a.ravel())
    return np.apply_along_axis(_rank_1d, axis, a)


def _rank_1d(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f" and np.isnan(a).any():
        return np.full(a.shape, np.nan)
    sorter = np.argsort(a, kind="mergesort")
    inv = np.empty(sorter.size, dtype=np.intp)
    inv[sorter] = np.arange(sorter.size, dtype=np.intp)
    arr = a[sorter]
    obs = np.r_[True, arr[1:] != arr[:-1]]
    dense = obs.cumsum()[inv]
    count = np.r_[np.nonzero(obs)[0], len(obs)]
    return 0.5 * (count[dense] + count[dense - 1] + 1)


@lru_cache(maxsize=16)
def z_value(conf_level: float) -> float:
    """Two-sided normal critical value, e.g. 1.959964 for 0.95 (cached: hot loops)."""
    return float(norm_ppf(0.5 + conf_level / 2))


def to_jsonable(obj):
    """Plain Python containers and numbers for JSON: NaN and infinities become None.

    numpy scalars and arrays become Python numbers and lists, DataFrames lists of
    records, pandas' missing markers None; anything else unknown is written as text.
    """
    # The leaves first, by exact type: a report holds some 100,000 of them, and the
    # isinstance chain below cost seven calls per float.
    kind = type(obj)
    if kind is float:
        return obj if math.isfinite(obj) else None
    if kind is str or kind is int or kind is bool or obj is None:
        return obj
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, pd.DataFrame):
        return to_jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    if obj is pd.NA or obj is pd.NaT:
        return None
    return str(obj)


def row_sum(values: np.ndarray) -> np.ndarray:
    """Sum over the last axis of a 2-D array, the same way for every row.

    C order makes numpy sum each row identically whatever the number of rows, so a
    replicate's result does not depend on the batch it is computed in.
    """
    return np.ascontiguousarray(values).sum(axis=1)


def pearsonr(x, y) -> tuple[float, float]:
    """Pearson's r and its two-sided P value: ``scipy.stats.pearsonr(x, y)`` for 1-D data,
    the same operations in the same order (P from the null Beta(n/2 - 1, n/2 - 1) of r on
    (-1, 1), ``special.betaincc``). Constant input: (NaN, NaN), where scipy also warns."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError("pearsonr needs two 1-D arrays of the same length, at least 2")
    if (x == x[0]).all() or (y == y[0]).all():
        return math.nan, math.nan
    n = x.size
    xm = x - np.mean(x, keepdims=True)
    ym = y - np.mean(y, keepdims=True)
    # Scaled by the largest deviation before the norm, as scipy (no premature overflow).
    xmax = np.max(np.abs(xm), keepdims=True)
    ymax = np.max(np.abs(ym), keepdims=True)
    normxm = xmax * np.linalg.norm(xm / xmax, ord=2, axis=-1, keepdims=True)
    normym = ymax * np.linalg.norm(ym / ymax, ord=2, axis=-1, keepdims=True)
    r = np.clip(np.vecdot(xm / normxm, ym / normym), -1.0, 1.0)
    if n == 2:
        return float(np.round(r)), 1.0
    ab = np.asarray(n / 2 - 1, dtype=float)
    p = 2 * special.betaincc(ab, ab, (np.abs(r) - (-1)) / 2)
    return float(r), float(p)


def spearmanr(x, y) -> tuple[float, float]:
    """Spearman's rho and its two-sided P value: ``scipy.stats.spearmanr(x, y)`` for 1-D
    data without NaN (Pearson's r of the ranks, P from Student's t on n - 2 degrees of
    freedom, ``special.stdtr``). Constant input: (NaN, NaN), where scipy also warns."""
    a = np.column_stack([np.asarray(x), np.asarray(y)])
    if a.shape[0] < 2 or (a[:, 0][0] == a[:, 0]).all() or (a[:, 1][0] == a[:, 1]).all():
        return math.nan, math.nan
    rs = np.corrcoef(rankdata(a, axis=0), rowvar=False)
    dof = a.shape[0] - 2
    with np.errstate(divide="ignore"):
        t = rs * np.sqrt((dof / ((rs + 1.0) * (1.0 - rs))).clip(0))
    p = 2 * special.stdtr(dof, -np.abs(t))
    return float(rs[1, 0]), float(p[1, 0])
