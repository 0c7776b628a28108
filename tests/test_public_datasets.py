"""Public survival datasets, each with its own column names, through the Python API and
the CLI, against R (tests/reference/public.R: survival 3.5.3, MatchIt 4.5.1 with the
2^26 distance workaround; its header states every convention used below).

Tolerances, stated again beside each assertion: counts exact; KM curves, CIs, medians,
log-rank, Cox and glm coefficients and model SEs rtol 1e-6 (both sides converge to
~1e-10); weights rtol 1e-9 (closed-form arithmetic on the same PS); robust / cluster SEs
rtol 1e-4 (sandwich at the converged beta).

Known difference from R, asserted as ours: a landmark after an arm's last follow-up time
(and before its curve reaches 0) is *not estimable* here (DESIGN.md: "never beyond
follow-up"); R's ``summary(survfit, times =, extend = TRUE)`` carries S forward. Only the
ovarian PSM control arm at 730 days hits this (R note "landmark after last follow-up").
"""

import warnings
from pathlib import Path
from functools import cache

import numpy as np
import pandas as pd
import pytest

import causal_hcc as ch
from causal_hcc.cli import main
from causal_hcc.errors import CausalHccWarning
from causal_hcc.survival.cox_table import cohort_variables
from causal_hcc.survival.km import kaplan_meier
from causal_hcc.weighting import weights_from_ps
from tests._fixtures import REF

DATASETS = {
    "rossi": {"time": "week", "event": "arrest", "treatment": "fin", "time_unit": "weeks",
              "covariates": ["age", "race", "wexp", "mar", "paro", "prio"]},
    "veteran": {"time": "time", "event": "status", "treatment": "trt", "treated": 2,
                "time_unit": "days", "covariates": ["celltype", "karno", "age", "prior"]},
    "pbc": {"time": "time", "event": "status", "treatment": "trt", "treated": 1,
            "missing": "drop", "time_unit": "days",
            "covariates": ["age", "sex", "bili", "albumin", "edema"]},
    "ovarian": {"time": "futime", "event": "fustat", "treatment": "rx", "treated": 2,
                "time_unit": "days", "covariates": ["age", "resid.ds", "ecog.ps"]},
}
#: public.R's landmarks per dataset (its "study roles" table), in the data's unit.
LANDMARKS = {"rossi": (13, 26, 39, 52), "veteran": (90, 180, 365),
             "pbc": (1000, 2000, 3000), "ovarian": (365, 730)}
CHECKED = [("crude", None), ("multivariable", None), ("psm", "ATT"), ("psm", "ATC"),
           ("iptw", "ATE"),
           ("iptw", "ATT"), ("iptw", "ATO")]
ALL = sorted(DATASETS)
CARRIED_FORWARD = "landmark after last follow-up time"


def _r(name: str, what: str = "effects") -> pd.DataFrame:
    r = pd.read_csv(REF / "public" / f"{name}_{what}.csv", keep_default_na=False,
                    na_values=["NA"])
    if "estimand" in r:
        r["estimand"] = r["estimand"].fillna("")
    if "note" in r:
        r["note"] = r["note"].fillna("")
    return r


def _frame(name: str) -> pd.DataFrame:
    """The CSV as R reads it; pbc's status 2 (death) is the event, transplant censored."""
    frame = pd.read_csv(REF / "datasets" / f"{name}.csv")
    if name == "pbc":
        frame = frame.assign(status=(frame["status"] == 2).astype(int))
    return frame


def _fit(name: str, frame=None):
    frame = _frame(name) if frame is None else frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        # MatchIt's greedy tie rule: public.R's matched sets (the default "all" is
        # order-free and differs where PS values are tied; tests/test_matching_estimands).
        return ch.adjust(frame, n_boot=0, landmarks=LANDMARKS[name], ties="matchit",
                         **DATASETS[name])


@cache
def _adjusted(name: str):
    """One adjusted analysis per dataset, shared by the tests below (results are frozen)."""
    return _fit(name)


@cache
def _crude(name: str):
    """Crude analysis at R's landmarks, with R's multivariable model (treatment + every
    PS covariate) instead of the P-value selection."""
    roles = DATASETS[name]
    keys = [v.key for v in cohort_variables(ch.cohort(_frame(name), **roles))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        return ch.crude(_frame(name), landmarks=LANDMARKS[name], multivariable=keys, **roles)


def _close(ours, ref, rtol, what, atol=0.0):
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


# ----------------------------------------------------------------------------- effects
@pytest.mark.parametrize("name", ALL)
def test_api_agrees_with_r_on_public_data(name):
    ours = _adjusted(name).to_frame()
    # "ATT among matched treated" is the ATT row of R's table.
    ours["estimand"] = ours["estimand"].fillna("").str.split(" ").str[0]
    r = _r(name)
    for method, estimand in CHECKED:
        a = ours[(ours.method == method) & (ours.estimand == (estimand or ""))].iloc[0]
        b = r[(r.method == method) & (r.estimand == (estimand or ""))].iloc[0]
        # coefficients rtol 1e-6; robust / cluster SEs rtol 1e-4 (module docstring)
        np.testing.assert_allclose(np.log(a.hr), b.coef, rtol=1e-6, err_msg=f"{method} {estimand}")
        np.testing.assert_allclose(a.se_log_hr, b.se, rtol=1e-4, err_msg=f"{method} {estimand}")


@pytest.mark.parametrize("name", ALL)
def test_effect_counts_and_wald_limits_agree_with_r(name):
    """Rows in each fit (matched rows for PSM), events among them (exact), and the Wald
    95% limits and P from the same SE (rtol 1e-4, as the SE)."""
    ours = _adjusted(name).to_frame()
    # "ATT among matched treated" is the ATT row of R's table.
    ours["estimand"] = ours["estimand"].fillna("").str.split(" ").str[0]
    r = _r(name)
    for method, estimand in CHECKED:
        a = ours[(ours.method == method) & (ours.estimand == (estimand or ""))].iloc[0]
        b = r[(r.method == method) & (r.estimand == (estimand or ""))].iloc[0]
        what = f"{name} {method} {estimand}"
        assert a.n_treated + a.n_control == b.n, what          # exact
        assert a.events == int(b.nevent), what                 # exact
        _close([a.ci_lower, a.ci_upper, a.p_value], [b.hr_lower, b.hr_upper, b.p], 1e-4, what)


# ----------------------------------------------------------------------------- KM
def _arm_curves(crude) -> dict:
    treated, control = crude.arm_labels
    by_label = {km.label: km for km in crude.arms.curves}
    return {"treated": by_label[treated], "control": by_label[control],
            "overall": crude.arms.overall}


def _check_landmark(km, row, what, *, counts_exact=True):
    """One R landmark row (``_km.csv`` / ``_wkm.csv``) against our curve."""
    lm = next(lm for lm in km.landmarks if lm.time == row.landmark)
    if CARRIED_FORWARD in row.note:
        # The documented difference (module docstring): R carries S forward (extend =
        # TRUE); we do not report survival beyond the arm's follow-up.
        assert row.landmark > km.time[-1] and not lm.estimable and np.isnan(lm.surv), what
        assert lm.n_risk == 0 == row.n_risk, what
        return
    assert lm.estimable, what
    # curves, SE of S (R summary()'s std.err) and log-log limits: rtol 1e-6
    _close([lm.surv, lm.se, lm.lower, lm.upper],
           [row.surv, row.std_err, row.lower, row.upper], 1e-6, what)
    i = np.searchsorted(km.time, row.landmark, side="right") - 1
    # SE of -log S (survfit's $std.err scale): rtol 1e-6
    _close(km.std_err[i], row.std_err_cumhaz, 1e-6, what + " std_err_cumhaz")
    n_event_cum = km.n_event[km.time <= row.landmark].sum()
    if counts_exact:
        assert lm.n_risk == row.n_risk and n_event_cum == row.n_event_cum, what  # exact
    else:                                       # weighted sums: rtol 1e-6
        _close([lm.n_risk, n_event_cum], [row.n_risk, row.n_event_cum], 1e-6, what)


def _check_median(km, row, what):
    # median and Brookmeyer-Crowley log-log CI: rtol 1e-6, NaN where R has NA (not reached)
    m = km.median
    _close([m.estimate, m.lower, m.upper],
           [row.median, row.median_lower, row.median_upper], 1e-6, what + " median")
    assert m.estimable == np.isfinite(row.median), what


@pytest.mark.parametrize("name", ALL)
def test_kaplan_meier_per_arm_agrees_with_survfit(name):
    """survfit(conf.type = "log-log") per arm and pooled, summary(times = landmarks)."""
    r = _r(name, "km")
    curves = _arm_curves(_crude(name))
    assert set(r.landmark) == set(LANDMARKS[name])
    for row in r.itertuples():
        km, what = curves[row.group], f"{name} {row.group} at {row.landmark}"
        assert (km.n, km.events, km.time[-1]) == (row.n, row.events, row.last_time), what
        _check_landmark(km, row, what)
        _check_median(km, row, what)


@pytest.mark.parametrize("name", ALL)
def test_log_rank_agrees_with_survdiff(name):
    r = _r(name, "logrank")
    lr = _crude(name).arms.log_rank
    # chi-square and P: rtol 1e-6
    _close([lr.chisq, lr.p], [r.chisq.iloc[0], r.p.iloc[0]], 1e-6, name)
    assert lr.df == r.df.iloc[0]
    treated, control = _crude(name).arm_labels
    ours = dict(zip(lr.groups, zip(lr.observed, lr.expected)))
    for row in r.itertuples():
        obs, exp = ours[treated if row.A == 1 else control]
        assert obs == row.observed, f"{name} {row.group}"          # exact count
        _close(exp, row.expected, 1e-6, f"{name} {row.group} expected")


# ----------------------------------------------------------------------------- Cox
@pytest.mark.parametrize("name", ALL)
def test_cox_table_agrees_with_coxph(name):
    """coxph (Efron, model SE): the crude model (treatment only) is our univariable
    treatment row; R's multivariable model (treatment + every PS covariate) is the Cox
    table's multivariable model with those terms."""
    r = _r(name, "cox")
    treatment = DATASETS[name]["treatment"]
    rows = {(t.model, t.variable): t for t in _crude(name).cox.rows}
    model = {"crude": "univariable", "multivariable": "multivariable"}
    assert len(rows) >= len(r)
    for row in r.itertuples():
        key = treatment if row.term_py == "treatment" else row.term_py
        ours = rows[(model[row.model], key)]
        what = f"{name} {row.model} {row.term_py}"
        assert ours.estimable, what
        assert (ours.n, ours.events) == (row.n, int(row.nevent)), what     # exact
        # coefficient, model SE, Wald P and limits: rtol 1e-6
        _close([ours.coef, ours.se, ours.p, ours.ci_lower, ours.ci_upper],
               [row.coef, row.se, row.p, row.hr_lower, row.hr_upper], 1e-6, what)
    multi = sorted(k for m, k in rows if m == "multivariable")
    expected = sorted(treatment if t == "treatment" else t
                      for t in r.term_py[r.model == "multivariable"])
    assert multi == expected, name


# ----------------------------------------------------------------------------- PS
@pytest.mark.parametrize("name", ALL)
def test_propensity_model_agrees_with_glm(name):
    r = _r(name, "ps_coef")
    ps = _adjusted(name).propensity
    ours = ps.coefficients.set_index("term")
    assert sorted(ours.index) == sorted(r.term_py), name
    assert ps.converged and bool(r.converged.all())
    for row in r.itertuples():
        # glm coefficients and their model SE: rtol 1e-6
        _close([ours.loc[row.term_py, "estimate"], ours.loc[row.term_py, "std_error"]],
               [row.estimate, row.se], 1e-6, f"{name} {row.term_py}")
    rows = _r(name, "ps")
    assert len(rows) == ps.n and (rows.A.to_numpy() == ps.treated).all()      # exact
    assert (rows.id.astype(str).to_numpy() == ps.patient_id).all()
    # fitted PS per row rtol 1e-6; logit PS rtol 1e-6 with atol 1e-9 (values near 0)
    _close(ps.ps, rows.ps, 1e-6, f"{name} ps")
    _close(ps.logit_ps, rows.lp, 1e-6, f"{name} lp", atol=1e-9)


# ----------------------------------------------------------------------------- matching
def _partition(rows, subclass) -> set:
    sets: dict = {}
    for row, s in zip(rows, subclass):
        if pd.notna(s) and s > 0:
            sets.setdefault(s, set()).add(row)
    return {frozenset(v) for v in sets.values()}


@pytest.mark.parametrize("name", ALL)
def test_matched_sets_equal_matchit(name):
    """Nearest 1:1, caliper 0.2 SD of the logit PS (n - 1 SD over all rows), largest PS
    first: the same partition into pairs as MatchIt (labels aside), the same weights."""
    r = _r(name, "match")
    r = r[r.estimand == "ATT"].sort_values("row")
    m = _adjusted(name).matched
    rows = np.arange(1, len(m.subclass) + 1)
    assert (r.row.to_numpy() == rows).all()
    ours = _partition(rows, m.subclass)
    theirs = _partition(r.row, r.subclass)
    assert len(ours) == r.n_pairs.iloc[0]                                    # exact
    assert ours == theirs, f"{name}: {len(ours ^ theirs)} sets differ"       # exact
    np.testing.assert_array_equal(m.weights, r.weight.to_numpy(float))       # exact (0/1)
    _close(m.caliper, r.caliper_lp.iloc[0], 1e-9, f"{name} caliper")         # arithmetic


@pytest.mark.parametrize("name", ALL)
def test_iptw_weights_equal_r(name):
    """ATE stabilised p/e, (1-p)/(1-e); ATT 1, e/(1-e); ATO 1-e, e (ATC: not compared,
    our weights do not offer it yet); also the unstabilised ATE 1/e, 1/(1-e).
    rtol 1e-9: closed form on PS equal to ~1e-10."""
    r = _r(name, "weights").sort_values("row")
    weights = _adjusted(name).weights
    for estimand, column in (("ATE", "w_ate"), ("ATT", "w_att"), ("ATO", "w_ato")):
        assert weights[estimand].stabilized == (estimand == "ATE")
        _close(weights[estimand].weights, r[column], 1e-9, f"{name} {estimand}")
    ps = _adjusted(name).propensity
    unstabilised = weights_from_ps(ps.ps, ps.treated, estimand="ATE").weights
    _close(unstabilised, r.w_ate_unstabilised, 1e-9, f"{name} ATE unstabilised")


# ----------------------------------------------------------------------- weighted KM
@cache
def _cohort(name: str):
    return ch.cohort(_frame(name), **DATASETS[name])


def _weighted_arm(name, key, arm, variance):
    fit = _adjusted(name)
    c = _cohort(name)
    w = fit.weights["ATE"].weights if key == "iptw_ate" else fit.matched.weights
    sel = (c.treated == arm) & (w > 0)
    return kaplan_meier(c.time[sel], c.event[sel], weights=w[sel], variance=variance,
                        landmarks=LANDMARKS[name])


@pytest.mark.parametrize("name", ALL)
def test_weighted_km_agrees_with_survfit(name):
    """survfit(weights = w, conf.type = "log-log") per arm, weighted Greenwood and robust
    (infinitesimal jackknife) variance: curve, SE, limits, weighted counts, median and CI,
    rtol 1e-6."""
    r = _r(name, "wkm")
    for row in r.itertuples():
        what = f"{name} {row.weights} {row.variance} {row.group} at {row.landmark}"
        km = _weighted_arm(name, row.weights, int(row.A), row.variance)
        assert km.n == row.n, what                                            # exact
        _close(np.sum(km.n_event + km.n_censor), row.sum_w, 1e-9, what + " sum_w")
        _check_landmark(km, row, what, counts_exact=False)
        _check_median(km, row, what)


@pytest.mark.parametrize("name", ALL)
def test_adjusted_curves_agree_with_weighted_survfit(name):
    """The curves of the effects report (IPTW ATE, PSM ATT) are R's weighted survfit with
    its default variance (``r_default``: robust for non-integer weights), rtol 1e-6; the
    landmark table holds the same S(t)."""
    r = _r(name, "wkm")
    r = r[r.r_default]
    curves = {("iptw" if c.method == "iptw" else "psm"): c for c in _adjusted(name).curves}
    for row in r.itertuples():
        c = curves["iptw" if row.weights == "iptw_ate" else "psm"]
        km = c.treated if row.A == 1 else c.control
        what = f"{name} {row.weights} {row.group} at {row.landmark}"
        table = c.table[(c.table.quantity == "survival") & (c.table[_adjusted(name).time_unit] == row.landmark)]
        shown = table["treated" if row.A == 1 else "control"].iloc[0]
        if CARRIED_FORWARD in row.note:        # the documented difference: not estimable
            assert np.isnan(shown), what
            continue
        _close(shown, row.surv, 1e-6, what + " table")
        i = np.searchsorted(km.time, row.landmark, side="right") - 1
        _close([km.surv[i], km.se_surv[i], km.lower[i], km.upper[i], km.n_at_risk(
            [row.landmark])[0]], [row.surv, row.std_err, row.lower, row.upper, row.n_risk],
            1e-6, what)
        _check_median(km, row, what)


def test_rmst_beyond_the_matched_arms_follow_up_is_flagged():
    """ovarian, default horizons (730, 1096 days, within both arms' follow-up in the whole
    cohort): the PSM control arm's last time is 477 days, so its S(730) is NaN, yet RMST
    to 730 and 1096 is reported from the curve carried forward, and no note says so.
    adjust() promises "a horizon beyond an arm's follow-up is kept and flagged in notes";
    _follow_up_notes checks only the whole cohort, not the matched / weighted arms."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        fit = ch.adjust(_frame("ovarian"), n_boot=0, **DATASETS["ovarian"])
    psm = next(c for c in fit.curves if c.method == "psm")
    assert psm.control.time[-1] == 477 and 1096 in fit.settings["rmst_horizons"]
    assert any("477" in note and "1096" in note for note in fit.notes), fit.notes


# ----------------------------------------------------------------------------- CLI, misc
def test_pbc_with_recode_missing_drop_and_text_categorical(tmp_path):
    """pbc: event coded 0/1/2 (recoded), 1/2 treatment, text-coded sex, 106 rows without
    treatment excluded and listed."""
    out = tmp_path / "pbc"
    code = main(["adjust", "--data", str(REF / "datasets" / "pbc.csv"), "--time", "time",
                 "--event", "status", "--recode", "status:2=1,1=0,0=0", "--treatment", "trt",
                 "--treated", "1", "--covariates", "age,sex,bili,albumin,edema",
                 "--missing", "drop", "--time-unit", "days", "--bootstrap", "0",
                 "--formats", "none", "--out", str(out), "--quiet"])
    assert code == 0
    import json
    records = json.loads((out / "effects.json").read_text())
    r = _r("pbc")
    for method, estimand in (("psm", "ATT"), ("iptw", "ATE")):
        # estimand "ATT among matched treated" when treated patients were dropped
        ours = next(e for e in records if e["method"] == method
                    and (e["estimand"] or "").split(" ")[0] == estimand)
        ref = r[(r.method == method) & (r.estimand == estimand)].iloc[0]
        np.testing.assert_allclose(np.log(ours["hr"]), ref.coef, rtol=1e-6)
    assert sum(e["n_treated"] + e["n_control"] for e in records if e["method"] == "crude") \
        == 312


def test_readme_api_example_runs_as_written(capsys):
    """The README's "Python API" block, executed verbatim; its crude HR is R's (rossi)."""
    import re
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Python API\s+```python\n(.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        exec(compile(block, "README.md", "exec"), namespace)
    frame = namespace["fit"].to_frame()
    assert {"method", "estimand", "hr", "ci_lower", "ci_upper"} <= set(frame.columns)
    crude = frame[frame.method == "crude"].iloc[0]
    # The README's model has three covariates; the crude HR does not depend on them.
    np.testing.assert_allclose(np.log(crude.hr), _r("rossi").query("method == 'crude'")
                               .coef.iloc[0], rtol=1e-6)
    assert "fin" in capsys.readouterr().out


def test_a_two_valued_numeric_covariate_is_not_dropped():
    """Issue 10: a 0/1 or 1/2 'sex' must enter the PS model (it was silently dropped)."""
    frame = pd.read_csv(REF / "datasets" / "ovarian.csv")
    fit = _fit("ovarian", frame)
    assert "resid.ds" in fit.propensity.formula and "ecog.ps" in fit.propensity.formula
    assert {"resid.ds[2]", "ecog.ps[2]"} <= set(fit.propensity.coefficients["term"])
