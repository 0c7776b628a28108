"""Subgroup HRs and tests of interaction against R (tests/reference/sensitivity.R).

Fixtures: sensitivity_subgroups.csv and sensitivity_interaction.csv (R 4.2.2, survival
3.5.3, MatchIt 4.5.1 with distance = logit PS * 2^26). Tolerances: coefficients rtol 1e-6,
SEs (model-based and robust) rtol 1e-5, P values rtol 1e-5, counts exact.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _sensitivity_fixtures import hcc_cohort as validate_frame, load_bundled
from causal_hcc.errors import SmallSampleWarning
from causal_hcc.propensity import MIN_EVENTS_PER_VARIABLE, fit_propensity
from causal_hcc.sensitivity import interaction_tests, subgroup_effects

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def cohort():
    return load_bundled()


@pytest.fixture(scope="module")
def analysis(cohort):
    # MatchIt's greedy tie rule, as the R fixtures (MatchIt) computed. The matched samples
    # within each subgroup have 7 and 8 deaths: warned as too small.
    with pytest.warns(SmallSampleWarning, match="too small"):
        return subgroup_effects(cohort, ties="matchit")


def test_subgroup_hrs_equal_r(analysis):
    ref = pd.read_csv(REF / "sensitivity_subgroups.csv")
    for r in ref.itertuples():
        e = analysis.estimate(int(r.level), r.method)
        assert e.estimable, e.reason
        np.testing.assert_allclose(np.log(e.hr), r.coef, rtol=1e-6, err_msg=str(r))
        np.testing.assert_allclose(e.se_log_hr, r.se, rtol=1e-5, err_msg=str(r))
        assert e.n_treated + e.n_control == r.n and e.events == r.events


def test_interaction_equals_r(analysis):
    ref = pd.read_csv(REF / "sensitivity_interaction.csv")
    for t in analysis.interactions:
        rows = ref[ref.model == t.model].set_index("term")
        inter = rows.loc["local_therapy:oligometastatic"]
        np.testing.assert_allclose(t.coef, inter.coef, rtol=1e-6)
        np.testing.assert_allclose(t.se, inter.se, rtol=1e-5)
        np.testing.assert_allclose(t.p_value, inter.p, rtol=1e-5)
        np.testing.assert_allclose(np.log(t.hr_level0), rows.loc["local_therapy", "coef"],
                                   rtol=1e-6)
        assert t.n == inter.n and t.events == inter.events
    assert [t.variance for t in analysis.interactions] == ["model", "model", "robust"]


def test_interaction_identities(analysis):
    for t in analysis.interactions:
        # exp(b_int) is the ratio of the HRs the model implies (identity, rtol 1e-12).
        np.testing.assert_allclose(t.ratio_of_hrs, t.hr_level1 / t.hr_level0, rtol=1e-12)
        np.testing.assert_allclose(t.ratio_of_hrs, np.exp(t.coef), rtol=1e-12)
        assert t.ci_lower < t.ratio_of_hrs < t.ci_upper


def test_structure_and_notes(analysis, cohort):
    frame = analysis.to_frame()
    assert len(frame) == 6
    assert list(frame.subgroup.unique()) == ["oligometastatic = 1", "oligometastatic = 0"]
    # Arm sizes exactly as the paper's Section 2.3: 25/15 and 15/21.
    crude = frame[frame.method == "crude"].set_index("level")
    assert (crude.loc[1, "n_treated"], crude.loc[1, "n_control"]) == (25, 15)
    assert (crude.loc[0, "n_treated"], crude.loc[0, "n_control"]) == (15, 21)
    psm = frame[frame.method == "psm"]
    assert psm.note.str.contains("too small").all()
    assert not frame[frame.method == "crude"].note.str.contains("too small").any()
    # A within-subgroup PS model with fewer than 10 events per variable (min arm /
    # parameters; 15 / 3 = 5 here) gets a note, not an error; the rule, for any cohort:
    n_par = fit_propensity(cohort, cohort.roles.covariates).n_parameters
    for row in frame[frame.method == "iptw"].itertuples():
        epv = min(row.n_treated, row.n_control) / n_par
        assert (f"Events per variable {epv:.1f}" in row.note) == \
            (epv < MIN_EVENTS_PER_VARIABLE), row.note
    summary = analysis.summary()
    assert summary.startswith(cohort.label) and "Interaction" in summary
    assert len(analysis.interaction_frame()) == 3


def test_small_subgroup_warns(cohort):
    data = cohort.data
    # Keep 6 oligometastatic patients (3 per arm): fewer than 10 deaths and 5 per arm.
    oligo = data[data.oligometastatic == 1]
    keep = pd.concat([oligo[oligo.local_therapy == 1].head(3),
                      oligo[oligo.local_therapy == 0].head(3),
                      data[data.oligometastatic == 0]])
    small = validate_frame(keep.reset_index(drop=True), source="small subgroup")
    with pytest.warns(SmallSampleWarning) as record:
        result = subgroup_effects(small)
    messages = [str(w.message) for w in record]
    assert any(m.startswith("oligometastatic = 1: ") and "too small" in m for m in messages)
    assert any("oligometastatic = 1" in n and "too small" in n for n in result.notes)
    for e in result.estimates:
        if e.level == 1:
            assert "too small" in e.note


def test_one_arm_subgroup_not_estimable(cohort):
    data = cohort.data.copy()
    # Make every oligometastatic patient treated: that subgroup has one arm only.
    data.loc[data.local_therapy == 0, "oligometastatic"] = 0
    one_arm = validate_frame(data, source="one arm")
    with pytest.warns(SmallSampleWarning):
        result = subgroup_effects(one_arm)
    for method in ("crude", "iptw", "psm"):
        e = result.estimate(1, method)
        assert not e.estimable and "one arm" in e.reason and np.isnan(e.hr)
    weighted = next(t for t in result.interactions if t.model == "iptw_ate")
    assert not weighted.estimable and "only one arm" in weighted.reason


def test_bad_variable(cohort):
    with pytest.raises(ValueError, match="'age'"):
        subgroup_effects(cohort, variable="age")
    with pytest.raises(ValueError, match="not in the cohort"):
        interaction_tests(cohort, variable="nope")
