"""Time zero (restricted analysis), E-values from bootstrap CIs, the rare-outcome summary and
the grid per estimand (causal_hcc.sensitivity.restricted / evalue_records / summary /
grid_summary).

R reference: tests/reference/restricted.R -> restricted_bundled.csv (survival 3.5.3).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _fixtures import quiet
from causal_hcc.effects import adjust
from causal_hcc.errors import CohortError
from causal_hcc.sensitivity import effect_evalues, evalue_hr, run_sensitivity
from causal_hcc.sensitivity.grid_summary import grid_by_estimand, grid_by_estimand_lines
from causal_hcc.sensitivity.restricted import (binary_post_baseline, restricted_analyses,
                                               restricted_analysis)
from causal_hcc.sensitivity.summary import summary_evalues
from causal_hcc.studies.yang2025 import load_bundled
from causal_hcc.survival import fit_cox

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def cohort():
    return load_bundled()


@pytest.fixture(scope="module")
def booted(cohort):
    with quiet():
        return adjust(cohort, n_boot=100, aipw=False)


def test_restricted_analysis_equals_r(cohort):
    (res,) = restricted_analyses(cohort)
    assert res.variable == "intrahepatic_ccr" and res.level == 0
    r = pd.read_csv(REF / "restricted_bundled.csv").set_index("method")
    assert (res.n, res.n_treated, res.n_control, res.events) == (
        45, r.loc["restricted_crude", "n_treated"], r.loc["restricted_crude", "n_control"],
        r.loc["restricted_crude", "events"])                      # counts exact
    for e in res.estimates:
        row = r.loc[e.method]
        # Coefficients and model SEs rtol 1e-6 (coxph eps 1e-11 vs our Newton to 1e-9).
        np.testing.assert_allclose(np.log(e.hr), row.coef, rtol=1e-6)
        np.testing.assert_allclose(e.se_log_hr, row.se, rtol=1e-6)
        np.testing.assert_allclose([e.ci_lower, e.ci_upper], [row.ci_lower, row.ci_upper],
                                   rtol=1e-6)
    adjusted = next(e for e in res.estimates if e.method == "restricted_adjusted")
    # The number: HR 0.26 (0.07-0.93) among the cCR-negative patients.
    assert f"{adjusted.hr:.2f} ({adjusted.ci_lower:.2f}-{adjusted.ci_upper:.2f})" == \
        "0.26 (0.07-0.93)"
    assert adjusted.covariates == ("ecog", "vascular_invasion")


def test_restricted_crude_by_hand(cohort):
    # Independent recomputation: the Cox model on the stratum's rows, rtol 1e-12.
    keep = cohort.data["intrahepatic_ccr"].to_numpy() == 0
    fit = fit_cox(cohort.time[keep], cohort.event[keep],
                  cohort.treated[keep].astype(float)[:, None])
    res = restricted_analysis(cohort, "intrahepatic_ccr")
    assert res.estimates[0].hr == pytest.approx(float(fit.hr[0]), rel=1e-12)


def test_restricted_only_for_binary_post_baseline(cohort):
    assert binary_post_baseline(cohort) == ("intrahepatic_ccr",)
    assert binary_post_baseline(cohort, ("ecog",)) == ()
    plain = cohort.with_roles(post_baseline=())
    assert restricted_analyses(plain) == ()
    with pytest.raises(CohortError, match="no_such"):
        restricted_analysis(cohort, "no_such")


def test_sensitivity_reports_restriction_and_flags_time_varying(cohort):
    report = run_sensitivity(cohort)
    assert [a.variable for a in report.restricted] == ["intrahepatic_ccr"]
    text = report.summary()
    assert "Restricted to intrahepatic_ccr = 0" in text
    assert any("time-varying Cox model conditions on intrahepatic_ccr" in f
               for f in report.time_zero_flags)
    d = report.to_dict()
    assert d["time_zero"]["restricted"][0]["n"] == 45
    by = {x["estimand"]: x for x in d["specification_grid_summary"]["by_estimand"]}
    assert sum(x["n_specifications"] for x in by.values()) == len(d["specification_grid"])


def test_evalues_from_bootstrap_ci(booted):
    recs = {(r.method, r.estimand): r for r in effect_evalues(booted) if r.measure == "HR"}
    for e in booted.estimates:
        rec = recs[(e.method, e.estimand)]
        if e.boot_ci_lower is None or not e.estimable:
            assert rec.evalue_ci_boot is None
            continue
        ref = evalue_hr(e.hr, e.boot_ci_lower, e.boot_ci_upper, outcome_proportion=32 / 76)
        assert rec.evalue_ci_boot == ref.evalue_ci and rec.ci_limit_boot == ref.ci_limit
    assert recs[("iptw", "ATE")].evalue_ci_boot is not None


def test_summary_keeps_evalue_numbers_when_outcome_is_rare(booted):
    # The bug: with a rare outcome the sentence lost its numbers ("for the CI (rare
    # outcome)."). Both the common and the rare sentence carry point and CI E-values.
    class Report:
        primary = ("iptw", "ATE")
    for proportion, word in ((0.1, "rare"), (0.42, "common")):
        r = Report()
        r.evalues = effect_evalues(booted, outcome_proportion=proportion)
        lines = summary_evalues(r)
        assert len(lines) == 2
        crude = next(x for x in r.evalues if x.method == "crude")
        assert lines[0].startswith("E-value, crude Cox HR")
        assert f"{crude.evalue_point:.2f} for the point estimate" in lines[0]
        assert f"{crude.evalue_ci:.2f} for the Wald CI" in lines[0] and word in lines[0]
        assert "for the bootstrap CI" in lines[1]


def test_grid_by_estimand_counts_and_explains_non_estimable():
    rows = pd.DataFrame({
        "estimand": ["ATE", "ATE", "ATT", "ATT", "ATT"],
        "family": ["weighting", "weighting", "matching", "matching", "weighting"],
        "estimable": [True, False, True, False, False],
        "reason": ["", "Separation: x", "", "no events in the control arm. more",
                   "no events in the control arm"],
        "hr": [0.5, np.nan, 2.0, np.nan, np.nan],
        "ci_lower": [0.3, np.nan, 1.2, np.nan, np.nan],
        "ci_upper": [0.9, np.nan, 3.0, np.nan, np.nan]})
    by = {x["estimand"]: x for x in grid_by_estimand(rows)}
    assert by["ATE"]["n_not_estimable"] == 1 and by["ATE"]["not_estimable_reasons"] == {
        "Separation": 1}
    assert by["ATT"]["not_estimable_reasons"] == {"no events in the control arm": 2}
    assert by["ATT"]["n_ci_excludes_1"] == 1 and by["ATT"]["families"] == ["matching",
                                                                          "weighting"]
    assert "2 x no events in the control arm" in " ".join(grid_by_estimand_lines(rows))


def test_one_default_seed_for_report_and_sensitivity():
    import inspect

    from causal_hcc import config as config_module
    from causal_hcc.defaults import SEED
    from causal_hcc.studies.yang2025 import ned, what_ifs
    for fn in (adjust, run_sensitivity, ned.ned_null_correlation,
               what_ifs.vascular_invasion_sensitivity):
        assert inspect.signature(fn).parameters["seed"].default == SEED, fn.__name__
    cfg = config_module.Config() if hasattr(config_module, "Config") else None
    if cfg is not None:
        assert cfg.adjust.seed == cfg.sensitivity.seed == SEED
