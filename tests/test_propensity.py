"""causal_hcc.propensity against R glm (fixtures from tests/reference/matching.R)."""

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from _fixtures import require_current_matching_fixtures
from causal_hcc.studies.yang2025 import validate_frame
from causal_hcc.errors import (CausalHccWarning, CohortError, NotEstimableError,
                               SeparationWarning, SmallSampleWarning)
from causal_hcc.design import natural_spline_basis
from causal_hcc.logistic import _firth_objective, detect_separation, fit_logistic
from causal_hcc.propensity import c_statistic, fit_propensity, fit_propensity_frame

REF = Path(__file__).parent / "reference"
LALONDE = pd.read_csv(REF / "matching_lalonde.csv")
VETERAN = pd.read_csv(REF / "matching_veteran.csv")
PS = pd.read_csv(REF / "matching_ps.csv")
COEF = pd.read_csv(REF / "matching_ps_coef.csv")
BUNDLED = Path(__file__).parents[1] / "causal_hcc" / "studies" / "yang2025" / "bundled" / \
    "reconstructed_pseudo_cohort.csv"
LALONDE_COVS = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]
VETERAN_LEVELS = {"celltype": ["squamous", "smallcell", "adeno", "large"]}


def _fit(model: str):
    if model == "lalonde_main":
        return fit_propensity_frame(LALONDE, "treat", LALONDE_COVS, id_col="id")
    if model == "lalonde_spline":
        return fit_propensity_frame(LALONDE, "treat", LALONDE_COVS, id_col="id",
                                    splines={"age": 3},
                                    interactions=[("married", "nodegree")])
    with pytest.warns(SmallSampleWarning, match="Events per variable 9.7"):
        return fit_propensity_frame(VETERAN, "treated",
                                    ["celltype", "karno", "diagtime", "age", "prior"],
                                    id_col="id", levels=VETERAN_LEVELS)


def _r_term(term: str) -> str:
    """Our term names -> R's: race[hispan] -> racehispan, ns(age, df=3)[1] -> ns(age, df = 3)1."""
    if term.startswith("ns("):
        return term.replace("df=", "df = ").replace(")[", ")").rstrip("]")
    return term.replace("[", "").replace("]", "")


def synthetic_cohort(seed: int = 7):
    """76 patients with the paper's margins for the three default confounders."""
    rng = np.random.default_rng(seed)

    def arm(n, ccr, vi, ecog0):
        cols = [rng.permutation(np.r_[np.ones(k), np.zeros(n - k)]).astype(int)
                for k in (ccr, vi, n - ecog0)]
        return cols

    t_ccr, t_vi, t_ecog = arm(40, 29, 5, 18)
    c_ccr, c_vi, c_ecog = arm(36, 2, 17, 8)
    n = 76
    frame = pd.DataFrame({
        "patient_id": [f"P{i:03d}" for i in range(1, n + 1)],
        "local_therapy": np.r_[np.ones(40), np.zeros(36)].astype(int),
        "os_months": np.round(rng.exponential(20, n) + 0.5, 1),
        "death": (rng.random(n) < 0.45).astype(int),
        "ecog": np.r_[t_ecog, c_ecog], "intrahepatic_ccr": np.r_[t_ccr, c_ccr],
        "vascular_invasion": np.r_[t_vi, c_vi],
        "sex": rng.choice(["male", "female"], n, p=[0.85, 0.15]),
        "age": np.round(rng.normal(55, 10, n)),
        "child_pugh": rng.choice(["A", "B"], n, p=[0.8, 0.2]),
        "intrahepatic_lesions": rng.choice(["none", "single", "multiple"], n),
    })
    frame.loc[[0, 45], "death"] = 1
    return validate_frame(frame, source="synthetic test cohort")


# ---------------------------------------------------------------- R glm
@pytest.mark.parametrize("model", ["lalonde_main", "lalonde_spline", "veteran_main"])
def test_ps_equals_r_glm(model):
    fit = _fit(model)
    ref = PS[PS.model == model]
    assert list(fit.patient_id) == list(ref.id)
    # Coefficients/curves: rtol 1e-6 (R glm run to epsilon 1e-14, ours IRLS to 1e-10).
    np.testing.assert_allclose(fit.ps, ref.ps, rtol=1e-6)
    np.testing.assert_allclose(fit.logit_ps, ref.logit_ps, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("model", ["lalonde_main", "lalonde_spline", "veteran_main"])
def test_coefficients_equal_r_glm(model):
    fit = _fit(model)
    ref = COEF[COEF.model == model].set_index("term")
    ours = fit.coefficients.assign(term=[_r_term(t) for t in fit.coefficients.term])
    ours = ours.set_index("term").loc[ref.index]
    # rtol 1e-6 for estimates, SEs, Wald CIs (spline basis: same QR rotation as R's ns).
    for ours_col, r_col in [("estimate", "estimate"), ("std_error", "std_error"),
                            ("z_value", "z_value"), ("ci_lower", "ci_lower"),
                            ("ci_upper", "ci_upper")]:
        np.testing.assert_allclose(ours[ours_col], ref[r_col], rtol=1e-6, err_msg=ours_col)
    # p-values: relative 1e-5 (a z with 1e-7 relative error moves tiny p more).
    np.testing.assert_allclose(ours["p_value"], ref["p_value"], rtol=1e-5)
    assert fit.converged


def test_ps_summary_and_diagnostics_on_lalonde():
    fit = _fit("lalonde_main")
    assert fit.n_parameters == 8
    assert fit.events_per_variable == pytest.approx(185 / 8)
    assert fit.separation == "none"
    assert 0.5 < fit.c_statistic < 1
    lo, hi = fit.common_support
    assert lo == pytest.approx(fit.ps[fit.treated == 1].min())
    assert hi == pytest.approx(fit.ps[fit.treated == 0].max())
    outside = (fit.ps < lo) | (fit.ps > hi)
    assert len(fit.outside_support_ids) == outside.sum()
    frame = fit.to_frame()
    assert list(frame.columns) == ["patient_id", "treated", "ps", "logit_ps",
                                   "outside_common_support"]
    assert frame.outside_common_support.sum() == outside.sum()
    assert set(fit.ps_summary.arm) == {"treated", "control"}
    assert "c-statistic" in fit.summary()


# ---------------------------------------------------------------- hand-checkable cases
def test_two_by_two_table_by_hand():
    # Ten rows: x = 1 in 4 (3 treated), x = 0 in 6 (2 treated). A saturated logistic model
    # reproduces the cell proportions; log OR = log(3*4 / (1*2)); SE^2 = sum 1/cells.
    frame = pd.DataFrame({"t": [1, 1, 1, 0, 1, 1, 0, 0, 0, 0],
                          "x": [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]})
    with pytest.warns(SmallSampleWarning):
        fit = fit_propensity_frame(frame, "t", ["x"])
    est = fit.coefficients.set_index("term")
    assert est.loc["(Intercept)", "estimate"] == pytest.approx(np.log(2 / 4), rel=1e-9)
    assert est.loc["x", "estimate"] == pytest.approx(np.log(3 * 4 / (1 * 2)), rel=1e-9)
    assert est.loc["x", "std_error"] == pytest.approx(np.sqrt(1 / 3 + 1 / 1 + 1 / 2 + 1 / 4),
                                                      rel=1e-7)
    np.testing.assert_allclose(fit.ps, [0.75] * 4 + [2 / 6] * 6, rtol=1e-9)
    assert fit.events_per_variable == 5.0   # min(5, 5) / 1 parameter


def test_covariate_patterns_in_one_arm_by_hand():
    # Ten rows, two binary covariates: pattern (a=1, b=1) occurs in 2 treated, no control.
    frame = pd.DataFrame({"t": [1, 1, 1, 1, 0, 1, 0, 0, 0, 0],
                          "a": [1, 1, 0, 1, 1, 0, 0, 0, 1, 0],
                          "b": [1, 1, 0, 0, 0, 1, 1, 0, 0, 1]})
    with pytest.warns(SmallSampleWarning):
        fit = fit_propensity_frame(frame, "t", ["a", "b"])
    patterns = fit.pattern_counts.set_index("pattern")
    assert patterns.loc["a=1, b=1"].tolist() == [2, 0, True]
    assert patterns.loc["a=0, b=0"].tolist() == [1, 1, False]
    assert "Covariate patterns in one arm only: 1 of 4 (2 treated, 0 control" in fit.summary()
    assert _fit("lalonde_main").pattern_counts is None   # continuous covariates


def test_c_statistic_by_hand():
    # Treated scores 0.9, 0.4; controls 0.4, 0.1: pairs won 1, 1, 0.5 (tie), 1 of 4.
    assert c_statistic([0.9, 0.4, 0.4, 0.1], [1, 1, 0, 0]) == pytest.approx(3.5 / 4)


def test_categorical_reference_level_from_dictionary():
    cohort = synthetic_cohort()
    with pytest.warns(SmallSampleWarning, match="Events per variable 7.2"):
        fit = fit_propensity(cohort, ["ecog", "child_pugh", "intrahepatic_lesions", "age"])
    terms = list(fit.coefficients.term)
    # Reference levels of the data dictionary: child_pugh A, intrahepatic_lesions none.
    assert "child_pugh[B]" in terms and "child_pugh[A]" not in terms
    assert "intrahepatic_lesions[single]" in terms
    assert "intrahepatic_lesions[multiple]" in terms
    assert "intrahepatic_lesions[none]" not in terms


def test_natural_spline_basis_is_linear_at_the_boundaries():
    x = np.linspace(0, 10, 41)
    basis = natural_spline_basis(x, 3)
    assert basis.shape == (41, 3)
    # Natural splines are linear at the boundaries: second differences vanish at the ends.
    second = np.diff(basis, 2, axis=0)
    np.testing.assert_allclose(second[0], 0, atol=2e-3)
    np.testing.assert_allclose(second[-1], 0, atol=2e-3)


# ---------------------------------------------------------------- the bundled-cohort margins
def test_default_confounders_on_paper_margins_report_extreme_ccr():
    cohort = synthetic_cohort()
    fit = fit_propensity(cohort)
    assert fit.covariates == ("ecog", "intrahepatic_ccr", "vascular_invasion")
    assert fit.events_per_variable == pytest.approx(36 / 3)
    # 29/40 vs 2/36 is extreme but not separated: no warning, reported as sparse.
    assert fit.separation == "none"
    ccr = fit.level_counts.set_index(["covariate", "level"]).loc[("intrahepatic_ccr", "1")]
    assert (ccr.n_treated, ccr.n_control) == (29, 2)
    assert bool(ccr.sparse_level)
    text = fit.summary()
    assert text.startswith(cohort.label)
    assert "Sparse level intrahepatic_ccr = 1: 29 treated vs 2 control" in text


def test_bundled_cohort_ps_equals_r():
    from causal_hcc.studies.yang2025 import load_bundled
    require_current_matching_fixtures()
    ref = PS[PS.model == "bundled_main"]
    fit = fit_propensity(load_bundled())
    np.testing.assert_allclose(fit.ps, ref.ps, rtol=1e-6)
    coef = COEF[COEF.model == "bundled_main"]
    np.testing.assert_allclose(fit.coefficients.estimate, coef.estimate, rtol=1e-6)
    np.testing.assert_allclose(fit.coefficients.std_error, coef.std_error, rtol=1e-6)
    assert fit.separation == "none"
    ccr = fit.level_counts.set_index(["covariate", "level"]).loc[("intrahepatic_ccr", "1")]
    assert (ccr.n_treated, ccr.n_control) == (29, 2)


# ---------------------------------------------------------------- separation
def test_quasi_complete_separation_names_the_covariate():
    cohort = synthetic_cohort()
    data = cohort.data.copy()
    data.loc[data.local_therapy == 0, "vascular_invasion"] = 0   # VI only among treated
    sep = dataclasses.replace(cohort, data=data)
    with pytest.warns(SeparationWarning, match="vascular_invasion"):
        fit = fit_propensity(sep)
    assert fit.separation == "quasi-complete"
    assert fit.separated_covariates == ("vascular_invasion",)
    assert "Separation: quasi-complete (vascular_invasion)" in fit.summary()


def test_complete_separation_detected():
    frame = pd.DataFrame({"t": [0, 0, 0, 0, 1, 1, 1, 1], "x": [1.0, 2, 3, 4, 5, 6, 7, 8]})
    kind, infinite = detect_separation(np.c_[np.ones(8), frame.x], frame.t)
    assert kind == "complete" and infinite[1]
    with pytest.warns(CausalHccWarning) as record:
        fit = fit_propensity_frame(frame, "t", ["x"])
    assert any(isinstance(r.message, SeparationWarning) and "x" in str(r.message)
               for r in record)
    assert fit.separation == "complete"


def test_no_separation_when_overlapping():
    X = np.c_[np.ones(6), [1.0, 2, 3, 4, 5, 6]]
    kind, infinite = detect_separation(X, [0, 1, 0, 1, 0, 1])
    assert kind == "none" and not infinite.any()


# ---------------------------------------------------------------- Firth
@pytest.mark.parametrize("cells", [(20, 0, 15, 30), (3, 1, 2, 4), (7, 5, 0, 9)])
def test_firth_two_by_two_equals_haldane_correction(cells):
    # Hand derivation (Firth 1993; Heinze & Schemper 2002): in the saturated 2x2 logistic
    # model, Jeffreys-penalised estimates are the cell log odds with 1/2 added to each cell,
    # also when a cell is empty (where glm diverges).
    a, b, c, d = cells   # x = 1: a treated, b control; x = 0: c treated, d control
    x = np.r_[np.ones(a + b), np.zeros(c + d)]
    y = np.r_[np.ones(a), np.zeros(b), np.ones(c), np.zeros(d)]
    fit = fit_logistic(np.c_[np.ones_like(x), x], y, method="firth")
    assert fit.converged
    np.testing.assert_allclose(fit.coef, [np.log((c + .5) / (d + .5)),
                                          np.log((a + .5) * (d + .5) / ((b + .5) * (c + .5)))],
                               rtol=1e-8)


def test_firth_maximises_the_penalised_likelihood():
    # Independent check: a general-purpose optimiser on l(b) + 1/2 log|I(b)|.
    rng = np.random.default_rng(3)
    X = np.c_[np.ones(60), rng.normal(size=(60, 2)), rng.integers(0, 2, 60)]
    y = (rng.random(60) < 0.4).astype(float)
    fit = fit_logistic(X, y, method="firth")
    res = optimize.minimize(lambda b: -_firth_objective(X, y, b), np.zeros(4),
                            method="BFGS", options={"gtol": 1e-10})
    # BFGS converges to ~1e-8; the Newton fit is exact to 1e-10.
    np.testing.assert_allclose(fit.coef, res.x, atol=1e-6)
    assert -res.fun <= _firth_objective(X, y, fit.coef) + 1e-10


def test_firth_on_separated_cohort_is_finite():
    cohort = synthetic_cohort()
    data = cohort.data.copy()
    data.loc[data.local_therapy == 0, "vascular_invasion"] = 0
    with pytest.warns(SeparationWarning, match="Firth estimates stay finite"):
        fit = fit_propensity(dataclasses.replace(cohort, data=data), method="firth")
    assert np.all(np.isfinite(fit.coefficients.estimate))
    assert np.all((fit.ps > 0) & (fit.ps < 1))
    assert "Firth-penalised" in fit.summary()


# ---------------------------------------------------------------- input errors
def test_missing_covariate_column_is_named():
    with pytest.raises(CohortError, match="'albumin'"):
        fit_propensity(synthetic_cohort(), ["ecog", "albumin"])


def test_missing_values_are_named():
    frame = LALONDE.copy()
    frame.loc[3, "age"] = np.nan
    with pytest.raises(CohortError, match="Column 'age': 1 missing values"):
        fit_propensity_frame(frame, "treat", LALONDE_COVS, id_col="id")
    assert not LALONDE["age"].isna().any()   # the caller's frame is untouched


def test_treatment_must_be_binary():
    frame = LALONDE.assign(treat=LALONDE.treat + 1)
    with pytest.raises(CohortError, match="'treat' \\(treatment\\)"):
        fit_propensity_frame(frame, "treat", ["age"])


def test_collinear_terms_not_estimable():
    frame = LALONDE.assign(age2=LALONDE.age * 2)
    with pytest.raises(NotEstimableError, match="age2"):
        fit_propensity_frame(frame, "treat", ["age", "age2"])


def test_result_is_frozen_and_frame_untouched():
    before = LALONDE.copy()
    fit = _fit("lalonde_main")
    pd.testing.assert_frame_equal(LALONDE, before)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.method = "firth"
    with pytest.raises(ValueError):
        fit.ps[0] = 0.5


# ---------------------------------------------------------------- properties
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(30, 120))
def test_ps_in_unit_interval_and_reproducible(seed, n):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(["a", "b", "c"], n)})
    frame["t"] = (rng.random(n) < 0.5).astype(int)
    if frame.t.nunique() < 2:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)   # small random samples
        first = fit_propensity_frame(frame, "t", ["x", "g"])
        second = fit_propensity_frame(frame, "t", ["x", "g"])
    assert np.all((first.ps > 0) & (first.ps < 1))
    np.testing.assert_allclose(1 / (1 + np.exp(-first.logit_ps)), first.ps, rtol=1e-12)
    assert np.array_equal(first.ps, second.ps)   # bit for bit


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_single_arm_level_is_always_flagged(seed):
    rng = np.random.default_rng(seed)
    n = 40
    frame = pd.DataFrame({"x": rng.normal(size=n), "t": rng.integers(0, 2, n)})
    frame.loc[:1, "t"] = [0, 1]
    frame["flag"] = 0
    treated_rows = frame.index[frame.t == 1][:3]
    frame.loc[treated_rows, "flag"] = 1       # level 1 of 'flag' only in the treated arm
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fit = fit_propensity_frame(frame, "t", ["x", "flag"])
    assert fit.separation != "none"
    assert "flag" in fit.separated_covariates
    assert any(isinstance(r.message, SeparationWarning) and "flag" in str(r.message)
               for r in record)
