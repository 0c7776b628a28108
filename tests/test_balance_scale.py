"""Balance tables computed together (issue 12) are the tables computed one row at a time.

``balance_tables`` prepares each variable once (values, arms before adjustment, sort
order) and adds each adjustment's weighted numbers; the reference below is the row code
as it was before, and every number must agree bit for bit.
"""

import numpy as np
import pandas as pd
import pytest

from causal_hcc.balance import _COLUMNS, balance_frame, balance_tables
from causal_hcc.balance_stats import _TINY, weighted_ks, weighted_mean, weighted_variance
from causal_hcc.data.cohort import Cohort


def variable_rows_before(frame, name, levels, kinds=None):
    col = frame[name]
    kind = {"binary": "binary", "numeric": "continuous",
            "categorical": "category"}.get((kinds or {}).get(name))
    if levels and name in levels:
        kind, lv = "category", tuple(levels[name])
    elif kind not in ("binary", "continuous"):
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            kind, lv = "category", tuple(sorted(col.dropna().astype(str).unique()))
        else:
            kind = "binary" if set(col.dropna().unique()) <= {0, 1} else "continuous"
    if kind == "category":
        missing = col.isna().to_numpy()
        text = col.astype(str)
        return [(str(v), "category",
                 np.where(missing, np.nan, (text == str(v)).to_numpy(float))) for v in lv]
    return [("", kind, col.to_numpy(float))]


def one_row_before(x, treated, w, binary, denominator):
    ok = ~np.isnan(x)
    x, t, w = x[ok], treated[ok], w[ok]
    out = {}
    var_before = {}
    for arm, a in (("treated", 1), ("control", 0)):
        xa = x[t == a]
        m = xa.mean()
        var_before[arm] = m * (1 - m) if binary else np.var(xa, ddof=1)
        out[f"mean_{arm}_before"] = m
        out[f"sd_{arm}_before"] = np.sqrt(var_before[arm])
        out[f"n_{arm}_before"] = xa.sum()
        sel = (t == a) & (w > 0)
        mw = weighted_mean(x[sel], w[sel])
        out[f"mean_{arm}_after"] = mw
        out[f"sd_{arm}_after"] = np.sqrt(mw * (1 - mw) if binary
                                         else weighted_variance(x[sel], w[sel]))
        out[f"n_{arm}_after"] = float(np.sum(w[sel] * x[sel]))
    pooled = np.sqrt((var_before["treated"] + var_before["control"]) / 2)
    sd = (np.sqrt(var_before[denominator]) if denominator in ("treated", "control")
          else pooled)
    if sd < _TINY:
        sd = pooled if pooled >= _TINY else np.nan
    out["sd_denominator"] = sd
    for when in ("before", "after"):
        out[f"smd_{when}"] = (out[f"mean_treated_{when}"] - out[f"mean_control_{when}"]) / sd
    if binary:
        out["variance_ratio_before"] = out["variance_ratio_after"] = np.nan
        out["ks_before"] = abs(out["mean_treated_before"] - out["mean_control_before"])
        out["ks_after"] = abs(out["mean_treated_after"] - out["mean_control_after"])
    else:
        out["variance_ratio_before"] = var_before["treated"] / var_before["control"]
        out["variance_ratio_after"] = (out["sd_treated_after"] / out["sd_control_after"]) ** 2
        out["ks_before"] = weighted_ks(x, t, np.ones_like(x))
        out["ks_after"] = weighted_ks(x[w > 0], t[w > 0], w[w > 0])
    out["n_missing"] = int((~ok).sum())
    return out


def rows_before(frame, treated, covariates, weights, denominator, levels, kinds):
    treated = np.asarray(treated).astype(int)
    w = np.ones(len(treated)) if weights is None else np.asarray(weights, dtype=float)
    rows = []
    for name in covariates:
        for level, kind, x in variable_rows_before(frame, name, levels, kinds):
            rows.append({"variable": name, "level": level, "kind": kind,
                         **one_row_before(x, treated, w, kind != "continuous", denominator)})
    return pd.DataFrame(rows)


def registry(seed, n=4000):
    rng = np.random.default_rng(seed)
    treated = rng.integers(0, 2, n)
    frame = pd.DataFrame({
        "age": np.round(rng.normal(60, 9, n)), "ecog": rng.integers(0, 2, n),
        "stage": rng.choice(["I", "II", "III"], n).astype(object),
        "score": rng.normal(size=n), "time": rng.exponential(10, n),
        "event": rng.integers(0, 2, n), "tx": treated})
    frame.loc[rng.choice(n, 40, replace=False), "score"] = np.nan
    frame.loc[rng.choice(n, 30, replace=False), "stage"] = None
    frame["id"] = [f"P{i}" for i in range(n)]
    matching = np.where(rng.random(n) < 0.4, 0.0, rng.choice([1.0, 0.5, 0.25], n))
    iptw = rng.uniform(0.2, 5, n)
    return frame, treated, {"matching": matching, "iptw": iptw, "none": None}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("denominator", ["treated", "control", "pooled"])
def test_each_row_is_the_row_computed_alone(seed, denominator):
    frame, treated, weights = registry(seed)
    covariates = ["age", "ecog", "stage", "score"]
    levels = {"stage": ("I", "II", "III", "IV")}          # IV: nobody
    kinds = {"age": "numeric", "ecog": "binary", "score": "numeric"}
    for name, w in weights.items():
        table = balance_frame(frame, treated, covariates, weights=w, levels=levels,
                              kinds=kinds, smd_denominator=denominator)
        want = rows_before(frame, treated, covariates, w, denominator, levels, kinds)
        got = table.rows[[c for c in want.columns]]
        if w is None:       # unadjusted: the after columns are NaN
            after = [c for c in want.columns if c.endswith("_after")]
            want[after] = np.nan
        pd.testing.assert_frame_equal(got, want, check_exact=True, check_dtype=False,
                                      obj=name)


def test_tables_together_equal_tables_one_by_one():
    from causal_hcc.matching import match_patients
    from causal_hcc.propensity import fit_propensity
    from causal_hcc.weighting import compute_weights
    frame, _, _ = registry(2, n=1500)
    cohort = Cohort.from_frame(frame, time="time", event="event", treatment="tx",
                               covariates=["age", "ecog", "stage"], id="id",
                               missing="drop")
    ps = fit_propensity(cohort)
    adjustments = {"psm": match_patients(cohort, ps, caliper_sd=0.2), "none": None}
    adjustments.update({f"iptw_{e}": compute_weights(cohort, ps, estimand=e)
                        for e in ("ATE", "ATT", "ATC", "ATO")})
    shown = ["age", "ecog", "stage", "score"]            # score: missing cells
    together = balance_tables(cohort, adjustments, covariates=shown)
    for name, adjustment in adjustments.items():
        alone = balance_tables(cohort, {name: adjustment}, covariates=shown)[name]
        pd.testing.assert_frame_equal(together[name].rows, alone.rows, check_exact=True)
        assert list(together[name].rows.columns) == _COLUMNS
        assert (together[name].n_after, together[name].ess_after, together[name].notes) == (
            alone.n_after, alone.ess_after, alone.notes)
        if adjustment is not None:
            weights = np.asarray(adjustment.weights, dtype=float)
            denominator = together[name].smd_denominator
            want = rows_before(cohort.data, cohort.treated, shown, weights, denominator,
                               dict(cohort.levels), dict(cohort.kinds))
            pd.testing.assert_frame_equal(together[name].rows[list(want.columns)], want,
                                          check_exact=True, check_dtype=False, obj=name)
