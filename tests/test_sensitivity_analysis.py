"""The sensitivity report: E-values of an effects report, run_sensitivity, its figures.

E-values are checked against the closed-form formulas (VanderWeele & Ding 2017; common
outcome conversion, VanderWeele 2020) to rtol 1e-12; HRs reused from the effects report
exactly; the landmark IPTW hook against effects.adjust on the landmark population (same
estimator through a different code path, rtol 1e-10).
"""

import json
import math
import re
import time

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from _fixtures import quiet
from causal_hcc.reporting import sensitivity_plots as plots
from _sensitivity_fixtures import hcc_cohort as validate_frame, load_bundled
from causal_hcc.data import Cohort
from causal_hcc.effects import adjust
from causal_hcc.studies import yang2025
from causal_hcc.sensitivity import (effect_evalues, landmark_dataset, landmark_iptw_hook,
                                    run_sensitivity)

KEYS = {"evalues", "specification_grid", "landmark", "time_varying", "tipping_point",
        "benchmarks", "subgroups", "ned_null", "label"}


@pytest.fixture(scope="module")
def cohort():
    return load_bundled()


@pytest.fixture(scope="module")
def effects(cohort):
    with quiet():
        return adjust(cohort, n_boot=0)


@pytest.fixture(scope="module")
def timed_report(cohort):
    calls = []
    start = time.perf_counter()
    report = run_sensitivity(cohort, progress=lambda d, t: calls.append((d, t)),
                             **yang2025.sensitivity_extras(cohort))
    return report, time.perf_counter() - start, calls


@pytest.fixture(scope="module")
def report(timed_report):
    return timed_report[0]


def _rr_common(hr):
    return (1 - 0.5 ** math.sqrt(hr)) / (1 - 0.5 ** math.sqrt(1 / hr))


def _evalue(rr):
    x = 1 / rr if rr < 1 else rr
    return x + math.sqrt(x * (x - 1))


def test_evalues_of_every_hr(effects):
    records = effect_evalues(effects)
    hrs = [r for r in records if r.measure == "HR"]
    assert [(r.method, r.estimand) for r in hrs] == [(e.method, e.estimand)
                                                    for e in effects.estimates]
    for r, e in zip(hrs, effects.estimates):
        assert r.hr == e.hr and r.ci_lower == e.ci_lower and r.ci_upper == e.ci_upper
        assert r.outcome_conversion == "common" and "42.1%" in r.conversion_reason
        assert "32 of 76" in r.conversion_reason
        # Closed form, rtol 1e-12.
        assert r.evalue_point == pytest.approx(_evalue(_rr_common(e.hr)), rel=1e-12)
        if e.ci_lower <= 1 <= e.ci_upper:
            assert r.evalue_ci == 1.0
        else:
            limit = e.ci_upper if e.hr < 1 else e.ci_lower
            assert r.evalue_ci == pytest.approx(_evalue(_rr_common(limit)), rel=1e-12)
    crude = hrs[0]
    assert crude.method == "crude" and crude.evalue_ci > 1    # crude CI excludes 1


def test_evalues_rare_outcome_uses_hr(effects):
    rec = effect_evalues(effects, outcome_proportion=0.1)[0]
    assert rec.outcome_conversion == "rare" and rec.rr == rec.hr
    assert rec.evalue_point == pytest.approx(_evalue(rec.hr), rel=1e-12)


def test_evalues_of_curves(effects):
    records = effect_evalues(effects)
    curves = [r for r in records if r.measure != "HR"]
    assert len(curves) == sum(len(c.table) for c in effects.curves)
    rmst = [r for r in curves if r.measure == "RMST difference"]
    assert rmst and all(not r.estimable and "No published conversion" in r.note for r in rmst)
    table = effects.curves[0].table.set_index(["quantity", "months"])
    lm12 = next(r for r in curves if r.method == effects.curves[0].method
                and r.measure == "landmark risk difference" and r.months == 12)
    treated, control = table.loc[("survival", 12.0), ["treated", "control"]]
    # Risk ratio of death by 12 months, (1 - S1) / (1 - S0), rtol 1e-12.
    assert lm12.rr == pytest.approx((1 - treated) / (1 - control), rel=1e-12)
    assert lm12.evalue_point == pytest.approx(_evalue(lm12.rr), rel=1e-12)


def test_landmark_hook_equals_adjust_on_landmark_population(cohort):
    sub = landmark_dataset(cohort, 3).cohort
    hook = landmark_iptw_hook(("ecog", "intrahepatic_ccr", "vascular_invasion"))
    hr, lo, hi, p = hook(sub)
    with quiet():
        ate = next(e for e in adjust(sub, n_boot=0).estimates
                   if e.method == "iptw" and e.estimand == "ATE")
    np.testing.assert_allclose([hr, lo, hi, p], [ate.hr, ate.ci_lower, ate.ci_upper,
                                                 ate.p_value], rtol=1e-10)
    assert "landmark survivors" in hook.__name__


def test_report_keys_and_json(report, cohort):
    d = report.to_dict()
    assert KEYS <= set(d)
    text = json.dumps(d, allow_nan=False)        # strict JSON: NaN written as null
    assert json.loads(text)["label"] == cohort.label
    rec = d["evalues"][0]
    assert {"method", "estimand", "hr", "ci_lower", "ci_upper", "evalue_point", "evalue_ci",
            "outcome_conversion"} <= set(rec)
    # One E-value record per reported HR (unique method/estimand); curves apart.
    n_hr = len(report.effects.estimates)
    assert len(d["evalues"]) == n_hr and all(r["measure"] == "HR" for r in d["evalues"])
    assert [(r["method"], r["estimand"]) for r in d["evalues"]] == [
        (e.method, e.estimand) for e in report.effects.estimates]
    assert {"weighted_cox_adjusted"} <= {r["method"] for r in d["evalues"]}
    assert "doubly_robust" not in {r["method"] for r in d["evalues"]}
    assert d["evalues_curves"] and all(r["measure"] != "HR" for r in d["evalues_curves"])
    assert len(d["specification_grid"]) == 1000
    # auto: the first identified estimand (ATE and ATT are not identified on this cohort).
    assert d["primary"]["method"] == "iptw" and d["primary"]["estimand"] == "ATC"
    assert set(d["tipping_point"]) == {"primary", "crude"} == set(d["benchmarks"])
    assert d["unavailable"] == {}
    assert d["settings"]["reconstructed"] is True


def test_report_contents(report, effects):
    primary = report.tipping_point("primary")
    assert tuple(report.primary) == tuple(effects.primary)
    est = next(e for e in effects.estimates
               if (e.method, e.estimand) == tuple(effects.primary))
    assert (primary.hr, primary.ci_lower, primary.ci_upper) == (est.hr, est.ci_lower,
                                                                est.ci_upper)
    crude = report.tipping_point("crude")
    assert crude.benchmarks is not None and crude.contour_ci.table["feasible"].any()
    # The primary CI includes 1: the CI contour is empty and the point contour is used.
    assert not primary.contour_ci.table["feasible"].any()
    assert primary.contour is primary.contour_point
    rows = report.landmark.to_frame()
    assert set(rows.landmark_months) == {1.0, 3.0, 6.0} and len(rows) == 9
    assert rows.model.str.contains("landmark survivors").sum() == 3
    assert len(report.time_varying.rows) == 2
    assert len(report.subgroups.estimates) == 6
    assert report.extra("ned_null").n_sim == 2000
    assert report.extra("vascular_invasion") is not None
    # Warnings raised inside the stages became notes (e.g. the extreme ATE weights).
    assert any("Extreme propensity-score weights" in n for n in report.notes)


def test_summary_generated_from_numbers(report):
    text = report.summary()
    assert text.startswith(report.label)
    assert report.grid.headline() in text
    crude = report.estimate("crude")
    assert f"HR {crude.hr:.2f} (95% CI {crude.ci_lower:.2f}-{crude.ci_upper:.2f}" in text
    # The sentence follows the primary estimate, whatever the cohort (no fixed HR here).
    primary = report.estimate(*report.primary)  # the primary adjustment (first identified)
    verb = "excludes" if primary.ci_upper < 1 or primary.ci_lower > 1 else "includes"
    assert (f"primary adjustment the HR is {primary.hr:.2f} and its 95% CI {verb} 1"
            in text)
    assert "reconstructed pseudo-cohort" in text
    sentences = report.plain_sentences()
    assert sentences and all(s in text for s in sentences)
    assert report.tipping_contour is report.tipping_point("primary").contour
    assert report.benchmarks is report.tipping_point("primary").benchmarks


def test_run_time_and_progress(timed_report):
    _, elapsed, calls = timed_report
    assert elapsed < 60     # the budget for the full default run (2 cores)
    done = [d for d, _ in calls]
    # 1000 grid rows + 6 stages (restricted analysis included) + 1 subgroup variable +
    # 2 study extras.
    assert done == sorted(done) and calls[-1][0] == calls[-1][1] == 1009


def test_parallel_report_equals_serial(report, cohort, effects):
    other = run_sensitivity(cohort, effects, jobs=2, **yang2025.sensitivity_extras(cohort))
    a, b = report.to_dict(), other.to_dict()
    for d in (a, b):
        d["settings"].pop("jobs")
        d["notes"] = [n for n in d["notes"] if not n.startswith("effects:")]
    assert a == b


def test_real_data_without_optional_columns(cohort, effects):
    frame = cohort.data.drop(columns=["months_to_local_therapy", "ned_achieved",
                                      "ned_cumulative_months"])
    real = validate_frame(frame, source="stand-in for patient-level data")
    with quiet():
        real_effects = adjust(real, n_boot=0)
    report = run_sensitivity(real, real_effects,
                             **yang2025.sensitivity_extras(real, n_sim_ned=10))
    assert set(report.unavailable) == {"vascular_invasion", "landmark", "time_varying",
                                       "ned_null"}
    assert "treatment_start" in report.unavailable["landmark"]
    assert report.label.startswith("Patient-level data")
    assert report.summary().startswith(report.label)
    json.dumps(report.to_dict(), allow_nan=False)


def test_covariates_must_agree(cohort, effects):
    with pytest.raises(ValueError, match="differ"):
        run_sensitivity(cohort, effects, covariates=("ecog",))


def test_figures(report):
    assert isinstance(plots.plot_specification_curve(report.grid, provenance=report.label),
                      Figure)
    fig = Figure()
    assert plots.plot_specification_curve(report.grid, ax=fig.add_subplot()) is fig
    crude = report.tipping_point("crude")
    primary = report.tipping_point("primary")
    for obj, bench in ((crude.contour_ci, crude.benchmarks), (primary.contour_ci, None),
                       (primary.contour_point, primary.benchmarks), (crude.grid, None)):
        assert isinstance(plots.plot_tipping_point(obj, bench, provenance="x"), Figure)
    assert isinstance(plots.plot_subgroups(report.subgroups), Figure)


def test_veteran_with_its_own_columns():
    # R's survival::veteran, its own column names: the engine names no study column, the
    # grid uses only veteran's covariates, immortal time is unavailable (no treatment start).
    df = pd.read_csv("tests/reference/datasets/veteran.csv")
    covs = ["celltype", "karno", "age", "prior"]
    with quiet():
        cohort = Cohort.from_frame(df, time="time", event="status", treatment="trt",
                                   treated_value=2, covariates=covs, time_unit="days")
        effects = adjust(cohort, n_boot=0)
    report = run_sensitivity(cohort, effects)
    grid = report.grid.to_frame()
    assert grid.estimable.any()
    used = set()
    for text in grid.covariates:
        used |= set(re.findall(r"[A-Za-z_]+", text)) - {"ns", "df"}
    assert used == set(covs)
    assert set(report.grid.covariate_sets) == {
        "default", "without celltype", "without karno", "without age", "without prior",
        "default, numeric as splines"}
    assert "karno" in report.grid.settings["splines"]["default, numeric as splines"]
    assert {"landmark", "time_varying", "subgroups"} <= set(report.unavailable)
    assert len([e for e in report.evalues if e.measure == "HR"]) == len(effects.estimates)
    text = report.summary()
    for word in ("local therapy", "ecog", "oligometastatic", "vascular", "months"):
        assert word not in text.lower()
    assert "Denominator:" in text
    json.dumps(report.to_dict(), allow_nan=False)


def test_small_cohorts_run_on_one_blas_thread():
    """sensitivity/_memo.small_blas: one BLAS thread up to SMALL_BLAS_N patients, as many
    as before beyond (the results do not depend on it: tests/test_speed_identity.py)."""
    from threadpoolctl import threadpool_info

    from causal_hcc.sensitivity._memo import SMALL_BLAS_N, small_blas

    def blas_threads():
        return {i["filepath"]: i["num_threads"] for i in threadpool_info()
                if i["user_api"] == "blas"}
    before = blas_threads()
    with small_blas(76):
        assert set(blas_threads().values()) <= {1}
    assert blas_threads() == before
    with small_blas(SMALL_BLAS_N + 1):
        assert blas_threads() == before
