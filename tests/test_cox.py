"""causal_hcc.cox against R survival 3.5 (fixtures from tests/reference/survival.R).

Models are fitted on R's ``veteran`` data and on a synthetic heavy-ties data set (9
distinct times for 240 rows, non-integer weights, clusters, strata), so Efron's
correction, weighted risk sets and the weighted Efron score residuals all matter.
"""


import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_hcc.survival import CoxFit, cox_zph, fit_cox, fit_cox_frame
from causal_hcc.studies.yang2025.table3 import TABLE3_VARIABLES
from causal_hcc.survival import cox_table
from causal_hcc.studies.yang2025 import validate_frame
from causal_hcc.errors import (ConvergenceWarning, NotEstimableError, SeparationWarning,
                               SmallSampleWarning)

REF = Path(__file__).parent / "reference"


def _read(path) -> pd.DataFrame:
    # round_trip: pandas' default fast float parser can be 1 ulp off (7.6 -> 7.599999999999999),
    # and fixture times are compared exactly with R's.
    return pd.read_csv(path, float_precision="round_trip")


VETERAN = _read(REF / "veteran.csv")
TIES = _read(REF / "ties_data.csv")
COX = _read(REF / "survival_cox.csv")
ZPH = _read(REF / "survival_zph.csv")

# How each R model in survival.R was called (model name -> fit_cox options).
SPECS = {
    "efron": {}, "breslow": {"ties": "breslow"}, "efron_robust": {"robust": True},
    "breslow_robust": {"ties": "breslow", "robust": True},
    "efron_weighted": {"w": True}, "efron_weighted_robust": {"w": True, "robust": True},
    "breslow_weighted_robust": {"w": True, "robust": True, "ties": "breslow"},
    "efron_cluster": {"cluster": True}, "efron_weighted_cluster": {"w": True, "cluster": True},
    "efron_strata": {"strata": "celltype"},
    "efron_strata_robust": {"strata": "celltype", "robust": True},
    "efron_strata_weighted_cluster": {"strata": "grp", "w": True, "cluster": True},
    "efron_trt_only": {},
}


def _fit(dataset: str, model: str, terms) -> CoxFit:
    data = VETERAN if dataset == "veteran" else TIES
    spec = SPECS[model]
    return fit_cox(data["time"], data["status"], data[list(terms)].to_numpy(float),
                   weights=data["w"] if spec.get("w") else None,
                   strata=data[spec["strata"]] if spec.get("strata") else None,
                   cluster=data["cl"] if spec.get("cluster") else None,
                   robust=spec.get("robust", False), ties=spec.get("ties", "efron"),
                   names=list(terms))


COX_MODELS = [(d, m) for (d, m) in COX.groupby(["dataset", "model"], sort=False).groups
              if d in ("veteran", "ties")]
ZPH_MODELS = [(d, m) for (d, m) in ZPH.groupby(["dataset", "model"], sort=False).groups
              if d in ("veteran", "ties")]


@pytest.mark.parametrize("dataset,model", COX_MODELS)
def test_coxph_agrees_with_r(dataset, model):
    ref = COX[(COX.dataset == dataset) & (COX.model == model)]
    fit = _fit(dataset, model, ref.term)
    # Counts are exact.
    assert fit.n == ref.n.iloc[0] and fit.events == ref.events.iloc[0]
    assert fit.ties == ref.ties.iloc[0]
    # Coefficients rtol 1e-6: both optimisers converge far below that (measured ~1e-11).
    np.testing.assert_allclose(fit.coef, ref.coef, rtol=1e-6)
    # Model-based SE rtol 1e-5: inverse information at the (converged) estimate.
    np.testing.assert_allclose(fit.se_model, ref.se, rtol=1e-5)
    # Log-likelihoods at 0 and at the estimate: same formula, rtol 1e-8.
    np.testing.assert_allclose([fit.loglik_null, fit.loglik],
                               [ref.loglik_null.iloc[0], ref.loglik.iloc[0]], rtol=1e-8)
    if ref.robust_se.notna().all():
        # Robust / cluster-robust SE rtol 1e-5 (sandwich of converged quantities).
        np.testing.assert_allclose(fit.se, ref.robust_se, rtol=1e-5)
        assert fit.robust
        assert fit.variance_type == ("cluster_robust" if SPECS[model].get("cluster")
                                     else "robust")
    else:
        np.testing.assert_allclose(fit.se, ref.se, rtol=1e-5)
        assert fit.variance_type == "model" and not fit.robust


@pytest.mark.parametrize("dataset,model", ZPH_MODELS)
def test_cox_zph_agrees_with_r(dataset, model):
    ref = ZPH[(ZPH.dataset == dataset) & (ZPH.model == model)]
    terms = [t for t in ref.term if t != "GLOBAL"]
    test = cox_zph(_fit(dataset, model, terms))
    # PH test statistics rtol 1e-4 (as specified; measured ~1e-13).
    np.testing.assert_allclose(np.r_[test.chisq, test.global_chisq], ref.chisq, rtol=1e-4)
    np.testing.assert_allclose(np.r_[test.p, test.global_p], ref.p, rtol=1e-4)
    np.testing.assert_array_equal(np.r_[test.df, test.global_df], ref.df)
    frame = test.to_frame()
    assert list(frame.term) == list(ref.term)


def test_agrees_with_lifelines_efron():
    import lifelines
    cols = ["trt", "karno", "age", "prior"]
    with warnings.catch_warnings():
        # lifelines' own deprecation chatter is not ours to test.
        warnings.simplefilter("ignore")
        cph = lifelines.CoxPHFitter().fit(VETERAN[["time", "status", *cols]], "time",
                                          "status", fit_options={"precision": 1e-12})
    fit = fit_cox(VETERAN.time, VETERAN.status, VETERAN[cols].to_numpy(float), names=cols)
    # Coefficients rtol 1e-6 once lifelines converges tightly (its default precision
    # 1e-7 leaves ~1e-5 relative error). lifelines' robust SE differs from R's with
    # tied times, so only coefficients are compared.
    np.testing.assert_allclose(fit.coef, cph.params_[cols].to_numpy(), rtol=1e-6)


def test_hand_checkable_three_patients():
    # Times 1, 2, 3, all deaths; x = 0, 1, 0. Partial likelihood
    #   L(b) = 1/(2 + e^b) * e^b/(1 + e^b) * 1,
    # score 1 - u/(2+u) - u/(1+u) = 0 with u = e^b  =>  u^2 = 2, b = log(2)/2.
    # Information: 2u/(2+u)^2 + u/(1+u)^2 at u = sqrt(2).
    fit = fit_cox([1, 2, 3], [1, 1, 1], [[0], [1], [0]])
    u = np.sqrt(2)
    info = 2 * u / (2 + u) ** 2 + u / (1 + u) ** 2
    np.testing.assert_allclose(fit.coef, [np.log(2) / 2], rtol=1e-12)  # closed form
    np.testing.assert_allclose(fit.se, [1 / np.sqrt(info)], rtol=1e-10)
    assert fit.hr[0] == pytest.approx(u, rel=1e-12)                   # HR = u = sqrt(2)


def test_breslow_integer_weights_equal_replicated_rows():
    # With Breslow ties, a case weight of 3 is three copies of the row (Efron differs:
    # copies of an event row would be tied events, a weighted row is one event).
    rows = TIES.head(40)
    w = np.where(np.arange(40) % 4 == 0, 3, 1)
    weighted = fit_cox(rows.time, rows.status, rows[["x1", "x2"]].to_numpy(float),
                       weights=w, ties="breslow")
    rep = rows.loc[rows.index.repeat(w)]
    copies = fit_cox(rep.time, rep.status, rep[["x1", "x2"]].to_numpy(float),
                     ties="breslow")
    np.testing.assert_allclose(weighted.coef, copies.coef, rtol=1e-10)   # identical model
    np.testing.assert_allclose(weighted.se, copies.se, rtol=1e-10)


def test_times_equal_up_to_rounding_are_tied_like_r():
    # R's aeqSurv merges times closer than sqrt(machine eps); so do we.
    t = TIES.time.to_numpy(float) + np.where(np.arange(len(TIES)) % 2, 1e-12, 0.0)
    noisy = fit_cox(t, TIES.status, TIES[["x1", "x2"]].to_numpy(float))
    exact = fit_cox(TIES.time, TIES.status, TIES[["x1", "x2"]].to_numpy(float))
    np.testing.assert_allclose(noisy.coef, exact.coef, rtol=1e-12)


def test_dfbeta_gives_the_robust_variance():
    fit = _fit("ties", "efron_weighted_robust", ["x1", "x2", "x3", "arm"])
    dfb = fit.dfbeta()
    np.testing.assert_allclose(dfb.T @ dfb, fit.variance, rtol=1e-12)
    # Score residuals sum to the score, zero at the estimate.
    np.testing.assert_allclose((fit.score_residuals() * TIES.w.to_numpy()[:, None]).sum(0),
                               0, atol=1e-8)


def test_result_tables_and_text():
    fit = _fit("veteran", "efron_cluster", ["trt", "karno"])
    frame = fit.to_frame()
    assert list(frame.term) == ["trt", "karno"]
    assert {"hr", "ci_lower", "ci_upper", "p", "variance_type"} <= set(frame.columns)
    np.testing.assert_allclose(frame.hr, np.exp(fit.coef), rtol=1e-15)
    text = fit.summary()
    assert "efron ties" in text and "cluster-robust" in text and "clusters" in text
    with pytest.raises((AttributeError, TypeError)):
        fit.coef = None      # frozen


def test_frame_helper_matches_arrays():
    a = fit_cox_frame(VETERAN, ["trt", "karno"], time_col="time", event_col="status",
                      weights_col="w", cluster_col="cl")
    b = _fit("veteran", "efron_weighted_cluster", ["trt", "karno"])
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-12)
    np.testing.assert_allclose(a.se, b.se, rtol=1e-12)
    with pytest.raises(ValueError, match="not in the data frame"):
        fit_cox_frame(VETERAN, ["nope"], time_col="time", event_col="status")


# ----------------------------------------------------------------------------- trouble
def test_no_events_is_not_estimable():
    with pytest.raises(NotEstimableError, match="No events"):
        fit_cox([1, 2, 3], [0, 0, 0], [0, 1, 0])


def test_constant_and_collinear_covariates_are_named():
    x = np.column_stack([np.ones(6), [0, 1, 0, 1, 1, 0]])
    with pytest.raises(NotEstimableError, match="'const'"):
        fit_cox(np.arange(1, 7), np.ones(6), x, names=["const", "x"])
    x = np.column_stack([[0, 1, 0, 1, 1, 0], [0, 2, 0, 2, 2, 0]])
    with pytest.raises(NotEstimableError, match="'double'.*collinear with x"):
        fit_cox(np.arange(1, 7), np.ones(6), x, names=["x", "double"])


def test_level_without_events_warns_separation_naming_the_covariate():
    time = np.arange(1.0, 11.0)
    event = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    x = np.array([0, 0, 0, 1, 0, 1, 1, 0, 1, 1.0])      # x = 1: one event of five
    fit_cox(time, event, x, names=["ok"])               # fine: no warning
    x_sep = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 0.0])  # x = 1: no events
    with pytest.warns(SeparationWarning, match="'treated'"):
        fit = fit_cox(time, event, x_sep, names=["treated"])
    assert "treated" in fit.infinite


def test_monotone_likelihood_of_a_continuous_covariate_is_flagged():
    # Risk score perfectly ordered with event time: beta -> infinity (R warns too).
    time = np.arange(1.0, 9.0)
    x = np.arange(8.0)[::-1] + 0.1 * np.sin(np.arange(8))
    with pytest.warns(SeparationWarning, match="'score'"):
        fit = fit_cox(time, np.ones(8), x, names=["score"])
    assert fit.infinite == ("score",)


def test_non_convergence_warns():
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        fit = fit_cox(VETERAN.time, VETERAN.status, VETERAN[["karno"]].to_numpy(float),
                      max_iter=1)
    assert not fit.converged


@pytest.mark.parametrize("bad,match", [
    (dict(event=[0, 1, 2]), "event must be coded"),
    (dict(weights=[1, 0, 1]), "weights must be"),
    (dict(time=[1, np.nan, 3]), "finite"),
    (dict(ties="exact"), "ties must be"),
])
def test_bad_input_raises(bad, match):
    args = dict(time=[1, 2, 3], event=[1, 0, 1], covariates=[0, 1, 1])
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        fit_cox(args.pop("time"), args.pop("event"), args.pop("covariates"), **args)


# ----------------------------------------------------------------------------- properties
@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_coef_invariant_to_row_order(rnd):
    perm = np.array(rnd.sample(range(len(TIES)), len(TIES)))
    d = TIES.iloc[perm]
    a = fit_cox(d.time, d.status, d[["x1", "x2"]].to_numpy(float), weights=d.w,
                strata=d.grp, cluster=d.cl)
    b = fit_cox(TIES.time, TIES.status, TIES[["x1", "x2"]].to_numpy(float), weights=TIES.w,
                strata=TIES.grp, cluster=TIES.cl)
    # Sums in a different order: agreement to rounding error.
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-9)
    np.testing.assert_allclose(a.se, b.se, rtol=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.floats(min_value=1e-3, max_value=1e3), st.sampled_from(["efron", "breslow"]))
def test_coef_invariant_to_weight_scaling(scale, ties):
    a = fit_cox(TIES.time, TIES.status, TIES[["x1", "x2"]].to_numpy(float),
                weights=TIES.w * scale, ties=ties)
    b = fit_cox(TIES.time, TIES.status, TIES[["x1", "x2"]].to_numpy(float),
                weights=TIES.w, ties=ties)
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-9)      # rounding error only


# ----------------------------------------------------------------------------- Table 3
def _targets() -> dict:
    from causal_hcc.studies.yang2025 import published_targets
    return published_targets()


def test_table3_directions_follow_the_papers_interpretation():
    variables = _targets()["cox_table3"]["variables"]
    assert {v.key for v in TABLE3_VARIABLES} == set(variables)
    for var in TABLE3_VARIABLES:
        interp = variables[var.key]["interpretation"]
        paper_reference = var.reference if var.paper_same_direction else var.level
        assert interp["reference_level"].startswith(paper_reference), var.key


def _cohort(n=80, seed=3):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "patient_id": [f"P{i}" for i in range(n)], "local_therapy": np.arange(n) % 2,
        "os_months": np.round(rng.exponential(24, n) + 0.5, 1),
        "death": (rng.random(n) < 0.7).astype(int), "ecog": rng.integers(0, 2, n),
        "intrahepatic_ccr": rng.integers(0, 2, n), "vascular_invasion": rng.integers(0, 2, n),
        "sex": rng.choice(["male", "female"], n), "age": rng.integers(30, 80, n),
        "child_pugh": rng.choice(["A", "B"], n), "afp_positive": rng.integers(0, 2, n),
        "oligometastatic": rng.integers(0, 2, n)})
    return frame


def test_cox_table_directions_and_r_agreement():
    frame = _cohort()
    cohort = validate_frame(frame)
    table = cox_table(cohort, TABLE3_VARIABLES, multivariable=["local_therapy", "ecog_ps"])
    rows = {(r.model, r.variable): r for r in table.rows}
    local = rows[("univariable", "local_therapy")]
    assert local.comparison == "local therapy: yes vs no (reference: no)"
    assert local.paper_comparison == "no vs yes"
    assert local.hr_paper == pytest.approx(1 / local.hr, rel=1e-12)
    assert local.ci_lower_paper == pytest.approx(1 / local.ci_upper, rel=1e-12)
    same = fit_cox(frame.os_months, frame.death, frame.local_therapy.to_numpy(float))
    assert local.hr == pytest.approx(same.hr[0], rel=1e-12)
    sex = rows[("univariable", "sex")]
    assert sex.level == "female" and sex.hr_paper == sex.hr
    # Columns absent from the data: not estimable, with the reason.
    milan = rows[("univariable", "intrahepatic_milan")]
    assert not milan.estimable and "milan_within" in milan.reason and np.isnan(milan.hr)
    assert ("multivariable", "ecog_ps") in rows and table.ph_test is not None
    assert table.selection == "as specified"
    assert "local therapy: yes vs no (reference: no)" in table.summary()
    assert len(table.to_frame()) == len(TABLE3_VARIABLES) + 2


def test_cox_table_small_multivariable_model_warns():
    cohort = validate_frame(_cohort(n=40, seed=5))
    with pytest.warns(SmallSampleWarning, match="events per variable"):
        table = cox_table(cohort, TABLE3_VARIABLES, multivariable=["local_therapy", "ecog_ps", "sex", "age"])
    assert table.events_per_variable < 10
    assert any("events per variable" in n for n in table.notes)


def test_cox_table_separated_variable_is_not_estimable():
    frame = _cohort()
    frame.loc[frame.child_pugh == "B", "death"] = 0          # no deaths in Child-Pugh B
    cohort = validate_frame(frame)
    with pytest.warns(SeparationWarning, match="child_pugh_class"):
        table = cox_table(cohort, TABLE3_VARIABLES, multivariable=["local_therapy"])
    row = next(r for r in table.rows if r.variable == "child_pugh_class")
    assert not row.estimable and "no events" in row.reason and np.isnan(row.hr)


BUNDLED = Path(__file__).parents[1] / "causal_hcc" / "studies" / "yang2025" / "bundled" / \
    "reconstructed_pseudo_cohort.csv"


@pytest.mark.parametrize("model,ties", [("efron_local_therapy", "efron"),
                                        ("breslow_local_therapy", "breslow")])
def test_bundled_cohort_local_therapy_hr_agrees_with_r(model, ties):
    from causal_hcc.studies.yang2025 import load_bundled
    cohort = load_bundled()
    ref = COX[(COX.dataset == "bundled") & (COX.model == model)]
    fit = fit_cox_frame(cohort.data, ["local_therapy"], time_col="os_months", event_col="death",
                        ties=ties)
    np.testing.assert_allclose(fit.coef, ref.coef, rtol=1e-6)    # as above
    np.testing.assert_allclose(fit.se, ref.se, rtol=1e-5)


def test_bundled_cohort_table3_agrees_with_r():
    from causal_hcc.studies.yang2025 import load_bundled
    with warnings.catch_warnings():
        # EPV and separation warnings are tested elsewhere; here only the numbers.
        warnings.simplefilter("ignore", SmallSampleWarning)
        table = cox_table(load_bundled(), TABLE3_VARIABLES)
    ref = COX[COX.dataset == "bundled"]
    for row in table.rows:
        model = f"uni_{row.variable}" if row.model == "univariable" else "multi_selected"
        r = ref[(ref.model == model) & (ref.term == row.variable)]
        assert len(r) == 1, (model, row.variable)
        assert row.n == r.n.iloc[0] and row.events == r.events.iloc[0]     # exact
        np.testing.assert_allclose(row.coef, r.coef.iloc[0], rtol=1e-6)    # as above
        np.testing.assert_allclose(row.se, r.se.iloc[0], rtol=1e-5)
    multi = ref[ref.model == "multi_selected"]
    assert list(table.selected) == list(multi.term)      # same P < 0.05 selection as R
    zph = ZPH[(ZPH.dataset == "bundled") & (ZPH.model == "multi_selected")]
    np.testing.assert_allclose(np.r_[table.ph_test.chisq, table.ph_test.global_chisq],
                               zph.chisq, rtol=1e-4)      # PH test, as above


def test_diverging_fit_is_not_estimable_with_a_remedy():
    # Every death is in group 1 and happens before any group-0 patient leaves: the
    # coefficient runs to infinity (monotone likelihood).
    import warnings as _w
    from causal_hcc.errors import CausalHccWarning, NotEstimableError
    time = np.array([1.0, 2, 3, 4, 5, 6])
    event = np.array([1, 1, 1, 0, 0, 0])
    x = np.array([[1.0], [1], [1], [0], [0], [0]])
    with _w.catch_warnings(record=True) as caught:
        _w.simplefilter("always", CausalHccWarning)
        try:
            fit = fit_cox(time, event, x, names=["g"])
            assert fit.infinite == ("g",)
        except NotEstimableError as exc:
            assert "Firth" in str(exc)
    assert any("Firth" in str(w.message) for w in caught)
