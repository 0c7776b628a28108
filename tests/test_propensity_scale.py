"""The propensity model at registry scale (issue 12) gives what the row-by-row code gave.

The separation LPs run on the distinct (covariate pattern, treatment) rows, the rank check
on the distinct rows weighted by their counts, and the level and pattern tables count codes
instead of comparing text cell by cell. The references below are the code as it was before.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import linalg, optimize

from causal_hcc.design import build_design, covariate_levels
from causal_hcc.errors import DataWarning, NotEstimableError
from causal_hcc.logistic import _LP_TOL, check_rank, detect_separation, distinct_rows
from causal_hcc.propensity import _level_counts, _pattern_counts


# ---------------------------------------------------------------- references (before)
def separation_before(X, y):
    X = np.asarray(X, dtype=float)
    scale = np.max(np.abs(X), axis=0)
    scale[scale == 0] = 1.0
    signed = X / scale * (2 * np.asarray(y, dtype=float) - 1)[:, None]
    n, p = signed.shape
    bounds = [(-1.0, 1.0)] * p
    first = optimize.linprog(-signed.sum(axis=0), A_ub=-signed, b_ub=np.zeros(n),
                             bounds=bounds, method="highs")
    infinite = np.zeros(p, dtype=bool)
    if first.status != 0 or -first.fun <= _LP_TOL * n:
        return "none", infinite
    for j in range(p):
        for sign in (1.0, -1.0):
            c = np.zeros(p)
            c[j] = -sign
            res = optimize.linprog(c, A_ub=-signed, b_ub=np.zeros(n), bounds=bounds,
                                   method="highs")
            if res.status == 0 and -res.fun > _LP_TOL:
                infinite[j] = True
    strict = optimize.linprog(np.r_[np.zeros(p), -1.0],
                              A_ub=np.c_[-signed, np.ones(n)], b_ub=np.zeros(n),
                              bounds=bounds + [(0.0, 1.0)], method="highs")
    complete = strict.status == 0 and -strict.fun > _LP_TOL
    return ("complete" if complete else "quasi-complete"), infinite


def rank_before(X):
    scale = np.linalg.norm(X, axis=0)
    scale[scale == 0] = 1.0
    r = linalg.qr(X / scale, mode="r")[0]
    return np.abs(np.diag(r)[:X.shape[1]]) < 1e-7


def level_counts_before(frame, covariates, treated, levels):
    rows = []
    n1, n0 = int(treated.sum()), int((1 - treated).sum())
    for name in covariates:
        col = frame[name]
        kind, lv = covariate_levels(col, name, levels)
        if kind == "numeric":
            values = col.dropna().unique()
            if not set(np.asarray(values, dtype=float)) <= {0.0, 1.0}:
                continue
            lv = (0, 1)
        text = col.astype(str) if kind == "category" else col.astype(float)
        for v in lv:
            key = str(v) if kind == "category" else float(v)
            hit = (text == key).to_numpy()
            t1, t0 = int(hit[treated == 1].sum()), int(hit[treated == 0].sum())
            if t1 + t0 == 0:
                continue
            rows.append({"covariate": name, "level": str(v), "n_treated": t1,
                         "n_control": t0, "pct_of_treated": 100 * t1 / n1,
                         "pct_of_control": 100 * t0 / n0,
                         "all_one_arm": min(t1, t0) == 0,
                         "sparse_level": min(t1, t0) < 5})
    return pd.DataFrame(rows, columns=["covariate", "level", "n_treated", "n_control",
                                       "pct_of_treated", "pct_of_control", "all_one_arm",
                                       "sparse_level"])


def pattern_counts_before(frame, covariates, treated):
    pattern = frame[covariates[0]].astype(str).radd(f"{covariates[0]}=")
    for c in covariates[1:]:
        pattern = pattern + f", {c}=" + frame[c].astype(str)
    table = (pd.DataFrame({"pattern": pattern.to_numpy(), "treated": treated})
             .groupby("pattern", sort=True)["treated"].agg(["sum", "size"]))
    out = pd.DataFrame({"pattern": table.index, "n_treated": table["sum"].to_numpy(),
                        "n_control": (table["size"] - table["sum"]).to_numpy()})
    out["one_arm"] = (out.n_treated == 0) | (out.n_control == 0)
    return out.sort_values(["one_arm", "n_treated"], ascending=False, kind="stable",
                           ignore_index=True)


def design_columns_before(frame, name, lv):
    text = frame[name].astype(str)
    present = [v for v in lv if (text == str(v)).any()]
    return [(text == str(v)).to_numpy(float) for v in present[1:]]


# ---------------------------------------------------------------- data
def registry(seed, n=3000, separated=None):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "a": rng.integers(0, 2, n), "b": rng.choice(["x", "y", "z"], n),
        "age": rng.integers(40, 50, n).astype(float), "c": rng.integers(0, 2, n)})
    treated = rng.integers(0, 2, n)
    if separated == "quasi":       # b = z only among the treated
        frame.loc[treated == 0, "b"] = rng.choice(["x", "y"], (treated == 0).sum())
    elif separated == "complete":  # age above 45 <=> treated
        frame["age"] = np.where(treated == 1, rng.integers(46, 50, n),
                                rng.integers(40, 45, n)).astype(float)
    return frame, treated


def design_of(frame):
    return build_design(frame, ["a", "b", "age", "c"], levels={"b": ("x", "y", "z")})


@pytest.mark.parametrize("separated", [None, "quasi", "complete"])
@pytest.mark.parametrize("seed", [1, 2])
def test_separation_on_distinct_rows_is_the_verdict_on_all_rows(seed, separated):
    frame, treated = registry(seed, separated=separated)
    X = design_of(frame).matrix
    kind, infinite = detect_separation(X, treated)
    before = separation_before(X, treated)
    assert kind == before[0] and infinite.tolist() == before[1].tolist()
    assert kind == {None: "none", "quasi": "quasi-complete", "complete": "complete"}[
        separated]


def test_distinct_rows_first_seen_and_counted():
    m = np.array([[1.0, 0.0], [2.0, 1.0], [1.0, -0.0], [2.0, 1.0], [np.nan, 1.0],
                  [np.nan, 1.0]])
    first, counts = distinct_rows(m)
    assert first.tolist() == [0, 1, 4] and counts.tolist() == [2, 2, 2]


@pytest.mark.parametrize("seed", [3, 4])
def test_rank_check_on_weighted_distinct_rows(seed):
    frame, _ = registry(seed)
    design = design_of(frame)
    check_rank(design.matrix, design.terms)              # full rank: no error
    assert not rank_before(design.matrix).any()
    collinear = np.c_[design.matrix, design.matrix[:, 1] + 2 * design.matrix[:, 4]]
    assert rank_before(collinear).tolist() == [False] * 6 + [True]
    with pytest.raises(NotEstimableError, match=r"\['dup'\]"):
        check_rank(collinear, design.terms + ("dup",))


@pytest.mark.parametrize("seed", [5, 6])
def test_level_and_pattern_counts_as_before(seed):
    frame, treated = registry(seed, separated="quasi")
    frame["b"] = frame["b"].astype(object)
    levels = {"b": ("x", "y", "z", "w")}            # w: no patient
    got = _level_counts(frame, ["a", "b", "age", "c"], treated, levels)
    pd.testing.assert_frame_equal(got, level_counts_before(frame, ["a", "b", "age", "c"],
                                                           treated, levels))
    covs = ["a", "b", "c"]
    pd.testing.assert_frame_equal(_pattern_counts(frame, covs, treated, levels),
                                  pattern_counts_before(frame, covs, treated))


def test_design_dummies_as_before():
    frame, _ = registry(7)
    frame.loc[:5, "b"] = None
    with pytest.warns(DataWarning, match="levels \\['w'\\] have no patients"):
        design = build_design(frame, ["b"], levels={"b": ("y", "x", "z", "w")})
    for got, want in zip(design.matrix[:, 1:].T,
                         design_columns_before(frame, "b", ("y", "x", "z", "w"))):
        assert np.array_equal(got, want)


def test_design_names_values_outside_the_levels():
    from causal_hcc.errors import CohortError
    frame, _ = registry(8)
    with pytest.raises(CohortError, match=r"values \['z'\] are not among its levels"):
        build_design(frame, ["b"], levels={"b": ("x", "y")})
