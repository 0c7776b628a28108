"""The fast paths of matching equal the plain ones, pair for pair and code for code.

* :func:`causal_hcc.matching_sweep.sweep_match` (greedy 1:1 a level of tied scores at a
  time) against the loop over focal patients (``_greedy_stratum``), on small cohorts with
  heavy ties, near-ties (where the sweep must step aside), calipers and exact strata.
* The vectorised bracket matching within a level against its plain loop.
* Stratum keys grouped on integer codes against the joined-text keys they replace.
* The vectorised levels of ``ties="all"`` against a dictionary of levels.

Randomised locally, derandomised in CI (tests/conftest.py), as the other property tests.
"""

import itertools
from contextlib import contextmanager

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_hcc import matching_algorithms
from causal_hcc.matching_algorithms import (TIE_TOLERANCE, _focal_order, _greedy_stratum,
                                           _levels_loop, _levels_of_stratum, _strata_groups, _tie,
                                           greedy_matrix)
from causal_hcc.matching_strata import _keep_both_arms_codes, _sorted_key_codes, _text_codes
from causal_hcc.matching_sweep import _bracket_pairs, _bracket_small, sweep_match

rngs = st.integers(0, 2**32 - 1).map(np.random.default_rng)


def _tied_problem(rng):
    n = int(rng.integers(2, 160))
    levels = rng.normal(size=int(rng.integers(1, 25))).round(int(rng.integers(0, 3)))
    score = levels[rng.integers(0, len(levels), n)]
    if rng.random() < 0.2:                      # a few near-ties: the loop must take over
        score = score + (rng.random(n) < 0.1) * 1e-13
    if rng.random() < 0.2:                      # some untied scores among the tied ones
        score = np.where(rng.random(n) < 0.3, rng.normal(size=n), score)
    treated = rng.random(n) < rng.uniform(0.05, 0.95)
    return score, treated


@contextmanager
def numpy_paths_at_any_size():
    """The sweep and the numpy levels even for small strata (LEVELS_LOOP_MAX = 0), so that
    these small cohorts test them and not only the loops small strata use."""
    saved = matching_algorithms.LEVELS_LOOP_MAX
    matching_algorithms.LEVELS_LOOP_MAX = 0
    try:
        yield
    finally:
        matching_algorithms.LEVELS_LOOP_MAX = saved


def _loop_matrix(score, treated, strata, caliper, order):
    """The match matrix of the loop over focal patients alone (no sweep)."""
    t_rows = np.flatnonzero(treated)
    mm = np.full((len(t_rows), 1), -1, dtype=np.int64)
    index = np.empty(len(score), dtype=np.int64)
    index[t_rows] = np.arange(len(t_rows))
    t_order = _focal_order(score, treated, order, None)
    for members, t_sub in _strata_groups(strata, len(score), t_order):
        f, slot, p = _greedy_stratum(score, treated, members, t_sub, 1, caliper, False)
        mm[index[f], slot] = p
    return mm


@settings(max_examples=300, deadline=None)
@given(rng=rngs, caliper=st.sampled_from([None, 0.02, 0.2, 1.0]),
       order=st.sampled_from(["largest", "smallest"]), exact=st.booleans())
def test_sweep_equals_the_loop(rng, caliper, order, exact):
    score, treated = _tied_problem(rng)
    strata = rng.integers(0, 3, len(score)) if exact else None
    expected = _loop_matrix(score, treated, strata, caliper, order)
    with numpy_paths_at_any_size():
        got = greedy_matrix(score, treated, strata, 1, caliper, False, order, None)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(
        greedy_matrix(score, treated, strata, 1, caliper, False, order, None), expected)
    # The sweep itself (not only the fallback) on the whole cohort:
    members = np.arange(len(score))
    pairs = sweep_match(score, treated, members, order == "largest", caliper,
                        _tie(score, members))
    if pairs is not None:
        mm = _loop_matrix(score, treated, None, caliper, order)
        t_rows = np.flatnonzero(treated)
        assert sorted(zip(*(a.tolist() for a in pairs))) == sorted(
            (int(t), int(c)) for t, c in zip(t_rows, mm[:, 0]) if c >= 0)


def test_sweep_applies_to_a_registry_like_score():
    """Many patients per distinct score: the sweep runs (and agrees with the loop)."""
    rng = np.random.default_rng(1)
    score = rng.normal(size=40)[rng.integers(0, 40, 4000)]
    members = np.arange(4000)
    # 40% treated: levels bracket-matched with numpy; 90%: hundreds of focal patients of
    # a level left to the merge across levels (its sorted form).
    for share, order, caliper in itertools.product((0.4, 0.9), ("largest", "smallest"),
                                                   (0.1, None)):
        treated = rng.random(4000) < share
        pairs = sweep_match(score, treated, members, order == "largest", caliper,
                            _tie(score, members))
        assert pairs is not None
        mm = _loop_matrix(score, treated, None, caliper, order)
        t_rows = np.flatnonzero(treated)
        assert sorted(zip(*(a.tolist() for a in pairs))) == sorted(
            (int(t), int(c)) for t, c in zip(t_rows, mm[:, 0]) if c >= 0)


@settings(max_examples=200, deadline=None)
@given(rng=rngs)
def test_bracket_pairs_equal_the_loop(rng):
    n_p = int(rng.integers(1, 120))
    k = int(rng.integers(1, n_p + 1))
    rows = rng.permutation(3 * n_p + k)
    p_rows, f_rows = np.sort(rows[:n_p]), np.sort(rows[n_p:n_p + k])
    fi, pi = _bracket_pairs(f_rows, p_rows)
    ref_f, ref_p = _bracket_small(f_rows.tolist(), p_rows.tolist())
    assert sorted(zip(fi.tolist(), pi.tolist())) == sorted(zip(ref_f, ref_p))


def _column(rng, n):
    kind = int(rng.integers(7))
    if kind == 0:
        return pd.Series(rng.integers(-3, 5, n))
    if kind == 1:
        return pd.Series(np.round(rng.normal(size=n) * 10, int(rng.integers(0, 3))))
    if kind == 2:
        return pd.Series(rng.choice([0.0, -0.0, np.nan, 1.5, 1e20, 0.1 + 0.2, 0.3], n))
    if kind == 3:
        return pd.Series(rng.choice(["a", "b", "a\x1fb", "", "B", "é"], n), dtype=object)
    if kind == 4:
        return pd.Series(rng.random(n) < 0.5)
    if kind == 5:
        return pd.Series(pd.Categorical(rng.choice(["x", "y", "z"], n)))
    return pd.Series(rng.choice([1, 1.0, "1", True, None], n), dtype=object)


@settings(max_examples=200, deadline=None)
@given(rng=rngs)
def test_stratum_codes_equal_joined_text_keys(rng):
    n = int(rng.integers(1, 60))
    columns = [_column(rng, n) for _ in range(int(rng.integers(0, 4)))]
    treated = rng.integers(0, 2, n)
    # The reference: one text key per patient, numbered in sorted order.
    if columns:
        keys = np.array(["\x1f".join(t) for t in zip(*(c.astype(str).to_numpy()
                                                      for c in columns))])
        uniq, inv = np.unique(keys, return_inverse=True)
        expected = _keep_both_arms_codes(len(uniq), inv.ravel(), treated)
    else:
        expected = _keep_both_arms_codes(1, np.zeros(n, dtype=np.int64), treated)
    got = _keep_both_arms_codes(*_sorted_key_codes([_text_codes(c) for c in columns], n),
                                treated)
    np.testing.assert_array_equal(got, expected)
    bins = rng.integers(0, 9, n)                 # CEM bins: a numpy integer array
    codes, texts = _text_codes(bins)
    np.testing.assert_array_equal(texts[codes].astype(str), bins.astype(str))


@settings(max_examples=200, deadline=None)
@given(rng=rngs)
def test_levels_equal_a_dictionary_of_levels(rng):
    score, focal = _tied_problem(rng)
    members = np.flatnonzero(rng.random(len(score)) < 0.8)
    if members.size == 0:
        return
    with numpy_paths_at_any_size():
        tol, f_vals, f_rows, n_vals, n_rows, below = _levels_of_stratum(score, focal, members)
    # The loop small strata use gives the same levels.
    assert _levels_loop(score, focal, members) == (tol, f_vals, f_rows, n_vals, n_rows,
                                                   below)
    ordered = np.sort(score[members])
    assert tol == TIE_TOLERANCE * max(1.0, float(np.max(np.abs(ordered))))
    # Single linkage over sorted scores; a level is named by its smallest score.
    start, value_of = None, {}
    for previous, v in zip(np.r_[-np.inf, ordered[:-1]], ordered):
        if v - previous > tol:
            start = v
        value_of[v] = start
    levels = {}
    for row in members.tolist():
        side = levels.setdefault(value_of[score[row]], ([], []))
        side[0 if focal[row] else 1].append(row)
    keys = sorted(levels)
    assert f_vals == [k for k in keys if levels[k][0]]
    assert n_vals == [k for k in keys if levels[k][1]]
    assert f_rows == [sorted(levels[k][0]) for k in keys if levels[k][0]]
    assert n_rows == [sorted(levels[k][1]) for k in keys if levels[k][1]]
    assert below == [sum(1 for j in n_vals if j < k) for k in f_vals]
