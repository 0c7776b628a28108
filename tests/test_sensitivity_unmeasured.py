"""Lin-Psaty-Kronmal tipping points: hand calculations and R benchmarks.

Closed-form quantities are checked to rtol 1e-12; Cox HRs against R's coxph
(tests/reference/immortal_cox.csv, "synthetic benchmark" rows) to rtol 1e-6 on the
coefficient; prevalences exactly (ratios of counts).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _sensitivity_fixtures import hcc_cohort as validate_frame
from causal_hcc.sensitivity import (bias_factor, observed_confounder_benchmarks,
                                    tipping_point_contour, tipping_point_grid)

REF = Path(__file__).parent / "reference"


def test_bias_factor_by_hand():
    # HR_U 2, p1 0.2, p0 0.5: (1 + 0.2) / (1 + 0.5) = 0.8.
    assert bias_factor(2.0, 0.2, 0.5) == pytest.approx(0.8, rel=1e-12)
    # Protective U (0.5) commoner among treated (0.6 vs 0.2): 0.7 / 0.9.
    assert bias_factor(0.5, 0.6, 0.2) == pytest.approx(0.7 / 0.9, rel=1e-12)
    assert bias_factor(3.0, 0.4, 0.4) == 1.0
    with pytest.raises(ValueError, match="p1"):
        bias_factor(2.0, 1.2, 0.5)


def test_grid_values_and_shape():
    grid = tipping_point_grid(0.6, 0.4, 0.9, [0.2, 0.5], [0.5], [1.0, 2.0, 3.0])
    t = grid.to_frame()
    assert len(t) == 6
    row = t[(t.hr_u == 2.0) & (t.p1 == 0.2)].iloc[0]
    assert row.bias_factor == pytest.approx(0.8, rel=1e-12)
    assert row.hr_corrected == pytest.approx(0.6 / 0.8, rel=1e-12)
    assert row.ci_upper_corrected == pytest.approx(0.9 / 0.8, rel=1e-12)
    assert not row.point_explained_away and row.ci_includes_1
    # HR_U 3, p1 0.2, p0 0.5: B = 1.4 / 2 = 0.7; 0.6 / 0.7 < 1, 0.9 / 0.7 > 1.
    row = t[(t.hr_u == 3.0) & (t.p1 == 0.2)].iloc[0]
    assert row.hr_corrected == pytest.approx(0.6 / 0.7, rel=1e-12)
    # HR_U 1: no bias.
    assert (t[t.hr_u == 1.0].bias_factor == 1.0).all()
    assert "Lin-Psaty-Kronmal" in grid.summary()


def test_contour_reaches_exactly_one():
    hr, lo, hi = 0.6, 0.4, 0.9
    contour = tipping_point_contour(hr, lo, hi, [0.5, 2.0, 3.0], p0_values=[0.3, 0.6])
    t = contour.to_frame()
    ok = t[t.feasible]
    corrected_upper = hi / bias_factor(ok.hr_u.to_numpy(), ok.p1_required.to_numpy(),
                                       ok.p0.to_numpy())
    np.testing.assert_allclose(corrected_upper, 1.0, rtol=1e-12)
    # Harmful U must be rarer among the treated, protective U commoner.
    harmful, protective = ok[ok.hr_u > 1], ok[ok.hr_u < 1]
    assert (harmful.p1_required < harmful.p0).all()
    assert (protective.p1_required > protective.p0).all()
    assert set(harmful.region) == {"p1 <= p1_required"}
    assert set(protective.region) == {"p1 >= p1_required"}
    # By hand: HR_U 2, p0 0.6: p1 = (0.9 x 1.6 - 1) / 1 = 0.44.
    row = t[(t.hr_u == 2.0) & (t.p0 == 0.6)].iloc[0]
    assert row.p1_required == pytest.approx(0.44, rel=1e-12)
    # HR_U 0.5, p0 0.6: p1 = (0.9 x 0.7 - 1) / -0.5 = 0.74.
    row = t[(t.hr_u == 0.5) & (t.p0 == 0.6)].iloc[0]
    assert row.p1_required == pytest.approx(0.74, rel=1e-12)


def test_contour_for_harmful_hr_and_point_target():
    t = tipping_point_contour(1.5, 1.1, 2.0, [2.0], p0_values=[0.2], target="point").to_frame()
    # 1.5 = B = (1 + p1) / 1.2 -> p1 = 0.8; harmful U commoner among treated.
    assert t.p1_required.iloc[0] == pytest.approx(0.8, rel=1e-12)
    assert t.region.iloc[0] == "p1 >= p1_required"


def test_contour_empty_when_ci_already_includes_one():
    contour = tipping_point_contour(0.8, 0.5, 1.2, [2.0])
    assert not contour.to_frame().feasible.any()
    assert "already" in contour.note


@pytest.fixture(scope="module")
def synthetic():
    return validate_frame(pd.read_csv(REF / "immortal_synthetic_cohort.csv"), source="synth")


def test_benchmarks_against_r(synthetic):
    r = pd.read_csv(REF / "immortal_cox.csv")
    r = r[r.dataset == "synthetic benchmark"]
    crude = pd.read_csv(REF / "immortal_cox.csv").query(
        "dataset == 'synthetic naive' and model == 'crude'").iloc[0]
    result = observed_confounder_benchmarks(synthetic)
    t = result.to_frame()
    assert len(t) == 6 and set(t.imbalance) == {"as observed", "reversed"}
    # Default observed HR: crude Cox HR of local therapy (R: coef -0.0980935).
    assert np.log(result.hr) == pytest.approx(crude.coef, rel=1e-6)
    d = synthetic.data
    for c in ("ecog", "intrahepatic_ccr", "vascular_invasion"):
        obs = t[(t.confounder == c) & (t.imbalance == "as observed")].iloc[0]
        rev = t[(t.confounder == c) & (t.imbalance == "reversed")].iloc[0]
        expected = r[(r.model == f"local_therapy + {c}") & (r.term == c)].iloc[0]
        assert np.log(obs.hr_u) == pytest.approx(expected.coef, rel=1e-6)
        p1 = d.loc[d.local_therapy == 1, c].mean()
        p0 = d.loc[d.local_therapy == 0, c].mean()
        assert (obs.p1, obs.p0) == (p1, p0) and (rev.p1, rev.p0) == (p0, p1)   # exact
        bf = (1 + (obs.hr_u - 1) * p1) / (1 + (obs.hr_u - 1) * p0)
        assert obs.bias_factor == pytest.approx(bf, rel=1e-12)
        assert rev.bias_factor == pytest.approx(1 / bf, rel=1e-12)
        assert obs.hr_corrected == pytest.approx(result.hr / bf, rel=1e-12)
        assert obs.bias_direction == ("toward benefit" if bf < 1 else "toward harm")
    # Intrahepatic cCR: protective (HR < 1) and commoner among treated -> B < 1.
    ccr = t[(t.confounder == "intrahepatic_ccr") & (t.imbalance == "as observed")].iloc[0]
    assert ccr.hr_u < 1 and ccr.p1 > ccr.p0 and ccr.bias_direction == "toward benefit"
    assert "as strong" in result.summary()


def test_benchmarks_with_supplied_hr_and_mutual_adjustment(synthetic):
    result = observed_confounder_benchmarks(synthetic, ("ecog",), hr=0.5, ci_lower=0.3,
                                            ci_upper=0.83, mutually_adjusted=True,
                                            hr_label="PS-matched HR")
    t = result.to_frame()
    assert result.hr_label == "PS-matched HR"
    assert t.hr_u_adjusted_for.iloc[0] == "local_therapy"   # only ecog given: no others
    with pytest.raises(ValueError, match="binary"):
        observed_confounder_benchmarks(synthetic, ("os_months",))


def test_benchmark_not_estimable_row():
    frame = pd.DataFrame({
        "patient_id": [f"P{i}" for i in range(8)], "local_therapy": [1, 1, 1, 1, 0, 0, 0, 0],
        "os_months": [5.0, 6, 7, 8, 2, 3, 4, 9], "death": [1, 0, 1, 0, 1, 1, 0, 1],
        "ecog": [0, 0, 0, 0, 0, 0, 0, 0], "intrahepatic_ccr": [1, 1, 0, 0, 0, 0, 1, 0],
        "vascular_invasion": [0, 1, 0, 0, 1, 1, 0, 0]})
    cohort = validate_frame(frame, source="tiny", covariates=["intrahepatic_ccr"])
    t = observed_confounder_benchmarks(
        cohort, ("ecog", "intrahepatic_ccr", "vascular_invasion")).to_frame()
    ecog = t[t.confounder == "ecog"].iloc[0]
    assert not ecog.estimable and "ecog = 1" in ecog.reason
    assert np.isnan(ecog.hr_corrected)
