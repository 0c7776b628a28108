"""causal_hcc.balance against MatchIt summary() and the SMD formula in R
(fixtures from tests/reference/matching.R)."""

import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_hcc.balance import (balance_frame, balance_table,
                                weighted_ks, weighted_variance)
from causal_hcc.studies.yang2025 import load_bundled, validate_frame
from causal_hcc.errors import CohortError
from causal_hcc.matching import match_on_logit, match_patients
from causal_hcc.propensity import fit_propensity
from causal_hcc.weighting import compute_weights
from _fixtures import quiet

REF = Path(__file__).parent / "reference"
LALONDE = pd.read_csv(REF / "matching_lalonde.csv")
PS = pd.read_csv(REF / "matching_ps.csv")
ROWS = pd.read_csv(REF / "matching_rows.csv")
SUMMARY = pd.read_csv(REF / "matching_summary.csv")
BALANCE = pd.read_csv(REF / "matching_balance.csv")
WEIGHTS = pd.read_csv(REF / "matching_weights.csv")
VERSIONS = (REF / "versions_matching.txt").read_text()
BUNDLED = Path(__file__).parents[1] / "causal_hcc" / "studies" / "yang2025" / "bundled" / \
    "reconstructed_pseudo_cohort.csv"
COVS = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]
VETERAN = pd.read_csv(REF / "matching_veteran.csv")
VETERAN_COVS = ["celltype", "karno", "diagtime", "age", "prior"]
VETERAN_LEVELS = {"celltype": ["squamous", "smallcell", "adeno", "large"]}
TIES = pd.read_csv(REF / "matching_ties.csv")
TIES_COVS = ["ecog", "intrahepatic_ccr", "vascular_invasion"]
TOL = {"rtol": 1e-6, "atol": 1e-8}   # coefficients/SMDs rtol 1e-6; atol for exact zeros


def _r_names(table) -> list[str]:
    """Our rows -> R's model-matrix names: race = black -> raceblack."""
    return [r.variable + r.level for r in table.to_frame().itertuples()]


def _weights(scheme: str):
    if scheme.startswith("unadjusted"):
        return None
    if scheme.startswith("matched_"):
        return ROWS[ROWS.config == scheme.removeprefix("matched_")].weight.to_numpy()
    return WEIGHTS[scheme].to_numpy()


@pytest.mark.parametrize("scheme", sorted(BALANCE.scheme.unique()))
def test_smd_equals_r_formula(scheme):
    ref = BALANCE[BALANCE.scheme == scheme].set_index("variable")
    table = balance_frame(LALONDE, LALONDE.treat, COVS, weights=_weights(scheme),
                          smd_denominator=ref.denominator.iloc[0])
    ours = table.to_frame().set_index(pd.Index(_r_names(table))).loc[ref.index]
    when = "before" if scheme.startswith("unadjusted") else "after"
    np.testing.assert_allclose(ours[f"mean_treated_{when}"], ref.mean_treated, **TOL)
    np.testing.assert_allclose(ours[f"mean_control_{when}"], ref.mean_control, **TOL)
    # An independent weighted mean: survey::svymean.
    np.testing.assert_allclose(ours[f"mean_treated_{when}"], ref.svymean_treated, **TOL)
    np.testing.assert_allclose(ours[f"mean_control_{when}"], ref.svymean_control, **TOL)
    np.testing.assert_allclose(ours.sd_denominator, ref.sd_denominator, **TOL)
    np.testing.assert_allclose(ours[f"smd_{when}"], ref.smd, **TOL)
    np.testing.assert_allclose(ours[f"variance_ratio_{when}"], ref.var_ratio, **TOL)
    np.testing.assert_allclose(ours[f"ks_{when}"], ref.ks, **TOL)
    if when == "after":
        assert table.ess_after["treated"] == pytest.approx(ref.ess_treated.iloc[0], rel=1e-12)
        assert table.ess_after["control"] == pytest.approx(ref.ess_control.iloc[0], rel=1e-12)


MATCHED = sorted(c for c in SUMMARY.config.unique() if not c.startswith("bundled"))


@pytest.mark.parametrize("config", MATCHED)
def test_balance_equals_matchit_summary(config):
    weights = ROWS[ROWS.config == config].weight.to_numpy()
    if config.startswith("veteran"):
        table = balance_frame(VETERAN, VETERAN.treated, VETERAN_COVS, weights=weights,
                              smd_denominator="treated", levels=VETERAN_LEVELS)
    elif config.startswith("ties"):
        table = balance_frame(TIES, TIES.local_therapy, TIES_COVS, weights=weights,
                              smd_denominator="treated")
    else:
        table = balance_frame(LALONDE, LALONDE.treat, COVS, weights=weights,
                              smd_denominator="treated")
    frame = table.to_frame().set_index(pd.Index(_r_names(table)))
    for when, sample in (("before", "all"), ("after", "matched")):
        ref = SUMMARY[(SUMMARY.config == config) & (SUMMARY["sample"] == sample)]
        ref = ref.set_index("variable")
        # The spline model's summary lists basis and interaction columns instead of age.
        ref = ref[ref.index.isin(frame.index)]
        assert len(ref) == {"lalonde": 9, "veteran": 8, "ties": 3}[config.split("_")[0]] - (
            "spline" in config)
        ours = frame.loc[ref.index]
        np.testing.assert_allclose(ours[f"mean_treated_{when}"], ref.means_treated, **TOL)
        np.testing.assert_allclose(ours[f"mean_control_{when}"], ref.means_control, **TOL)
        # MatchIt reports the raw difference when |difference| < sqrt(eps): atol covers it.
        np.testing.assert_allclose(ours[f"smd_{when}"], ref.smd, **TOL)
        np.testing.assert_allclose(ours[f"variance_ratio_{when}"], ref.var_ratio, **TOL)
        np.testing.assert_allclose(ours[f"ks_{when}"], ref.ecdf_max, **TOL)


@pytest.mark.parametrize("config", ["bundled_nn_cal02", "bundled_nn_cal02_replace"])
def test_bundled_cohort_balance_equals_matchit_summary(config):
    found = re.search(r"bundled cohort md5: (\w+)", VERSIONS)
    if not BUNDLED.exists() or not found or found.group(1) == "NA":
        pytest.fail("bundled cohort or its R fixtures missing: run Rscript "
                    "tests/reference/matching.R")
    if hashlib.md5(BUNDLED.read_bytes()).hexdigest() != found.group(1):
        pytest.fail("The bundled cohort CSV changed after the R fixtures were made: run "
                    "Rscript tests/reference/matching.R again.")
    cohort = load_bundled()
    matched = match_patients(cohort, fit_propensity(cohort),
                             replace=config.endswith("replace"))
    table = balance_table(cohort, matched)
    frame = table.to_frame().set_index("variable")
    for when, sample in (("before", "all"), ("after", "matched")):
        ref = SUMMARY[(SUMMARY.config == config) & (SUMMARY["sample"] == sample)]
        ref = ref.set_index("variable")
        ours = frame.loc[ref.index]
        np.testing.assert_allclose(ours[f"mean_treated_{when}"], ref.means_treated, **TOL)
        np.testing.assert_allclose(ours[f"mean_control_{when}"], ref.means_control, **TOL)
        np.testing.assert_allclose(ours[f"smd_{when}"], ref.smd, **TOL)


def test_lalonde_vignette_check():
    # MatchIt's vignette: nearest 1:1 on the PS itself (not its logit), no caliper; age SMD
    # after matching 0.0718. Reproduced with OUR matching on R's PS and OUR balance table.
    ps = PS[PS.model == "lalonde_main"]
    matched = match_on_logit(ps.ps.to_numpy(), ps.treat.to_numpy(), caliper_sd=None,
                             patient_id=ps.id.to_numpy())
    table = balance_frame(LALONDE, LALONDE.treat, COVS, weights=matched.weights,
                          smd_denominator="treated")
    age = table.to_frame().set_index("variable").loc["age"]
    assert round(age.smd_after, 4) == 0.0718
    ref = SUMMARY[(SUMMARY.config == "lalonde_vignette_ps") & (SUMMARY["sample"] == "matched")]
    assert age.smd_after == pytest.approx(ref.set_index("variable").smd["age"], rel=1e-6)
    assert "age SMD after matching 0.0718" in VERSIONS


# ---------------------------------------------------------------- hand-checkable case
def test_hand_case_ten_rows():
    # Treated x = 1, 2, 3, 4, 5 (mean 3, var 2.5); controls x = 2, 2, 4, 4, 6 (mean 3.6,
    # var 2.8). Pooled SD sqrt(2.65); SMD before (3 - 3.6)/sqrt(2.65).
    # Weights: treated 1; controls 3, 3, 4/3, 4/3, 0: weighted control mean
    # (6 + 6 + 16/3 + 16/3) / (6 + 8/3) = (68/3) / (26/3) = 68/26.
    frame = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 2, 2, 4, 4, 6],
                          "b": [1, 1, 0, 0, 0, 1, 0, 0, 0, 0]})
    treated = np.r_[[1] * 5, [0] * 5]
    w = np.r_[[1] * 5, 3, 3, 4 / 3, 4 / 3, 0]
    table = balance_frame(frame, treated, ["x", "b"], weights=w, smd_denominator="pooled")
    x = table.to_frame().set_index("variable").loc["x"]
    assert x.sd_denominator == pytest.approx(np.sqrt(2.65))
    assert x.smd_before == pytest.approx(-0.6 / np.sqrt(2.65))
    assert x.mean_control_after == pytest.approx(68 / 26)
    assert x.smd_after == pytest.approx((3 - 68 / 26) / np.sqrt(2.65))
    assert x.variance_ratio_before == pytest.approx(2.5 / 2.8)
    # Binary b: treated p 0.4, control p 0.2; variance p(1 - p): 0.24 and 0.16.
    b = table.to_frame().set_index("variable").loc["b"]
    assert b.sd_denominator == pytest.approx(np.sqrt((0.24 + 0.16) / 2))
    assert b.mean_control_after == pytest.approx(3 / (26 / 3))
    assert np.isnan(b.variance_ratio_after)
    treated_sd = balance_frame(frame, treated, ["x"], smd_denominator="treated")
    assert treated_sd.to_frame().sd_denominator[0] == pytest.approx(np.sqrt(2.5))


def test_weighted_statistics_by_hand():
    # Weighted variance with weights 3, 1 on 0, 4: mean 1, sum w(x-m)^2 = 3 + 9 = 12,
    # denominator 4 - 10/4 = 1.5 -> 8.
    assert weighted_variance(np.array([0.0, 4.0]), np.array([3.0, 1.0])) == pytest.approx(8)
    # KS: treated {1, 2}, control {2, 3}: CDF gap 0.5 at 1 and at 2.
    assert weighted_ks(np.array([1.0, 2, 2, 3]), np.array([1, 1, 0, 0]),
                       np.ones(4)) == pytest.approx(0.5)


# ---------------------------------------------------------------- cohort level
def _cohort():
    rng = np.random.default_rng(9)
    n = 90
    treated = np.r_[np.ones(40), np.zeros(50)].astype(int)
    frame = pd.DataFrame({
        "patient_id": [f"B{i:02d}" for i in range(n)], "local_therapy": treated,
        "os_months": np.round(rng.exponential(20, n) + 0.5, 1),
        "death": np.r_[1, 0].repeat(45), "ecog": rng.integers(0, 2, n),
        "intrahepatic_ccr": (rng.random(n) < 0.2 + 0.5 * treated).astype(int),
        "vascular_invasion": rng.integers(0, 2, n),
        "sex": rng.choice(["male", "female"], n), "age": np.round(rng.normal(55, 9, n)),
        "child_pugh": rng.choice(["A", "B"], n),
        "intrahepatic_lesions": rng.choice(["none", "single", "multiple"], n),
        "months_to_local_therapy": np.where(treated == 1, 0.2, np.nan)})
    frame.loc[[0, 89], "death"] = 1
    frame.loc[5, "age"] = np.nan
    return validate_frame(frame, source="synthetic test cohort")


def test_balance_table_for_matched_cohort():
    cohort = _cohort()
    fit = fit_propensity(cohort)
    matched = match_patients(cohort, fit)
    table = balance_table(cohort, matched)
    rows = table.to_frame()
    # PS covariates first, then every Table 1 variable present; not follow-up variables.
    present = [v for v in cohort.roles.descriptive if v in cohort.data]
    assert list(dict.fromkeys(rows.variable)) == list(fit.covariates) + [
        v for v in present if v not in fit.covariates]
    assert "months_to_local_therapy" not in set(rows.variable)
    # Each category level is its own row, reference level included.
    assert rows[rows.variable == "intrahepatic_lesions"].level.tolist() == [
        "none", "single", "multiple"]
    assert table.smd_denominator == "treated"
    assert table.estimand == matched.estimand
    text = table.summary()
    assert text.startswith(cohort.label)
    assert "SD of the treated arm in the unadjusted sample" in text
    assert "'age': 1 missing values" in text
    assert table.max_abs_smd == pytest.approx(np.nanmax(np.abs(rows.smd_after)))
    one = table.table_one()
    assert one.iloc[0].variable == "n"
    assert one.iloc[0].treated_after == str(matched.n_matched_treated)
    assert one.iloc[0].statistic == "n (after: sum of weights)"        # not a head count
    assert one.iloc[1].variable == "ESS"
    assert one.iloc[1].control_after == f"{table.ess_after['control']:.1f}"
    age = one[one.variable == "age"].iloc[0]
    assert "±" in age.treated_before and age.statistic == "mean ± SD"
    assert "%" in one[one.variable == "ecog"].iloc[0].treated_before
    with pytest.raises(dataclasses.FrozenInstanceError):
        table.threshold = 0.2


def test_balance_table_for_weights_uses_pooled_sd():
    cohort = _cohort()
    fit = fit_propensity(cohort)
    table = balance_table(cohort, compute_weights(cohort, fit, estimand="ATO"))
    assert table.smd_denominator == "pooled"
    # Overlap weights balance the PS covariates' means exactly (Li et al. 2018).
    ps_rows = table.to_frame()[table.to_frame().ps_covariate]
    np.testing.assert_allclose(ps_rows.smd_after, 0, atol=1e-8)
    assert "pooled SD" in table.summary()


def test_unadjusted_table_and_threshold():
    cohort = _cohort()
    table = balance_table(cohort)
    assert not table.adjusted and table.adjustment == "unadjusted"
    rows = table.to_frame()
    assert rows.smd_after.isna().all()
    flagged = rows[np.abs(rows.smd_before) > 0.1]
    assert len(table.imbalanced) == len(flagged)
    assert "intrahepatic_ccr" in table.imbalanced


def test_unknown_covariate_is_named():
    with pytest.raises(CohortError, match="'albumin'"):
        balance_table(_cohort(), covariates=["ecog", "albumin"])


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 100_000), scale=st.floats(0.1, 10))
def test_smd_invariant_to_weight_scale(seed, scale):
    rng = np.random.default_rng(seed)
    n = 40
    frame = pd.DataFrame({"x": rng.normal(size=n), "b": rng.integers(0, 2, n)})
    treated = np.r_[[1] * 20, [0] * 20]
    frame.loc[[0, 20], "b"] = [0, 1]
    frame.loc[[1, 21], "b"] = [1, 0]
    w = rng.uniform(0.2, 5, n)
    a = balance_frame(frame, treated, ["x", "b"], weights=w).to_frame()
    b = balance_frame(frame, treated, ["x", "b"], weights=w * scale).to_frame()
    np.testing.assert_allclose(a.smd_after, b.smd_after, rtol=1e-9)
    np.testing.assert_allclose(a.ks_after, b.ks_after, rtol=1e-9, atol=1e-12)
    assert np.all(np.abs(a.ks_after) <= 1 + 1e-12)


# ----------------------------------------------------------------------------- ATC, residual
def test_atc_smd_uses_the_control_sd_by_hand():
    """ATC weights: SMD denominator = the control arm's unadjusted SD (binary p(1-p)).
    Treated x = 1, 1, 0, 0 (p 0.5), controls x = 1, 0, 0, 0 (p 0.25, SD sqrt(0.1875));
    weights treated 3, 1, 1, 1 (weighted mean 0.667), controls 1."""
    from causal_hcc.balance import balance_frame
    frame = pd.DataFrame({"x": [1, 1, 0, 0, 1, 0, 0, 0]})
    treated = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    w = np.array([3, 1, 1, 1, 1, 1, 1, 1], float)
    t = balance_frame(frame, treated, ["x"], weights=w, smd_denominator="control")
    row = t.rows.iloc[0]
    sd = np.sqrt(0.25 * 0.75)
    assert row.sd_denominator == pytest.approx(sd, rel=1e-15)
    assert row.smd_before == pytest.approx((0.5 - 0.25) / sd, rel=1e-15)
    assert row.smd_after == pytest.approx((4 / 6 - 0.25) / sd, rel=1e-15)
    assert "control arm" in t.denominator_description


def test_atc_weights_default_to_the_control_sd():
    from causal_hcc.balance import focal_denominator
    cohort = _cohort()
    with quiet():
        ps = fit_propensity(cohort)
        w = compute_weights(cohort, ps, estimand="ATC")
    assert balance_table(cohort, w).smd_denominator == "control"
    assert [focal_denominator(e) for e in ("ATE", "ATT", "ATC", "ATO")] == \
        ["pooled", "treated", "control", "pooled"]
    assert focal_denominator("ATT among matched treated", matching=True) == "treated"
    assert focal_denominator("ATC", matching=True) == "control"


def test_residual_imbalance_lists_every_balance_variable_above_threshold():
    """Every variable (level) with |SMD after| > 0.1 in every adjusted table, PS covariate
    or not (exact: a filter of the balance tables)."""
    from causal_hcc.balance import residual_imbalance
    cohort = load_bundled()
    with quiet():
        ps = fit_propensity(cohort)
        tables = {k: balance_table(cohort, compute_weights(cohort, ps, estimand=k))
                  for k in ("ATC", "ATO")}
    frame = residual_imbalance(tables)
    for name, table in tables.items():
        expected = table.rows[np.abs(table.rows.smd_after) > 0.1]
        got = frame[frame.method == name]
        assert set(zip(got.variable, got.level)) == set(zip(expected.variable,
                                                            expected.level))
        assert np.all(np.diff(np.abs(got.smd_after.to_numpy())) <= 0)   # largest first
    # Issue 11: multiple intrahepatic lesions stays imbalanced after weighting.
    assert ((frame.variable == "intrahepatic_lesions") & (frame.level == "multiple")).any()
    assert not frame.ps_covariate[frame.method == "ATO"].any()   # ATO balances PS covariates
