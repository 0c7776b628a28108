"""E-values against published worked examples and the EValue package's formulas.

Worked examples (expected values printed to 2 decimals in the sources, so abs tol 0.005
on those; the formula itself is checked to rtol 1e-12):
- VanderWeele & Ding, Ann Intern Med 2017;167:268-274, breastfeeding and infant death
  from respiratory infection (Victora 1987): RR 3.9 (1.8-8.7) -> E-value 7.26, lower
  limit 3.00 (the paper rounds to 7.2 and 3.0).
- Same paper / EValue ``evalues.RR`` documentation, "leukemia example": RR 0.80
  (0.71-0.91) -> 1.81, upper limit 1.43.
- EValue vignette (Hammond & Holl 1958 smoking and lung cancer): RR 10.73 (8.02-14.36)
  -> 20.95, lower limit 15.52.
- EValue ``evalues.HR`` documentation example HR 0.56 (0.46-0.69), common outcome (no
  printed output there): checked against the conversion computed by hand here.
"""

import importlib
import math

import numpy as np
import pytest

from causal_hcc.sensitivity import (evalue_hr, evalue_landmark_difference, evalue_risk_ratio,
                                    evalue_rmst_difference, evalue_rr, hr_to_rr_common,
                                    outcome_proportion_km)


def test_formula():
    # E = RR + sqrt(RR (RR - 1)); 1/RR for RR < 1; E(1) = 1 (rtol 1e-12: closed form).
    assert evalue_rr(3.9) == pytest.approx(3.9 + math.sqrt(3.9 * 2.9), rel=1e-12)
    assert evalue_rr(0.5) == pytest.approx(2 + math.sqrt(2), rel=1e-12)
    assert evalue_rr(1.0) == 1.0
    with pytest.raises(ValueError, match="positive"):
        evalue_rr(0.0)


@pytest.mark.parametrize("rr,lo,hi,point,ci,limit", [
    (3.9, 1.8, 8.7, 7.26, 3.00, "lower"),        # VanderWeele & Ding 2017, breastfeeding
    (0.80, 0.71, 0.91, 1.81, 1.43, "upper"),     # VanderWeele & Ding 2017, leukemia
    (10.73, 8.02, 14.36, 20.95, 15.52, "lower"),  # EValue vignette, Hammond & Holl 1958
])
def test_published_worked_examples(rr, lo, hi, point, ci, limit):
    result = evalue_risk_ratio(rr, lo, hi)
    assert result.evalue_point == pytest.approx(point, abs=0.005)   # printed to 2 dp
    assert result.evalue_ci == pytest.approx(ci, abs=0.005)
    assert result.ci_limit == limit
    assert result.outcome_conversion == "not applicable"


def test_ci_crossing_one_gives_one():
    result = evalue_risk_ratio(1.4, 0.9, 2.2)
    assert result.evalue_ci == 1.0 and result.ci_limit == "crosses 1"
    assert result.evalue_point == pytest.approx(1.4 + math.sqrt(1.4 * 0.4), rel=1e-12)


def test_hr_common_outcome_conversion_by_hand():
    # EValue's evalues.HR example: HR 0.56 (0.46-0.69), rare = FALSE.
    result = evalue_hr(0.56, 0.46, 0.69, common_outcome=True)
    rr = (1 - 0.5 ** math.sqrt(0.56)) / (1 - 0.5 ** math.sqrt(1 / 0.56))
    rr_hi = (1 - 0.5 ** math.sqrt(0.69)) / (1 - 0.5 ** math.sqrt(1 / 0.69))
    assert result.rr == pytest.approx(rr, rel=1e-12)
    assert result.rr == pytest.approx(0.6701, abs=5e-5)             # 4 dp by hand
    assert result.evalue_point == pytest.approx(1 / rr + math.sqrt(1 / rr * (1 / rr - 1)),
                                                rel=1e-12)
    assert result.evalue_point == pytest.approx(2.35, abs=0.005)
    assert result.evalue_ci == pytest.approx(evalue_rr(rr_hi), rel=1e-12)
    assert result.evalue_ci == pytest.approx(1.91, abs=0.005)
    assert result.ci_limit == "upper" and result.direction == "protective"
    assert result.outcome_conversion == "common"
    assert hr_to_rr_common(1.0) == 1.0


def test_hr_rare_outcome_uses_hr():
    result = evalue_hr(0.56, 0.46, 0.69, outcome_proportion=0.10)
    assert result.rr == 0.56 and result.outcome_conversion == "rare"
    assert "10.0% <= 15%" in result.conversion_reason
    common = evalue_hr(0.56, 0.46, 0.69, outcome_proportion=0.42)
    assert common.outcome_conversion == "common" and "42.0% > 15%" in common.conversion_reason


def test_hr_needs_outcome_frequency():
    with pytest.raises(ValueError, match="common_outcome"):
        evalue_hr(0.56, 0.46, 0.69)
    with pytest.raises(ValueError, match="contradicts"):
        evalue_hr(0.56, 0.46, 0.69, common_outcome=False, outcome_proportion=0.4)
    with pytest.raises(ValueError, match="ci_lower"):
        evalue_hr(0.56, 0.60, 0.69, common_outcome=True)


def test_paper_multivariable_hr_crosses_one():
    # The paper's adjusted local-therapy HR 1.41 (0.58-3.45), death common (32/76).
    result = evalue_hr(1.41, 0.58, 3.45, outcome_proportion=32 / 76)
    assert result.evalue_ci == 1.0 and result.direction == "harmful"
    assert "outcome conversion: common" in result.summary()


def test_landmark_risk_difference_by_hand():
    # S1 = 0.89, S0 = 0.65 at 12 months: RR of death (0.11 / 0.35) = 0.3142857.
    result = evalue_landmark_difference(0.89, 0.65, 12, se_treated=0.05, se_control=0.08)
    assert result.rr == pytest.approx(0.11 / 0.35, rel=1e-12)
    assert result.estimate == pytest.approx(0.24, rel=1e-12)
    assert result.evalue_point == pytest.approx(evalue_rr(0.11 / 0.35), rel=1e-12)
    se_log = math.sqrt((0.05 / 0.11) ** 2 + (0.08 / 0.35) ** 2)
    hi = 0.11 / 0.35 * math.exp(1.959963984540054 * se_log)
    assert result.rr_upper == pytest.approx(hi, rel=1e-9)
    assert result.evalue_ci == (1.0 if hi >= 1 else pytest.approx(evalue_rr(hi), rel=1e-12))
    assert "(1 - S1)/(1 - S0)" in result.note
    none = evalue_landmark_difference(1.0, 0.8, 6)
    assert not none.estimable and "no deaths" in none.note


def test_rmst_difference_has_no_evalue():
    result = evalue_rmst_difference(4.2, 0.5, 7.9, horizon_months=36)
    assert not result.estimable and math.isnan(result.evalue_point)
    assert "No published conversion" in result.note and "36 months" in result.note
    assert "not estimable" in result.summary()
    assert result.to_frame().shape == (1, 15)


def test_outcome_proportion_km_by_hand():
    # Deaths at 1 (of 4 at risk) and 3 (of 2): S = 3/4 * 1/2 = 0.375, proportion 0.625.
    assert outcome_proportion_km([1, 2, 3, 4], [1, 0, 1, 0]) == pytest.approx(0.625, rel=1e-12)
    assert np.isclose(outcome_proportion_km([5, 6], [0, 0]), 0.0)


# ----------------------------------------------------------------- rare/common cut-off
def _rr_by_hand(hr: float, common: bool) -> float:
    """VanderWeele's conversion written out again (independent of hr_to_rr_common)."""
    if not common:
        return hr
    return (1 - 0.5 ** math.sqrt(hr)) / (1 - 0.5 ** math.sqrt(1 / hr))


def test_common_outcome_cut_off_is_the_documented_15_percent():
    # DESIGN.md: common = over 15% by the end of follow-up (VanderWeele & Ding 2017).
    from causal_hcc.sensitivity import COMMON_OUTCOME_THRESHOLD
    assert COMMON_OUTCOME_THRESHOLD == 0.15


@pytest.mark.parametrize("proportion, common", [(0.1499, False), (0.15, False),
                                                (0.1501, True), (0.2999, True)])
def test_hr_conversion_exactly_at_the_boundary(proportion, common):
    # <= 15% is rare (HR used as RR), > 15% is common (HR converted); a cut-off moved to
    # 30% makes 0.1501 and 0.2999 rare and fails here.
    result = evalue_hr(1.8, 1.2, 2.7, outcome_proportion=proportion)
    assert result.outcome_conversion == ("common" if common else "rare")
    assert result.rr == pytest.approx(_rr_by_hand(1.8, common), rel=1e-12)
    assert result.rr_lower == pytest.approx(_rr_by_hand(1.2, common), rel=1e-12)
    rr = _rr_by_hand(1.8, common)
    assert result.evalue_point == pytest.approx(rr + math.sqrt(rr * (rr - 1)), rel=1e-12)
    assert f"{proportion:.1%} {'>' if common else '<='} 15%" in result.conversion_reason


def test_messages_take_the_cut_off_from_the_constant(monkeypatch):
    # No message hard-codes "15%": move the constant and every message follows it.
    ev = importlib.import_module("causal_hcc.sensitivity.evalues")
    monkeypatch.setattr(ev, "COMMON_OUTCOME_THRESHOLD", 0.30)
    rare = evalue_hr(1.8, 1.2, 2.7, outcome_proportion=0.2)
    assert rare.outcome_conversion == "rare" and "<= 30%" in rare.conversion_reason
    with pytest.raises(ValueError, match="common means > 30%"):
        evalue_hr(1.8, 1.2, 2.7, common_outcome=True, outcome_proportion=0.2)
    with pytest.raises(ValueError, match=r"> 0.3 counts as common"):
        evalue_hr(1.8, 1.2, 2.7)
