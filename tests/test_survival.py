"""causal_hcc.survival against R survival 3.5 (fixtures from tests/reference/survival.R)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_hcc.studies.yang2025 import RECONSTRUCTED_LABEL
from causal_hcc.studies.yang2025 import validate_frame
from causal_hcc.errors import SmallSampleWarning
from causal_hcc.studies.yang2025.table3 import TABLE3_VARIABLES
from causal_hcc.survival import (crude_analysis, kaplan_meier, log_rank, median_follow_up,
                                 survival_by_group)

REF = Path(__file__).parent / "reference"


def _read(path) -> pd.DataFrame:
    # round_trip: pandas' default fast float parser can be 1 ulp off (7.6 -> 7.599999999999999),
    # and fixture times are compared exactly with R's.
    return pd.read_csv(path, float_precision="round_trip")


VETERAN = _read(REF / "veteran.csv")
TIES = _read(REF / "ties_data.csv")
EDGE = _read(REF / "km_edge_data.csv")
KM = _read(REF / "survival_km.csv")
MEDIANS = _read(REF / "survival_medians.csv")
KM_TIMES = _read(REF / "survival_km_times.csv")
LOGRANK = _read(REF / "survival_logrank.csv")
BUNDLED = Path(__file__).parents[1] / "causal_hcc" / "studies" / "yang2025" / "bundled" / \
    "reconstructed_pseudo_cohort.csv"


def _data(dataset: str, group: str):
    """time and status of one R curve: dataset name and survfit strata label."""
    if dataset.startswith("veteran"):
        d = VETERAN
    elif dataset.startswith("ties"):
        d = TIES
    elif dataset.startswith("bundled"):
        d = _read(BUNDLED).rename(columns={"os_months": "time", "death": "status"})
    else:
        d = EDGE[EDGE.set == dataset.removeprefix("edge_")]
    status = 1 - d.status if dataset.endswith("reverse") else d.status
    weights = d.w if dataset.endswith("weighted") else pd.Series(1.0, index=d.index)
    keep = np.ones(len(d), bool)
    if group != "all":
        col, value = group.split("=")
        keep = (d[col] == float(value)).to_numpy()
    out = {"time": d.time.to_numpy()[keep], "event": status.to_numpy()[keep]}
    if dataset.endswith("weighted"):
        # The fixture is survfit(weights = w, robust = FALSE): Greenwood on weighted counts.
        out["weights"] = weights.to_numpy()[keep]
        out["variance"] = "greenwood"
    return out


def _available(frame):
    return list(frame.groupby(["dataset", "conf_type", "group"], sort=False).groups)


def _close_with_nans(mine, ref, rtol, what):
    mine, ref = np.asarray(mine, float), np.asarray(ref, float)
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(ref), err_msg=f"{what}: NA pattern")
    np.testing.assert_array_equal(np.isinf(mine), np.isinf(ref), err_msg=f"{what}: Inf pattern")
    ok = np.isfinite(ref)
    np.testing.assert_allclose(mine[ok], ref[ok], rtol=rtol, atol=1e-300, err_msg=what)


@pytest.mark.parametrize("dataset,conf_type,group", _available(KM))
def test_km_agrees_with_survfit_at_every_time(dataset, conf_type, group):
    ref = KM[(KM.dataset == dataset) & (KM.conf_type == conf_type) & (KM.group == group)]
    km = kaplan_meier(**_data(dataset, group), conf_type=conf_type)
    # Times exact; counts exact (weighted: sums of weights, rtol 1e-12, rounding only).
    np.testing.assert_array_equal(km.time, ref.time)
    for col in ("n_risk", "n_event", "n_censor"):
        np.testing.assert_allclose(getattr(km, col), ref[col], rtol=1e-12, atol=1e-12)
    # KM estimate, Greenwood SE and CI limits at every time: rtol 1e-6 (same formulas;
    # measured ~1e-13). NA and Inf exactly where R has them (S = 0 or 1, log-log).
    for col in ("surv", "std_err", "lower", "upper"):
        _close_with_nans(getattr(km, col), ref[col], 1e-6, col)


@pytest.mark.parametrize("dataset,conf_type,group", _available(MEDIANS))
def test_median_and_ci_agree_exactly_with_print_survfit(dataset, conf_type, group):
    ref = MEDIANS[(MEDIANS.dataset == dataset) & (MEDIANS.conf_type == conf_type)
                  & (MEDIANS.group == group)].iloc[0]
    m = kaplan_meier(**_data(dataset, group), conf_type=conf_type).median
    # Medians and their CI are data times (or midpoints of two): exact, 1e-12.
    _close_with_nans([m.estimate, m.lower, m.upper], [ref["median"], ref.lcl, ref.ucl],
                     1e-12, "median, lcl, ucl")
    assert m.estimable == (not np.isnan(ref["median"]))


@pytest.mark.parametrize("dataset,conf_type,group", _available(KM_TIMES))
def test_landmarks_agree_with_summary_survfit_times(dataset, conf_type, group):
    ref = KM_TIMES[(KM_TIMES.dataset == dataset) & (KM_TIMES.conf_type == conf_type)
                   & (KM_TIMES.group == group)]
    km = kaplan_meier(**_data(dataset, group), conf_type=conf_type, landmarks=ref.time)
    # Counts exact; weighted counts are sums of weights, rtol 1e-12.
    np.testing.assert_allclose([lm.n_risk for lm in km.landmarks], ref.n_risk, rtol=1e-12)
    for col, attr in (("surv", "surv"), ("std_err", "se"), ("lower", "lower"),
                      ("upper", "upper")):
        # rtol 1e-6, as the curves.
        _close_with_nans([getattr(lm, attr) for lm in km.landmarks], ref[col], 1e-6, col)


def _logrank_cases():
    vet, ties = VETERAN, TIES
    prior = vet.prior == 10
    cases = {
        ("veteran", "trt"): (vet.time, vet.status, vet.trt, None),
        ("veteran", "trt_strata_celltype"): (vet.time, vet.status, vet.trt, vet.celltype),
        ("veteran", "trt_subgroup_prior10"): (vet.time[prior], vet.status[prior],
                                              vet.trt[prior], None),
        ("veteran", "celltype_4groups"): (vet.time, vet.status, vet.celltype, None),
        ("ties", "arm"): (ties.time, ties.status, ties.arm, None),
        ("ties", "arm_strata_grp"): (ties.time, ties.status, ties.arm, ties.grp),
    }
    b = _read(BUNDLED)  # the bundled cohort ships with the package
    for name, keep in (("local_therapy", np.ones(len(b), bool)),
                       ("local_therapy_oligo", b.oligometastatic == 1),
                       ("local_therapy_non_oligo", b.oligometastatic == 0)):
        cases[("bundled", name)] = (b.os_months[keep], b.death[keep],
                                    b.local_therapy[keep], None)
    return cases


@pytest.mark.parametrize("key", [k for k in _logrank_cases()
                                 if ((LOGRANK.dataset == k[0]) & (LOGRANK.test == k[1])).any()])
def test_log_rank_agrees_with_survdiff(key):
    ref = LOGRANK[(LOGRANK.dataset == key[0]) & (LOGRANK.test == key[1])].iloc[0]
    time, event, group, strata = _logrank_cases()[key]
    test = log_rank(time, event, group, strata=strata)
    assert test.df == ref.df                                   # exact
    np.testing.assert_allclose(test.chisq, ref.chisq, rtol=1e-6)   # log-rank chi-square
    np.testing.assert_allclose(test.p, ref.p, rtol=1e-6)


# ----------------------------------------------------------------------------- by hand
def test_hand_checkable_six_patients():
    # time   2   3   3+  5   7+  8        (+ = censored)
    # t=2: 6 at risk, 1 death  S = 5/6
    # t=3: 5 at risk, 1 death  S = 5/6 * 4/5 = 2/3   (the censored 3+ is still at risk)
    # t=5: 3 at risk, 1 death  S = 2/3 * 2/3 = 4/9
    # t=8: 1 at risk, 1 death  S = 0
    # Greenwood at 5: sqrt(1/(6*5) + 1/(5*4) + 1/(3*2)) = sqrt(15/60) = 0.5
    # Median: first time S < 0.5 -> 5.
    # SPSS-style SE: u = 3 (last S >= .55), l = 5 (first S <= .45),
    #   f = (2/3 - 4/9) / (5 - 3) = 1/9; SE(S(5)) = 4/9 * 0.5 = 2/9; SE = 2.
    km = kaplan_meier([2, 3, 3, 5, 7, 8], [1, 1, 0, 1, 0, 1], landmarks=(4, 6, 9))
    np.testing.assert_allclose(km.surv, [5 / 6, 2 / 3, 4 / 9, 4 / 9, 0], rtol=1e-15)
    np.testing.assert_array_equal(km.n_risk, [6, 5, 3, 2, 1])
    assert km.std_err[2] == pytest.approx(0.5, rel=1e-15)
    assert km.median.estimate == 5
    assert km.median.se_spss == pytest.approx(2, rel=1e-12)
    z = 1.959963984540054
    assert (km.median.lower_spss, km.median.upper_spss) == pytest.approx((5 - 2 * z, 5 + 2 * z))
    lm4, lm6, lm9 = km.landmarks
    assert (lm4.surv, lm4.n_risk) == (pytest.approx(2 / 3), 3)
    assert (lm6.surv, lm6.n_risk, lm6.se) == (pytest.approx(4 / 9), 2, pytest.approx(2 / 9))
    assert lm9.estimable and lm9.surv == 0 and "reached 0" in lm9.reason


def test_spss_interval_is_symmetric_and_differs_from_brookmeyer_crowley():
    km = kaplan_meier(VETERAN.time, VETERAN.status)
    m = km.median
    assert m.estimate - m.lower_spss == pytest.approx(m.upper_spss - m.estimate)
    assert (m.lower, m.upper) != (m.lower_spss, m.upper_spss)


# ----------------------------------------------------------------------------- properties
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 30), st.booleans()), min_size=1, max_size=40),
       st.sampled_from(["log-log", "log", "plain"]))
def test_km_is_non_increasing_within_unit_interval(rows, conf_type):
    time = np.array([r[0] for r in rows], float)
    event = np.array([r[1] for r in rows], float)
    km = kaplan_meier(time, event, conf_type=conf_type)
    assert np.all(np.diff(km.surv) <= 0)
    assert np.all((km.surv >= 0) & (km.surv <= 1))
    ok = ~np.isnan(km.lower)
    assert np.all((km.lower[ok] >= 0) & (km.lower[ok] <= km.surv[ok] + 1e-12))
    ok = ~np.isnan(km.upper)
    assert np.all((km.upper[ok] <= 1) & (km.upper[ok] >= km.surv[ok] - 1e-12))


# ----------------------------------------------------------------------------- not estimable
def test_landmark_beyond_follow_up_is_not_estimable():
    km = kaplan_meier([1, 2, 3, 4], [1, 0, 1, 0], landmarks=(3.5, 12))
    assert km.landmarks[0].estimable
    late = km.landmarks[1]
    assert not late.estimable and np.isnan(late.surv) and "12 months" in late.reason


def test_arm_without_events_has_no_median():
    km = kaplan_meier([5, 6, 7], [0, 0, 0], landmarks=(6,))
    assert not km.median.estimable and "not reached" in km.median.reason
    assert np.isnan(km.median.estimate) and np.isnan(km.median.lower_spss)
    lm = km.landmarks[0]
    assert lm.estimable and lm.surv == 1 and np.isnan(lm.lower) and "S = 1" in lm.reason


def test_log_rank_single_patient_or_no_deaths_is_not_estimable():
    one = log_rank([5.0], [1], [1])
    assert not one.estimable and "one group" in one.reason and np.isnan(one.p)
    none = log_rank([1, 2, 3, 4], [0, 0, 0, 0], [0, 1, 0, 1])
    assert not none.estimable and "no deaths" in none.reason
    assert "not estimable" in none.summary()
    # One patient per arm, both dying at once: zero variance (R's survdiff stops here).
    both = log_rank([1, 1], [1, 1], [0, 1])
    assert not both.estimable and "variance is zero" in both.reason


def test_follow_up_reverse_km_matches_r():
    ref = MEDIANS[(MEDIANS.dataset == "ties_reverse") & (MEDIANS.conf_type == "log-log")].iloc[0]
    fu = median_follow_up(TIES.time, TIES.status)
    assert fu.reverse_km_median == ref["median"]                   # exact, as medians
    assert fu.observed_median == np.median(TIES.time)
    assert (fu.observed_min, fu.observed_max) == (TIES.time.min(), TIES.time.max())
    none = median_follow_up(VETERAN.time, VETERAN.status)          # 9 censored of 137
    assert not none.estimable and "censoring curve" in none.reason


# ----------------------------------------------------------------------------- cohort level
def _frame(n=60, seed=11):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "patient_id": [f"P{i}" for i in range(n)], "local_therapy": np.arange(n) % 2,
        "os_months": np.round(rng.exponential(20, n) + 0.5, 1),
        "death": (rng.random(n) < 0.6).astype(int), "ecog": rng.integers(0, 2, n),
        "intrahepatic_ccr": rng.integers(0, 2, n), "vascular_invasion": rng.integers(0, 2, n),
        "oligometastatic": np.r_[np.ones(n - 1, int), 0]})   # one non-oligo patient


def test_crude_analysis_bundle():
    cohort = validate_frame(_frame(), reconstructed=True)
    with pytest.warns(SmallSampleWarning):
        res = crude_analysis(cohort, (12, 24, 36, 60), cox_variables=TABLE3_VARIABLES, multivariable=["local_therapy", "ecog_ps",
                                                    "intrahepatic_ccr", "oligometastasis"])
    assert res.summary().startswith(RECONSTRUCTED_LABEL)
    assert res.summary().splitlines()[0] == cohort.label
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["label"] == cohort.label and d["settings"]["conf_type"] == "log-log"
    assert [g["label"] for g in d["arms"]["groups"]] == ["local therapy", "no local therapy"]
    assert [lm["time"] for lm in d["arms"]["groups"][0]["landmarks"]] == [12, 24, 36, 60]
    # The arm comparison reproduces a direct survdiff-equivalent call.
    direct = log_rank(cohort.data.os_months, cohort.data.death, cohort.data.local_therapy)
    assert res.arms.log_rank.chisq == pytest.approx(direct.chisq, rel=1e-12)
    # Subgroup with a single patient: log-rank not estimable, with the reason.
    single = [g for g in res.subgroups if g.overall.n == 1]
    assert len(single) == 1 and not single[0].log_rank.estimable
    assert d["subgroups"][1]["log_rank"]["chisq"] is None
    # Cox rows in package convention with the paper's direction kept.
    local = next(r for r in d["cox"]["rows"] if r["variable"] == "local_therapy")
    assert local["comparison"] == "local therapy: yes vs no (reference: no)"
    assert local["hr_paper"] == pytest.approx(1 / local["hr"])
    # Arms (2 + all), oligo = 1 (2 + all), oligo = 0 (its single patient + all).
    assert len(res.to_frame()) == 3 + 3 + 2


def test_survival_by_group_in_a_mask_with_stratified_test():
    frame = _frame()
    cohort = validate_frame(frame)
    mask = frame.ecog == 1
    res = survival_by_group(cohort, mask=mask, strata_col="intrahepatic_ccr",
                            description="ECOG 1")
    sub = frame[mask]
    direct = log_rank(sub.os_months, sub.death, sub.local_therapy,
                      strata=sub.intrahepatic_ccr)
    assert res.log_rank.chisq == pytest.approx(direct.chisq, rel=1e-12)
    assert res.log_rank.stratified_by == "intrahepatic_ccr"
    assert res.overall.n == mask.sum()
    assert "ECOG 1" in res.summary()


def test_bundled_cohort_summary_starts_with_reconstruction_label():
    from causal_hcc.studies.yang2025 import load_bundled
    cohort = load_bundled()
    with warnings.catch_warnings():
        # Small-sample warnings (32 deaths, 5 covariates in the paper) are expected here.
        warnings.simplefilter("ignore", SmallSampleWarning)
        res = crude_analysis(cohort, (12, 24, 36, 60), cox_variables=TABLE3_VARIABLES)
    assert res.summary().startswith(RECONSTRUCTED_LABEL)
    json.dumps(res.to_dict(), allow_nan=False)


@pytest.mark.parametrize("time,event,match", [
    ([1, 2], [1], "differ in length"), ([1, np.nan], [1, 0], "finite"),
    ([1, 2], [1, 2], "event must be coded")])
def test_bad_input_raises(time, event, match):
    with pytest.raises(ValueError, match=match):
        kaplan_meier(time, event)
    with pytest.raises(ValueError, match=match):
        log_rank(time, event, [0, 1])


def test_integer_weights_equal_replicated_rows():
    # Weight 3 = three copies of the patient: same curve, Greenwood SE and median.
    time, event = [2, 3, 3, 5, 7, 8], [1, 1, 0, 1, 0, 1]
    w = [3, 1, 1, 2, 1, 1]
    weighted = kaplan_meier(time, event, weights=w)
    copies = kaplan_meier(np.repeat(time, w), np.repeat(event, w))
    for col in ("surv", "std_err", "lower", "upper", "n_risk"):
        np.testing.assert_allclose(getattr(weighted, col), getattr(copies, col), rtol=1e-14)
    assert weighted.median.estimate == copies.median.estimate
    with pytest.raises(ValueError, match="weights must be"):
        kaplan_meier(time, event, weights=[1, 1, 1, 1, 1, 0])
