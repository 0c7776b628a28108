"""Doubly robust AIPW counterfactual survival against R riskRegression::ate (2022.11.28).

Fixtures: tests/reference/estimands.R (section 6) on the bundled RECONSTRUCTED PSEUDO-DATA
and on R survival's public ``veteran``; formulas in tests/reference/estimands_AIPW_NOTES.md.
R fits its models with glm epsilon 1e-14 and coxph eps 1e-11, so the nuisance models agree
with ours to ~1e-10 and every downstream number to ~1e-9: rtol 1e-6 (the issue's
criterion) leaves three orders of magnitude.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causal_hcc.data.cohort import Cohort
from causal_hcc.effects.aipw import aipw_survival, cox_predictor, efron_increments
from causal_hcc.studies.yang2025 import load_bundled
from causal_hcc.survival.cox import fit_cox

REF = Path(__file__).parent / "reference"
EST = REF / "estimands"
TIMES = {"bundled": [12.0, 24.0, 36.0], "veteran": [90.0, 180.0, 365.0]}
R_NAME = {"gformula": "GFORMULA", "iptw": "IPTW", "aipw": "AIPTW"}
COLUMN = {"treated": "treated", "control": "control", "treated - control": "difference"}
RTOL = 1e-6       # estimates, SEs, CIs, IF: nuisance fits agree to ~1e-10 (see module doc)


def veteran_cohort() -> Cohort:
    """R's veteran as estimands.R codes it: treated = trt == 2, celltype (ref adeno),
    karno, age, prior as a factor (ref 0)."""
    v = pd.read_csv(REF / "datasets" / "veteran.csv")
    v["treated"] = (v["trt"] == 2).astype(int)
    v["id"] = [f"V{i + 1:03d}" for i in range(len(v))]
    return Cohort.from_frame(v, time="time", event="status", treatment="treated",
                             covariates=["celltype", "karno", "age", "prior"],
                             categorical=["prior"], id="id", time_unit="days")


@pytest.fixture(scope="module")
def cohorts():
    return {"bundled": load_bundled(), "veteran": veteran_cohort()}


@pytest.fixture(scope="module")
def results(cohorts):
    return {(d, e): aipw_survival(cohorts[d], TIMES[d], estimator=e)
            for d in cohorts for e in R_NAME}


def _close(mine, ref, rtol=RTOL, atol=0.0):
    np.testing.assert_allclose(np.asarray(mine, float), np.asarray(ref, float),
                               rtol=rtol, atol=atol)


@pytest.mark.parametrize("dataset", ["bundled", "veteran"])
@pytest.mark.parametrize("estimator", ["aipw", "iptw", "gformula"])
def test_estimates_se_ci_match_riskregression(results, dataset, estimator):
    res = results[(dataset, estimator)]
    ref = pd.read_csv(EST / f"{dataset}_aipw.csv")
    ref = ref[ref["estimator"] == R_NAME[estimator]]
    assert set(ref["estimator_full"]) == {res.estimator_r}
    t = res.table
    for arm, col in COLUMN.items():
        r = ref[ref["arm"] == arm].sort_values("time")
        _close(t["time"], r["time"], rtol=0)
        # survival = 1 - risk (difference: -(risk1 - risk0)), rtol 1e-6
        _close(t[col], r["survival"])
        _close(t[f"se_{col}"], r["survival_se"])
        # CI limits clipped at 0 exactly in R and here: absolute 1e-12 for those
        _close(t[f"ci_lower_{col}"], r["survival_lower"], atol=1e-12)
        _close(t[f"ci_upper_{col}"], r["survival_upper"], atol=1e-12)
        if arm == "treated - control":
            _close(t["p_difference"], r["p"])
        else:
            # counts exact
            np.testing.assert_array_equal(t[f"n_at_risk_{col}"], r["n_at_risk"])
        np.testing.assert_array_equal(t["n_censored_by_time"], r["n_censored_by_time"])


@pytest.mark.parametrize("dataset", ["bundled", "veteran"])
@pytest.mark.parametrize("estimator", ["aipw", "iptw", "gformula"])
def test_influence_function_per_patient_matches_riskregression(results, dataset, estimator):
    res = results[(dataset, estimator)]
    iid = pd.read_csv(EST / f"{dataset}_aipw_iid.csv")
    iid = iid[iid["estimator"] == R_NAME[estimator]]
    for j, arm in enumerate(("treated", "control")):
        for m, tau in enumerate(TIMES[dataset]):
            r = iid[(iid["arm"] == arm) & (iid["time"] == tau)].set_index("id")
            ref = r.loc[res.patient_id, "iid_risk"].to_numpy()
            # risk-scale IF = -survival-scale IF; rtol 1e-6 relative to the largest term
            # (single terms cross zero, so an elementwise rtol would be meaningless there)
            _close(-res.influence[:, m, j], ref, rtol=0, atol=RTOL * np.abs(ref).max())
    diff = res.influence[:, :, 0] - res.influence[:, :, 1]
    np.testing.assert_allclose(res.influence[:, :, 2], diff, rtol=0, atol=1e-15)


@pytest.mark.parametrize("dataset", ["bundled", "veteran"])
def test_nuisance_models_and_terms_match(cohorts, dataset):
    """Term by term (NOTES section 2): PS, the Efron baseline hazard through F(tau | a, X),
    model coefficients."""
    cohort = cohorts[dataset]
    res = aipw_survival(cohort, TIMES[dataset])
    models = pd.read_csv(EST / f"{dataset}_aipw_models.csv")
    for model in ("outcome_cox", "censoring_cox", "treatment_glm"):
        mine = res.models[res.models["model"] == model]
        ref = models[models["model"] == model]
        _close(mine["estimate"], ref["estimate"])            # coefficients, rtol 1e-6
        _close(mine["std_error"], ref["std_error"])
    terms = pd.read_csv(EST / f"{dataset}_aipw_terms.csv")
    # counterfactual risks from our Cox fit + baseline hazard (survfit.coxph's Efron form)
    z = np.column_stack([cohort.treated, _design(cohort)])
    fit = fit_cox(cohort.time, cohort.event, z)
    pred = cox_predictor(fit, z, cohort.time, cohort.event)
    for m, tau in enumerate(TIMES[dataset]):
        r = terms[terms["time_landmark"] == tau].set_index("id").loc[cohort.ids]
        for a, col in ((1, "risk_cf_treated"), (0, "risk_cf_control")):
            za = z.copy()
            za[:, 0] = a
            _close(1 - pred.survival(za, pred.index(np.array([tau])))[:, 0], r[col])


def _design(cohort):
    from causal_hcc.design import build_design
    return build_design(cohort.data, cohort.roles.covariates,
                        levels=dict(cohort.levels)).matrix[:, 1:]


@pytest.mark.parametrize("dataset", ["bundled", "veteran"])
@pytest.mark.parametrize("estimator", ["aipw", "iptw", "gformula"])
def test_textbook_variant_matches_the_by_hand_r_implementation(cohorts, dataset, estimator):
    """riskregression_quirks=False: unique censoring times, tied-event counts in the Cox
    coefficient IF (estimands.R aipw_by_hand(riskRegression = FALSE))."""
    res = aipw_survival(cohorts[dataset], TIMES[dataset], estimator=estimator,
                        riskregression_quirks=False)
    var = pd.read_csv(EST / f"{dataset}_aipw_variants.csv")
    var = var[var["estimator"] == R_NAME[estimator]]
    for arm, col in COLUMN.items():
        r = var[var["arm"] == arm].sort_values("time")
        risk = -res.table[col] if col == "difference" else 1 - res.table[col]
        _close(risk, r["risk"])
        _close(res.table[f"se_{col}"], r["risk_se"])


def test_bundled_quirk_matters_and_notes(results):
    """Control risk at 36 months: riskRegression -0.1378 (NOTES table); out of [0, 1]."""
    res = results[("bundled", "aipw")]
    assert res.table["control"].iloc[2] == pytest.approx(1 + 0.1378, abs=1e-4)
    text = " ".join(res.notes)
    assert "outside [0, 1]" in text and "tied" in text and "at risk" in text
    assert "RECONSTRUCTED" in res.summary().upper()
    rows = res.curve_rows()
    assert list(rows.columns[:6]) == ["method", "quantity", "months", "treated", "control",
                                      "difference"]
    assert set(rows["method"]) == {"aipw"}


def test_times_beyond_follow_up_are_nan_with_a_note(cohorts):
    cohort = cohorts["veteran"]
    res = aipw_survival(cohort, [90.0, 5000.0])
    assert np.isnan(res.table["treated"].iloc[1]) and np.isfinite(res.table["treated"].iloc[0])
    assert any("after the last follow-up" in n for n in res.notes)


# ----------------------------------------------------------------------------- by hand
def _tiny(seed_shift=0):
    """Ten patients, no censoring, one binary confounder (saturated PS model)."""
    return pd.DataFrame({
        "id": [f"H{i}" for i in range(10)],
        "x": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
        "tx": [1, 1, 0, 0, 0, 1, 1, 1, 1, 0],
        "t": np.array([2.0, 5.0, 1.0, 3.0, 6.0, 4.0, 7.0, 8.0, 9.5, 2.5]) + seed_shift,
        "d": [1] * 10,
    })


# Ten patients: the PS model has 4 controls per parameter (SmallSampleWarning, expected).
@pytest.mark.filterwarnings("ignore::causal_hcc.errors.SmallSampleWarning")
def test_no_censoring_saturated_ps_equals_standardised_empirical_risk():
    """With a saturated PS pi(x) = n_ax / n_x and no censoring, the augmentation
    sum_i (1 - w_i) F^a(x_i) vanishes within each x, so AIPW = IPTW = the x-standardised
    empirical survival, whatever the outcome model: by hand at t = 5,
    x=0 (n 5): treated 0/2 alive (deaths at 2 and 5), control 1/3 alive (6.0);
    x=1 (n 5): treated 3/4 alive (death at 4), control 0/1 alive (2.5).
    S1 = 0.5 * 0 + 0.5 * 3/4 = 0.375; S0 = 0.5 * 1/3 + 0.5 * 0 = 1/6."""
    cohort = Cohort.from_frame(_tiny(), time="t", event="d", treatment="tx",
                               covariates=["x"], id="id")
    for estimator in ("aipw", "iptw"):
        res = aipw_survival(cohort, [5.0], estimator=estimator)
        # exact arithmetic up to rounding: 1e-12
        assert res.table["treated"].iloc[0] == pytest.approx(0.375, abs=1e-12)
        assert res.table["control"].iloc[0] == pytest.approx(1 / 6, abs=1e-12)
        assert res.table["difference"].iloc[0] == pytest.approx(0.375 - 1 / 6, abs=1e-12)
    g = aipw_survival(cohort, [5.0], estimator="gformula")
    assert g.table["treated"].iloc[0] != pytest.approx(0.375, abs=1e-3)   # model-based


def test_efron_increments_by_hand():
    """Three tied events, risk-set sum 10, their risk sum 3: 1/10 + 1/9 + 1/8; one event:
    1/S0 (Breslow); Breslow and Efron agree without ties."""
    lam = efron_increments([10.0, 4.0], [3.0, 2.0], [3, 1])
    assert lam == pytest.approx([1 / 10 + 1 / 9 + 1 / 8, 1 / 4], abs=1e-15)


def test_rejects_bad_arguments(cohorts):
    with pytest.raises(ValueError, match="estimator"):
        aipw_survival(cohorts["veteran"], [90.0], estimator="tmle")
    with pytest.raises(ValueError, match="times"):
        aipw_survival(cohorts["veteran"], [-1.0])


# ----------------------------------------------------------------------------- adjust()
@pytest.mark.parametrize("dataset", ["bundled", "veteran"])
def test_adjust_writes_aipw_rows_equal_to_riskregression(cohorts, dataset):
    """adjust() computes AIPW at its landmarks: rows method "aipw" of adjusted_curves.csv,
    the time column named after the unit (months / days), rtol 1e-6 against R."""
    import warnings

    from causal_hcc.effects import adjust
    from causal_hcc.errors import CausalHccWarning
    cohort = cohorts[dataset]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        fit = adjust(cohort, n_boot=0, landmarks=TIMES[dataset])
    frame = fit.curves_frame()
    unit = cohort.labels.time_unit
    assert unit in frame.columns and ("months" in frame.columns) == (unit == "months")
    rows = frame[frame.method == "aipw"]
    assert list(rows[unit]) == TIMES[dataset] and set(rows.estimand) == {"ATE"}
    ref = pd.read_csv(EST / f"{dataset}_aipw.csv")
    ref = ref[(ref.estimator == "AIPTW") & (ref.arm == "treated - control")]
    # survival difference treated - control = -(risk difference B - A)
    _close(rows["difference"], -ref["risk"].to_numpy())
    _close(rows["se_difference"], ref["risk_se"].to_numpy())
    assert "Doubly robust (AIPW, ATE)" in fit.summary()


def test_adjust_landmarks_120_gives_a_row_at_120_months(cohorts):
    import warnings

    from causal_hcc.effects import adjust
    from causal_hcc.errors import CausalHccWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        fit = adjust(cohorts["bundled"], n_boot=0, landmarks=[120.0])
    rows = fit.curves_frame()
    assert set(rows.loc[rows.quantity == "survival", "months"]) == {120.0}
    assert rows.loc[rows.method == "aipw", "treated"].isna().all()   # beyond follow-up
