"""causal_hcc.identification: positivity rules, verdicts, leave-one-out influence, primary.

Tolerances: verdicts, counts and named patients exact; leave-one-out HRs against a direct
fit_cox refit rtol 1e-6 (both Newton-Raphson to ~1e-10; fit_cox itself agrees with R
coxph, tests/test_cox.py); the IPTW ATC row against R (tests/reference/estimands.R):
coef and CI rtol 1e-6, robust SE rtol 1e-4 (sandwich at the converged beta).
"""

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from _fixtures import REF, quiet

from causal_hcc.config import load_config
from causal_hcc.effects import adjust
from causal_hcc.effects.estimate import EffectEstimate
from causal_hcc.errors import CohortError, PositivityWarning, TimeZeroWarning
from causal_hcc.identification import (
    CROSSING_MIN_RATIO,
    INFLUENCE_RATIO,
    SUPPORT_MIN_LOGIT,
    Positivity,
    choose_primary,
    identify,
    leave_one_out,
    positivity,
)
from causal_hcc.studies.yang2025 import load_bundled
from causal_hcc.survival.cox import fit_cox


@pytest.fixture(scope="module")
def bundled():
    cohort = load_bundled()
    with quiet():
        result = adjust(cohort, n_boot=0, aipw=False, order_spread_k=0)
    return cohort, result


def _row(result, method, estimand):
    return next(e for e in result.estimates if (e.method, e.estimand) == (method, estimand))


# ----------------------------------------------------------------------------- bundled
def test_bundled_verdicts(bundled):
    """The required verdicts on the reconstructed cohort: IPTW ATE and ATT not identified
    (15 treated in covariate patterns without a control), ATC and ATO identified."""
    _, result = bundled
    expected = {"ATE": False, "ATT": False, "ATC": True, "ATO": True}
    for estimand, verdict in expected.items():
        e = _row(result, "iptw", estimand)
        assert e.identified is verdict, (estimand, e.identification_note)
        assert e.identification_note
    ate = _row(result, "iptw", "ATE")
    assert ate.identification_note.startswith("NOT identified: 15 of 76 patients")
    assert "ecog=1, intrahepatic_ccr=1, vascular_invasion=0: 14 treated, 0 control" \
        in ate.identification_note
    assert "without P012" in ate.identification_note        # the patient named in issue 11
    assert _row(result, "iptw", "ATT").identification_note.startswith(
        "NOT identified: 15 of 40 patients")
    for method in ("crude", "multivariable"):
        e = _row(result, method, None)
        assert e.identified is None and "Not a causal estimand" in e.identification_note


def test_bundled_records_carry_the_verdict(bundled):
    _, result = bundled
    frame = result.to_frame()
    assert {"identified", "identification_note"} <= set(frame.columns)
    assert frame["identification_note"].str.len().gt(0).all()
    assert len(result.identification) == len(result.estimates)


def test_bundled_primary_is_the_first_identified(bundled):
    _, result = bundled
    assert result.primary == ("iptw", "ATC")
    assert "ATE not identified; ATT not identified" in result.primary_reason
    assert result.primary_estimate().hr == pytest.approx(0.50289830115389378, rel=1e-6)
    assert result.settings["primary"] == "auto"


def test_configured_primary_not_identified_warns():
    cohort = load_bundled()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = adjust(cohort, n_boot=0, aipw=False, order_spread_k=0, primary="ATE")
    messages = [str(w.message) for w in caught if issubclass(w.category, PositivityWarning)]
    assert any("configured primary estimate iptw ATE is not identified" in m
               for m in messages)
    assert any(m.startswith("Not identified (part of the target population") and
               "iptw ATE, iptw ATT" in m for m in messages)
    assert result.primary == ("iptw", "ATE")
    assert "NOT identified" in result.primary_reason


def test_post_baseline_adjustment_warns():
    """intrahepatic cCR is post-baseline in the study profile: a TimeZeroWarning."""
    cohort = load_bundled()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adjust(cohort, n_boot=0, aipw=False, order_spread_k=0)
    zero = [w for w in caught if issubclass(w.category, TimeZeroWarning)]
    assert len(zero) == 1 and "intrahepatic_ccr" in str(zero[0].message)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adjust(cohort, ["ecog", "vascular_invasion"], n_boot=0, aipw=False,
               order_spread_k=0)
    assert not [w for w in caught if issubclass(w.category, TimeZeroWarning)]


def test_bundled_iptw_atc_row_equals_r(bundled):
    """IPTW ATC (weights (1-e)/e, 1), robust SE: R coxph(weights = w, robust = TRUE)."""
    _, result = bundled
    r = pd.read_csv(REF / "estimands" / "bundled_cox.csv")
    r = r[(r.method == "iptw") & (r.estimand == "ATC")].iloc[0]
    e = _row(result, "iptw", "ATC")
    np.testing.assert_allclose(np.log(e.hr), r.coef, rtol=1e-6)            # coef 1e-6
    np.testing.assert_allclose(e.se_log_hr, r.se, rtol=1e-4)               # robust 1e-4
    np.testing.assert_allclose([e.ci_lower, e.ci_upper], [r.lower, r.upper], rtol=1e-4)
    assert (e.n_treated, e.n_control, e.events) == (r.n_treated, r.n_control, r.nevent)
    np.testing.assert_allclose([e.ess_treated, e.ess_control],
                               [r.ess_treated, r.ess_control], rtol=1e-6)


# ----------------------------------------------------------------------------- rules
def _hand_positivity():
    """Ten patients: treated in cells A, A, B, B, C; controls in A, A, B, B, B.
    Cell C has no control: one treated patient (T5) lacks a counterpart."""
    cells = np.array(["A", "A", "B", "B", "C", "A", "A", "B", "B", "B"], dtype=object)
    treated = np.array([1] * 5 + [0] * 5)
    ids = np.array([f"T{i}" for i in range(1, 6)] + [f"C{i}" for i in range(1, 6)],
                   dtype=object)
    patterns = pd.DataFrame({"pattern": ["A", "B", "C"], "n_treated": [2, 2, 1],
                             "n_control": [2, 3, 0], "one_arm": [False, False, True]})
    return Positivity("covariate patterns", ids, treated, np.zeros(10), cells,
                      cells == "C", patterns, {}, 0.0)


def test_pattern_rule_by_hand():
    pos = _hand_positivity()
    expected = {"ATE": (False, 10, 1), "ATT": (False, 5, 1), "ATC": (True, 5, 0),
                "ATO": (True, 10, 1)}
    for estimand, (verdict, n_target, k) in expected.items():
        v = identify("iptw", estimand, pos)
        assert (v.identified, v.n_target, v.n_without_counterpart) == (verdict, n_target, k)
    assert identify("iptw", "ATT", pos).without_counterpart_ids == ("T5",)
    assert "C: 1 treated, 0 control" in identify("iptw", "ATE", pos).note
    # A matched sample that leaves T5 out is identified for its own population.
    w = np.array([1, 1, 1, 1, 0, 1, 1, 1, 1, 0], float)
    v = identify("psm", "ATT among matched treated", pos, w)
    assert v.identified is True and v.n_target == 4
    assert identify("multivariable", None, pos).identified is None
    assert identify("weighted_cox_adjusted", None, pos).identified is None


def test_pattern_rule_from_the_propensity_model(bundled):
    cohort, result = bundled
    pos = positivity(cohort, result.propensity)
    assert pos.rule == "covariate patterns"
    assert pos.counts() == {"treated": 15, "control": 0}
    counts = result.propensity.pattern_counts
    assert pos.no_counterpart.sum() == counts.loc[counts.one_arm, "n_treated"].sum()


def test_support_rule_by_hand():
    """Continuous PS: logit PS of treated 0, 1, 5 and controls -0.5, 0, 1. The tolerance
    is max(0.2 SD, log 2) = log 2 here (SD 2.0); the treated at 5 is outside (by 4), the
    control at -0.5 is not (by 0.5 < 0.69)."""
    lp = np.array([0.0, 1.0, 5.0, -0.5, 0.0, 1.0])
    model = SimpleNamespace(treated=np.array([1, 1, 1, 0, 0, 0]), logit_ps=lp,
                            patient_id=np.array(list("abcdef"), dtype=object),
                            pattern_counts=None, covariates=("x",))
    pos = positivity(None, model)
    assert pos.rule == "PS support"
    assert 0.2 * np.std(lp, ddof=1) < SUPPORT_MIN_LOGIT
    assert pos.tolerance == pytest.approx(SUPPORT_MIN_LOGIT)
    assert pos.no_counterpart.tolist() == [False, False, True, False, False, False]
    assert identify("iptw", "ATC", pos).identified is True
    assert identify("iptw", "ATT", pos).identified is False
    # Just inside the tolerance counts as a counterpart.
    lp2 = lp.copy()
    lp2[2] = 1.0 + 0.99 * SUPPORT_MIN_LOGIT
    model2 = SimpleNamespace(**{**vars(model), "logit_ps": lp2})
    assert not positivity(None, model2).no_counterpart.any()


# ----------------------------------------------------------------------------- influence
def test_leave_one_out_equals_direct_refits(bundled):
    """Each exact leave-one-out HR is fit_cox without that patient, weights fixed
    (rtol 1e-6); the dfbeta path is log HR minus R's dfbeta residual."""
    cohort, result = bundled
    w = result.weights["ATE"].weights
    x = cohort.treated.astype(float)[:, None]
    inf = leave_one_out(cohort.time, cohort.event, x, w, patient_id=cohort.ids)
    for i in (0, 11, 40):
        keep = np.arange(cohort.n) != i
        ref = fit_cox(cohort.time[keep], cohort.event[keep], x[keep], weights=w[keep])
        np.testing.assert_allclose(np.log(inf.hr_without[i]), ref.coef[0], rtol=1e-6)
    # Issue 11: dropping P012 takes the IPTW ATE HR 1.72 below 1.
    assert inf.crossing_ids[0] == "P012"
    assert inf.hr == pytest.approx(1.7156820, rel=1e-6)
    ratio = inf.hr_without / inf.hr
    crossing = (np.sign(np.log(inf.hr_without)) != np.sign(np.log(inf.hr))) \
        & (np.abs(np.log(ratio)) > np.log(CROSSING_MIN_RATIO))
    assert set(inf.crossing_ids) == set(cohort.ids[crossing])
    large = ~crossing & (np.abs(np.log(ratio)) > np.log(INFLUENCE_RATIO))
    assert set(inf.large_ids) == set(cohort.ids[large])
    approx = leave_one_out(cohort.time, cohort.event, x, w, exact_max=0)
    full = fit_cox(cohort.time, cohort.event, x, weights=w)
    np.testing.assert_allclose(np.log(approx.hr_without),
                               full.coef[0] - full.dfbeta()[:, 0], rtol=1e-12)
    assert approx.method.startswith("dfbeta")


def test_leave_one_out_is_computed_once_per_inputs(bundled, monkeypatch):
    """The same influence asked for again (adjust's figure preview, then its full run) is
    the memo's, identical; any changed input (a weight, a strata label, the threshold, the
    fit it starts from) is computed anew."""
    import causal_hcc.identification as ident
    cohort, result = bundled
    w = result.weights["ATE"].weights
    x = cohort.treated.astype(float)[:, None]
    monkeypatch.setattr(ident, "_LOO_MEMO", type(ident._LOO_MEMO)())
    calls = []
    inner = ident._leave_one_out
    monkeypatch.setattr(ident, "_leave_one_out", lambda *a: calls.append(1) or inner(*a))
    first = leave_one_out(cohort.time, cohort.event, x, w, patient_id=cohort.ids)
    again = leave_one_out(cohort.time.copy(), cohort.event, x, w.copy(),
                          patient_id=cohort.ids)
    assert again is first and len(calls) == 1
    other_w = w.copy()
    other_w[5] *= 1.0000001
    changed = [leave_one_out(cohort.time, cohort.event, x, other_w, patient_id=cohort.ids),
               leave_one_out(cohort.time, cohort.event, x, w, patient_id=cohort.ids,
                             ratio=1.5),
               leave_one_out(cohort.time, cohort.event, x, w, patient_id=cohort.ids,
                             strata=np.repeat(["a", "b"], [40, 36]))]
    assert len(calls) == 4 and all(c is not first for c in changed)
    assert changed[1].large_ids != first.large_ids or changed[1].ratio == 1.5
    monkeypatch.setattr(ident, "LOO_MEMO_SIZE", 2)
    for k in range(3):
        leave_one_out(cohort.time, cohort.event, x, w * (1 + k), patient_id=cohort.ids)
    assert len(ident._LOO_MEMO) == 2
    # dfbeta (above exact_max) is one pass, cheaper than hashing the inputs: not kept.
    ident._LOO_MEMO.clear()
    one_step = leave_one_out(cohort.time, cohort.event, x, w, exact_max=10)
    assert one_step.method.startswith("dfbeta") and not ident._LOO_MEMO


def test_leave_one_out_near_one_names_nobody_for_tiny_moves():
    """An HR of ~1 whose leave-one-out values wobble around 1 by < 5% names nobody."""
    rng = np.random.default_rng(1)
    n = 60
    time = rng.exponential(10, n)
    event = np.ones(n)
    tx = np.tile([1.0, 0.0], n // 2)
    inf = leave_one_out(time, event, tx[:, None], np.ones(n))
    moves = np.abs(np.log(inf.hr_without / inf.hr))
    assert set(inf.crossing_ids) == {i for i, m, h in zip(inf.patient_id, moves,
                                                          inf.hr_without)
                                     if m > np.log(CROSSING_MIN_RATIO)
                                     and np.sign(np.log(h)) != np.sign(np.log(inf.hr))}


# ----------------------------------------------------------------------------- primary
def _estimate(estimand, identified, estimable=True):
    return EffectEstimate("iptw", estimand, "", 1.0, 0.5, 2.0, 0.5, 0.1, "robust", 1, 1, 1,
                          estimable=estimable, identified=identified)


def test_choose_primary_order_and_reasons():
    rows = [_estimate("ATE", False), _estimate("ATT", True), _estimate("ATC", True),
            _estimate("ATO", True)]
    assert choose_primary(rows)[0] == ("iptw", "ATT")
    assert "ATE not identified" in choose_primary(rows)[1]
    rows[1] = _estimate("ATT", True, estimable=False)
    assert choose_primary(rows)[0] == ("iptw", "ATC")
    assert "ATT not estimable" in choose_primary(rows)[1]
    assert choose_primary(rows, "ATE") == (("iptw", "ATE"), "IPTW ATE as configured; NOT "
                                           "identified (labelled as such; see its "
                                           "identification note).")
    none = [_estimate(e, False) for e in ("ATE", "ATT", "ATC")]
    assert choose_primary(none)[0] is None
    with pytest.raises(ValueError, match="primary"):
        choose_primary(rows, "ATX")


def test_config_primary(tmp_path):
    assert load_config().adjust.primary == "auto"
    good = tmp_path / "good.toml"
    good.write_text('[adjust]\nprimary = "ATC"\n')
    assert load_config(good).adjust.primary == "ATC"
    bad = tmp_path / "bad.toml"
    bad.write_text('[adjust]\nprimary = "ATX"\n')
    with pytest.raises(CohortError, match="primary"):
        load_config(bad)
