"""causal_hcc.weighting against the formulas evaluated in R (tests/reference/matching.R)."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_hcc.studies.yang2025 import validate_frame
from causal_hcc.errors import CohortError, NotEstimableError, OverlapWarning
from causal_hcc.propensity import fit_propensity
from causal_hcc.weighting import compute_weights, effective_sample_size, weights_from_ps

REF = Path(__file__).parent / "reference"
WEIGHTS = pd.read_csv(REF / "matching_weights.csv")
BALANCE = pd.read_csv(REF / "matching_balance.csv")

SCHEMES = {
    "ate": {"estimand": "ATE"},
    "ate_stabilized": {"estimand": "ATE", "stabilized": True},
    "att": {"estimand": "ATT"},
    "att_stabilized": {"estimand": "ATT", "stabilized": True},
    "ato": {"estimand": "ATO"},
    "ate_truncated_1_99": {"estimand": "ATE", "truncate": (1, 99)},
    "ate_trimmed_01_09": {"estimand": "ATE", "trim": (0.1, 0.9)},
    "ate_stabilized_trimmed_01_09": {"estimand": "ATE", "stabilized": True,
                                     "trim": (0.1, 0.9)},
}


def _lalonde(**options):
    # lalonde's ATE weights reach 40 and the treated ESS is 32% of n: the warning is
    # expected for the unbounded schemes; thresholds are raised here to test the values.
    return weights_from_ps(WEIGHTS.ps, WEIGHTS.treat, patient_id=WEIGHTS.id,
                           warn_weight_above=np.inf, warn_ess_below=0, **options)


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_weights_equal_r_formula(scheme):
    w = _lalonde(**SCHEMES[scheme])
    # Same formula, same PS: agreement to rounding (rtol 1e-12).
    np.testing.assert_allclose(w.weights, WEIGHTS[scheme], rtol=1e-12, atol=0)
    if "trim" in SCHEMES[scheme]:
        trimmed = WEIGHTS.id[WEIGHTS[scheme] == 0]
        assert set(w.trimmed_ids) == set(trimmed)
        assert "trimmed" in w.summary()


@pytest.mark.parametrize("scheme", ["ate", "ate_stabilized", "att", "att_stabilized", "ato",
                                    "ate_trimmed_01_09"])
def test_ess_equals_r(scheme):
    w = _lalonde(**SCHEMES[scheme])
    ref = BALANCE[BALANCE.scheme == scheme].iloc[0]
    assert w.ess["treated"] == pytest.approx(ref.ess_treated, rel=1e-12)
    assert w.ess["control"] == pytest.approx(ref.ess_control, rel=1e-12)


def test_hand_case_weights_3_and_4_thirds():
    # Ten rows. Treated with PS 1/3 -> ATE weight 3, with PS 3/4 -> 4/3;
    # controls with PS 1/3 -> 3/2, with PS 3/4 -> 4.
    ps = np.array([1 / 3, 1 / 3, 3 / 4, 3 / 4, 3 / 4, 1 / 3, 1 / 3, 1 / 3, 3 / 4, 3 / 4])
    treated = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    ate = weights_from_ps(ps, treated, estimand="ATE")
    np.testing.assert_allclose(ate.weights, [3, 3, 4 / 3, 4 / 3, 4 / 3, 1.5, 1.5, 1.5, 4, 4])
    # ESS treated: (6 + 4)^2 / (18 + 3 * 16/9) = 100 / (70/3) = 30/7.
    assert ate.ess["treated"] == pytest.approx(30 / 7)
    att = weights_from_ps(ps, treated, estimand="ATT")
    np.testing.assert_allclose(att.weights, [1] * 5 + [0.5] * 3 + [3, 3])
    ato = weights_from_ps(ps, treated, estimand="ATO")
    np.testing.assert_allclose(ato.weights, [2 / 3] * 2 + [1 / 4] * 3 + [1 / 3] * 3 + [3 / 4] * 2)
    stab = weights_from_ps(ps, treated, estimand="ATE", stabilized=True)   # p = 1/2
    np.testing.assert_allclose(stab.weights, ate.weights / 2)
    att_stab = weights_from_ps(ps, treated, estimand="ATT", stabilized=True)
    np.testing.assert_allclose(att_stab.weights, att.weights)   # (1 - p)/p = 1


def test_extreme_weights_warn_naming_patients():
    ps = np.array([0.05, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    with pytest.warns(OverlapWarning, match=r"weights above 10: patients A \(20.0\)"):
        w = weights_from_ps(ps, [1, 1, 1, 1, 0, 0, 0, 0], patient_id=list("ABCDEFGH"))
    assert w.flagged_ids == ("A",)
    assert "Extreme propensity-score weights" in w.summary()


def test_low_ess_warns_naming_the_arm():
    ps = np.r_[0.12, [0.9] * 9, [0.5] * 10]
    with pytest.warns(OverlapWarning, match="effective sample size of the treated arm"):
        weights_from_ps(ps, np.r_[[1] * 10, [0] * 10], warn_weight_above=100)


def test_truncation_lists_patients_and_trimming_changes_estimand():
    w = _lalonde(estimand="ATE", truncate=(1, 99))
    changed = WEIGHTS.id[~np.isclose(WEIGHTS.ate, WEIGHTS.ate_truncated_1_99, rtol=0,
                                     atol=0)]
    assert set(w.truncated_ids) == set(changed)
    t = _lalonde(estimand="ATE", trim=(0.1, 0.9))
    assert "the estimand becomes the ATE in the trimmed population" in t.summary()
    assert t.to_frame().trimmed.sum() == len(t.trimmed_ids)


def test_distribution_summary_per_arm():
    w = _lalonde(estimand="ATE")
    d = w.distribution.set_index("arm")
    treated = WEIGHTS.ate[WEIGHTS.treat == 1]
    assert d.loc["treated", "max"] == pytest.approx(treated.max())
    assert d.loc["treated", "p50"] == pytest.approx(treated.median())
    # Percentiles: numpy 'linear' = R quantile type 7.
    assert d.loc["treated", "p95"] == pytest.approx(np.percentile(treated, 95))
    assert d.loc["control", "sum"] == pytest.approx(WEIGHTS.ate[WEIGHTS.treat == 0].sum())


def test_option_errors_are_named():
    with pytest.raises(ValueError, match="ATO"):
        weights_from_ps([0.4, 0.6], [1, 0], estimand="ATO", stabilized=True)
    with pytest.raises(ValueError, match="estimand"):
        weights_from_ps([0.4, 0.6], [1, 0], estimand="ATX")
    with pytest.raises(ValueError, match="trim"):
        weights_from_ps([0.4, 0.6], [1, 0], trim=(0.9, 0.1))
    with pytest.raises(NotEstimableError, match="'b'"):
        weights_from_ps([0.4, 1.0], [1, 0], patient_id=["a", "b"])
    with pytest.raises(NotEstimableError, match="No treated patient left"):
        weights_from_ps([0.95, 0.5], [1, 0], trim=(0.1, 0.9))


def test_effective_sample_size():
    assert effective_sample_size([1, 1, 1, 1]) == 4
    assert effective_sample_size([3, 1]) == pytest.approx(16 / 10)


def _cohort():
    rng = np.random.default_rng(2)
    n = 80
    treated = np.r_[np.ones(40), np.zeros(40)].astype(int)
    frame = pd.DataFrame({
        "patient_id": [f"W{i:02d}" for i in range(n)], "local_therapy": treated,
        "os_months": np.round(rng.exponential(20, n) + 0.5, 1),
        "death": np.r_[1, 0].repeat(40), "ecog": rng.integers(0, 2, n),
        "intrahepatic_ccr": rng.integers(0, 2, n), "vascular_invasion": rng.integers(0, 2, n)})
    frame.loc[[0, 79], "death"] = 1
    return validate_frame(frame, source="synthetic test cohort")


def test_compute_weights_for_a_cohort():
    cohort = _cohort()
    fit = fit_propensity(cohort)
    w = compute_weights(cohort, fit, estimand="ATO")
    assert w.summary().startswith(cohort.label)
    assert w.covariates == fit.covariates
    np.testing.assert_allclose(w.weights, np.where(fit.treated == 1, 1 - fit.ps, fit.ps))
    assert list(w.to_frame().columns) == ["patient_id", "treated", "ps", "weight", "trimmed",
                                         "truncated"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.estimand = "ATE"
    other = cohort.subset(np.arange(cohort.n) > 0, "without the first patient")
    with pytest.raises(CohortError, match="other patients"):
        compute_weights(other, fit)


@settings(max_examples=80, deadline=None)
@given(ps=st.lists(st.floats(0.01, 0.99), min_size=4, max_size=60),
       estimand=st.sampled_from(["ATE", "ATT", "ATO"]), stabilized=st.booleans(),
       truncate=st.sampled_from([None, (1, 99), (5, 95)]))
def test_weights_positive_and_finite(ps, estimand, stabilized, truncate):
    ps = np.array(ps)
    treated = (np.arange(len(ps)) % 2).astype(int)
    if estimand == "ATO":
        stabilized = False
    w = weights_from_ps(ps, treated, estimand=estimand, stabilized=stabilized,
                        truncate=truncate, warn_weight_above=np.inf, warn_ess_below=0)
    assert np.all(np.isfinite(w.weights)) and np.all(w.weights > 0)
    again = weights_from_ps(ps, treated, estimand=estimand, stabilized=stabilized,
                            truncate=truncate, warn_weight_above=np.inf, warn_ess_below=0)
    assert np.array_equal(w.weights, again.weights)
    for arm in ("treated", "control"):
        n_arm = int(np.sum(treated == (arm == "treated")))
        assert 0 < w.ess[arm] <= n_arm + 1e-9


# ----------------------------------------------------------------------------- ATC
def test_atc_weights_by_hand():
    """ATC: (1 - e)/e for the treated, 1 for controls; stabilised: treated times p/(1-p)
    (p = share treated). PS 0.25 and 0.75 give weights 3 and 1/3."""
    w = weights_from_ps([0.25, 0.75, 0.5, 0.2], [1, 1, 0, 0], estimand="ATC",
                        warn_weight_above=np.inf, warn_ess_below=0)
    np.testing.assert_allclose(w.weights, [3.0, 1 / 3, 1.0, 1.0], rtol=1e-15)
    s = weights_from_ps([0.25, 0.75, 0.5], [1, 1, 0], estimand="ATC", stabilized=True,
                        warn_weight_above=np.inf, warn_ess_below=0)
    np.testing.assert_allclose(s.weights, [3.0 * 2, 2 / 3, 1.0], rtol=1e-15)  # p/(1-p) = 2
    assert "ATC (average treatment effect in the controls" in w.summary()


PUBLIC = ("rossi", "veteran", "pbc", "ovarian")


@pytest.mark.parametrize("name", PUBLIC)
def test_atc_weights_equal_r_public(name):
    """w_atc of tests/reference/public.R on R's own PS: rtol 1e-9 (closed form)."""
    r = pd.read_csv(REF / "public" / f"{name}_weights.csv").sort_values("row")
    w = weights_from_ps(r.ps, r.A, estimand="ATC", warn_weight_above=np.inf,
                        warn_ess_below=0)
    np.testing.assert_allclose(w.weights, r.w_atc, rtol=1e-9)


@pytest.mark.parametrize("name", PUBLIC)
def test_iptw_atc_cox_equals_r_public(name):
    """IPTW ATC row of effects.json against R coxph(weights = w_atc, robust = TRUE) on the
    public datasets: coef and CI rtol 1e-6 / 1e-4, robust SE rtol 1e-4, ESS-free."""
    from _fixtures import quiet
    from test_public_datasets import _adjusted
    r = pd.read_csv(REF / "public" / f"{name}_effects.csv")
    r = r[(r.method == "iptw") & (r.estimand == "ATC")].iloc[0]
    with quiet():
        fit = _adjusted(name)
    e = next(e for e in fit.estimates if (e.method, e.estimand) == ("iptw", "ATC"))
    np.testing.assert_allclose(np.log(e.hr), r.coef, rtol=1e-6)               # coef
    np.testing.assert_allclose(e.se_log_hr, r.se, rtol=1e-4)                  # robust SE
    np.testing.assert_allclose([e.ci_lower, e.ci_upper], [r.hr_lower, r.hr_upper],
                               rtol=1e-4)
    np.testing.assert_allclose(fit.weights["ATC"].weights,
                               pd.read_csv(REF / "public" / f"{name}_weights.csv")
                               .sort_values("row").w_atc, rtol=1e-9)


@pytest.mark.parametrize("name", ["bundled", "veteran"])
def test_iptw_atc_weights_and_cox_equal_r_estimands(name):
    """tests/reference/estimands.R: the IPTW ATC weights per patient (rtol 1e-9 on PS equal
    to ~1e-10) and the weighted Cox (coef rtol 1e-6, robust SE rtol 1e-4). Bundled: HR
    0.503 (0.208-1.216)."""
    from causal_hcc.effects.estimate import weighted_effect
    rows = pd.read_csv(REF / "estimands" / f"{name}_rows.csv")
    rows = rows[(rows.method == "iptw") & (rows.estimand == "ATC")]
    ps = pd.read_csv(REF / "estimands" / f"{name}_ps.csv")
    w = weights_from_ps(ps.ps, ps.treat, estimand="ATC", patient_id=ps.id,
                        warn_weight_above=np.inf, warn_ess_below=0)
    ref = rows.set_index("id").loc[ps.id]
    np.testing.assert_allclose(w.weights, ref.weight.astype(float), rtol=1e-9)
    cox = pd.read_csv(REF / "estimands" / f"{name}_cox.csv")
    cox = cox[(cox.method == "iptw") & (cox.estimand == "ATC")].iloc[0]
    e = weighted_effect(ref.time.to_numpy(float), ref.event.to_numpy(float),
                        ref.treat.to_numpy(float)[:, None], ["treat"], w.weights, "ATC",
                        False)
    np.testing.assert_allclose(np.log(e.hr), cox.coef, rtol=1e-6)
    np.testing.assert_allclose(e.se_log_hr, cox.se, rtol=1e-4)
    np.testing.assert_allclose([e.ci_lower, e.ci_upper], [cox.lower, cox.upper], rtol=1e-4)
    if name == "bundled":
        assert (round(e.hr, 3), round(e.ci_lower, 3), round(e.ci_upper, 3)) == \
            (0.503, 0.208, 1.216)


def test_patient_ids_become_text_whatever_their_type():
    """Integer ids become text; text ids (a cohort's object array) are kept as they are."""
    ps, tx = [0.3, 0.6, 0.5, 0.4], [1, 1, 0, 0]
    as_int = weights_from_ps(ps, tx, patient_id=np.array([10, 11, 12, 13]))
    as_text = weights_from_ps(ps, tx, patient_id=np.array(["10", "11", "12", "13"],
                                                          dtype=object))
    as_unicode = weights_from_ps(ps, tx, patient_id=np.array(["10", "11", "12", "13"]))
    for w in (as_int, as_text, as_unicode):
        assert w.patient_id.dtype == object and list(w.patient_id) == ["10", "11", "12", "13"]
        assert all(type(v) is str for v in w.patient_id)
    assert np.array_equal(as_int.weights, as_text.weights)
