"""Specification grid and vascular-invasion what-if: R fixtures, hand cases, invariants.

R fixtures: tests/reference/sensitivity.R -> sensitivity_grid.csv (R 4.2.2, survival
3.5.3, MatchIt 4.5.1 with distance = logit PS * 2^26; tests/reference/sensitivity_versions.txt).
Tolerances: log HR rtol 1e-6 (coefficients, DESIGN.md), robust SEs rtol 1e-5 (both fits
converged to ~1e-10), counts exact; identities within the package rtol 1e-10.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _fixtures import quiet
from causal_hcc.balance import balance_table
from _sensitivity_fixtures import hcc_cohort as validate_frame, load_bundled
from causal_hcc.effects import adjust
from causal_hcc.propensity import fit_propensity
from causal_hcc.effects.spec import Specification, estimate
from causal_hcc.sensitivity import (build_specifications, default_covariate_sets,
                                    specification_grid)
from causal_hcc.sensitivity.grid import COLUMNS, evaluate_set
from causal_hcc.studies.yang2025.what_ifs import (covariate_sets,
                                                  vascular_invasion_sensitivity)
from causal_hcc.weighting import compute_weights

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def cohort():
    return load_bundled()


@pytest.fixture(scope="module")
def grid(cohort):
    return specification_grid(cohort, covariate_sets=covariate_sets(cohort))


@pytest.fixture(scope="module")
def grid_matchit(cohort):
    """The grid with MatchIt's greedy tie rule: what the R fixtures (MatchIt) computed."""
    return specification_grid(cohort, covariate_sets=covariate_sets(cohort), ties="matchit")


@pytest.fixture(scope="module")
def effects(cohort):
    with quiet():
        return adjust(cohort, n_boot=0)


def _range(text):
    return "none" if text == "none" else "-".join(f"{float(x):g}" for x in text.split("-"))


def _find(rows, r):
    if r.family == "weighting":
        sel = ((rows.family == "weighting") & (rows.covariate_set == r.covariate_set)
               & (rows.weights == r.estimand)
               & (rows.truncation == _range(r.truncate)) & (rows.trimming == _range(r.trim)))
        if r.estimand != "ATO":
            sel &= rows.stabilized == ("yes" if r.stabilized else "no")
    else:
        caliper = "none" if pd.isna(r.caliper_sd) else f"{r.caliper_sd:g} SD"
        sel = ((rows.family == "matching") & (rows.covariate_set == r.covariate_set)
               & (rows.caliper == caliper) & (rows.ratio == "1:1")
               & (rows.replacement == ("with" if r.replace else "without")))
        if not r.replace:
            sel &= rows.order == r.order
    hit = rows[sel]
    assert len(hit) == 1, (r, len(hit))
    return hit.iloc[0]


def test_grid_rows_equal_r(grid_matchit):
    ref = pd.read_csv(REF / "sensitivity_grid.csv")
    rows = grid_matchit.to_frame()
    for r in ref.itertuples():
        ours = _find(rows, r)
        assert ours.estimable, ours.reason
        # log HR rtol 1e-6; robust / cluster-robust SE rtol 1e-5; counts exact.
        np.testing.assert_allclose(np.log(ours.hr), r.coef, rtol=1e-6, err_msg=str(r))
        np.testing.assert_allclose(ours.se_log_hr, r.se, rtol=1e-5, err_msg=str(r))
        assert ours.n_used == r.n and ours.events == r.events


def test_default_rows_reproduce_adjust(grid, effects):
    rows = grid.to_frame()
    default = rows[rows.is_default]
    assert len(default) == 2
    psm = next(e for e in effects.estimates if e.method == "psm")
    ate = next(e for e in effects.estimates if e.method == "iptw" and e.estimand == "ATE")
    smd = effects.max_abs_smd()
    for family, est, key in (("matching", psm, "psm"), ("weighting", ate, "iptw_ATE")):
        row = default[default.family == family].iloc[0]
        # Same code path as effects.adjust: identical to rounding (rtol 1e-12).
        for col in ("hr", "ci_lower", "ci_upper", "p_value", "se_log_hr"):
            np.testing.assert_allclose(row[col], getattr(est, col), rtol=1e-12)
        assert (row.n_treated, row.n_control, row.events) == (est.n_treated, est.n_control,
                                                              est.events)
        # Max |SMD| over the PS covariates equals balance.py's (atol: exact zeros).
        np.testing.assert_allclose(row.max_abs_smd, smd[key]["ps_covariates"], rtol=1e-10,
                                   atol=1e-12)


def test_estimate_equals_adjust_and_the_generic_grid(cohort, effects):
    # One estimation path: estimate(cohort, spec), the generic grid's default rows and
    # adjust's PSM / IPTW rows are the same computation (HR rtol 1e-12).
    psm = next(e for e in effects.estimates if e.method == "psm")
    covs = cohort.roles.covariates
    for spec, est in ((Specification.psm(covs), psm),
                      *((Specification.iptw(covs, estimand=e.estimand,
                                            stabilized=e.estimand == "ATE"), e)
                        for e in effects.estimates if e.method == "iptw")):
        res = estimate(cohort, spec)
        for col in ("hr", "ci_lower", "ci_upper", "p_value", "se_log_hr"):
            np.testing.assert_allclose(getattr(res.estimate, col), getattr(est, col),
                                       rtol=1e-12)
        assert res.estimate.comparison == est.comparison
    generic = specification_grid(cohort, calipers=(0.2,), ratios=(1,), replace=(False,),
                                 orders=("largest",), weightings=(("ATE", True),),
                                 truncations=(None,), trims=(None,))
    default = generic.to_frame()
    default = default[default.is_default]
    ate = next(e for e in effects.estimates if e.method == "iptw" and e.estimand == "ATE")
    for family, est in (("matching", psm), ("weighting", ate)):
        np.testing.assert_allclose(default[default.family == family].hr.iloc[0], est.hr,
                                   rtol=1e-12)


def test_max_smd_equals_balance_table_for_trimmed_truncated_weights(cohort, grid):
    with quiet():
        ps = fit_propensity(cohort)
        w = compute_weights(cohort, ps, estimand="ATT", stabilized=False, trim=(0.1, 0.9),
                            truncate=(5, 95))
        table = balance_table(cohort, w)
    expected = np.nanmax(np.abs(table.rows.loc[table.rows.ps_covariate, "smd_after"]))
    rows = grid.to_frame()
    row = rows[(rows.covariate_set == "default") & (rows.weights == "ATT")
               & (rows.stabilized == "no") & (rows.truncation == "5-95")
               & (rows.trimming == "0.1-0.9")].iloc[0]
    np.testing.assert_allclose(row.max_abs_smd, expected, rtol=1e-10)
    assert row.smd_denominator == "treated"
    assert "trimmed" in row.note


def test_hand_case_weights_three_and_four_thirds():
    # One binary covariate: the PS is saturated, 3/4 where x = 1 and 1/3 where x = 0.
    # ATE weights (unstabilised): treated 4/3 (x=1) and 3 (x=0); controls 4 and 3/2.
    frame = pd.DataFrame({
        "patient_id": [f"H{i}" for i in range(10)],
        "local_therapy": [1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
        "os_months": [5.0, 8.0, 12.0, 3.0, 20.0, 4.0, 6.0, 9.0, 2.0, 15.0],
        "death": [1, 0, 1, 1, 0, 1, 1, 0, 1, 1],
        "ecog": [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]})
    spec = Specification.iptw(["ecog"], estimand="ATE", stabilized=False, name="hand")
    row = evaluate_set(validate_frame(frame, covariates=["ecog"]), [spec])[0]
    assert row["estimable"], row["reason"]
    # ESS = (sum w)^2 / sum w^2: treated (4 + 6)^2 / (3 * 16/9 + 2 * 9) = 30/7;
    # control (4 + 6)^2 / (16 + 4 * 9/4) = 4. rtol 1e-10 (PS from IRLS).
    np.testing.assert_allclose(row["ess_treated"], 30 / 7, rtol=1e-10)
    np.testing.assert_allclose(row["ess_control"], 4.0, rtol=1e-10)
    # A saturated PS balances its covariate exactly (abs 1e-9: IRLS converged to 1e-10).
    assert row["max_abs_smd"] == pytest.approx(0.0, abs=1e-9)
    assert row["n_used"] == 10 and row["events"] == 7


def test_grid_size_and_design(grid):
    rows = grid.to_frame()
    assert list(rows.columns) == list(COLUMNS)
    # 8 sets x (5 calipers x 2 ratios x (3 orders with 5 random seeds = 7, + 1 with
    # replacement)) = 640; 8 x (5 x 3 x 3) = 360.
    assert len(rows) == 1000
    assert (rows.family == "matching").sum() == 640
    assert (rows.family == "weighting").sum() == 360
    assert rows.groupby("covariate_set").size().eq(125).all()
    assert "Total 1000 rows" in grid.design and "640 rows" in grid.design
    assert rows.spec_id.is_unique
    random = rows[rows.order == "random"]
    assert random.order_seed.nunique() == 5 == len(grid.settings["order_seeds"])
    assert (rows[rows.replacement == "with"].order == "any (with replacement)").all()
    assert not (rows[rows.weights == "ATO"].stabilized == "yes").any()


def test_every_failure_is_a_row_with_a_reason(grid):
    rows = grid.to_frame()
    failed = rows[~rows.estimable]
    assert (failed.reason.str.len() > 0).all()
    # The lesion-count coding and the full Table 1 set separate (11 treated, 0 controls
    # without a viable intrahepatic lesion): every row of both sets is kept, not estimable.
    for name in ("intrahepatic control: lesion count", "all Table 1 variables"):
        part = rows[rows.covariate_set == name]
        assert len(part) == 125 and not part.estimable.any()
        assert part.reason.str.contains("separation").all()
        assert part.reason.str.contains("intrahepatic_lesions").all()
    # Events per variable of the PS model travel as notes: 36 / 16 = 2.2, 36 / 4 = 9.0.
    table1 = rows[rows.covariate_set == "all Table 1 variables"]
    assert table1.note.str.contains("Events per variable 2.2").all()
    cp = rows[rows.covariate_set == "default + child_pugh"]
    assert cp.note.str.contains("Events per variable 9.0").all()
    assert not rows[rows.covariate_set == "default"].note.str.contains("Events per").any()


def test_headline_counts(grid):
    ok = grid.to_frame()
    ok = ok[ok.estimable]
    below, above = (ok.ci_upper < 1).sum(), (ok.ci_lower > 1).sum()
    expected = (f"In {below + above} of {len(ok)} estimable specifications the 95% CI "
                f"excludes 1 (HR < 1 in {below}, > 1 in {above}).")
    assert grid.headline() == expected
    summary = grid.summary()
    assert summary.startswith(grid.label) and expected in summary
    balanced = grid.ci_counts(max_smd=0.1)
    assert balanced["n_estimable"] == int((ok.max_abs_smd <= 0.1).sum())


def test_not_estimable_when_trimming_leaves_an_arm_empty(cohort):
    specs = build_specifications({"default": ("ecog", "intrahepatic_ccr",
                                              "vascular_invasion")},
                                 calipers=(), weightings=(("ATE", True),),
                                 truncations=(None,), trims=((0.49, 0.51),))
    row = evaluate_set(cohort, specs)[0]
    assert not row["estimable"] and "left after trimming" in row["reason"]


def test_missing_column_rows_not_estimable(cohort):
    frame = cohort.data.drop(columns=["milan_within"])
    specs = build_specifications({"m": ("ecog", "milan_within")}, calipers=(0.2,),
                                 ratios=(1,), replace=(False,), orders=("largest",),
                                 weightings=(), truncations=(), trims=())
    row = evaluate_set(validate_frame(frame), specs)[0]
    assert not row["estimable"] and "milan_within" in row["reason"]


def test_parallel_equals_serial_and_progress(cohort):
    sets = {k: v for k, v in covariate_sets(cohort).items()
            if k in ("default", "intrahepatic control: Milan")}
    calls = []
    serial = specification_grid(cohort, covariate_sets=sets,
                                progress=lambda d, t: calls.append((d, t)))
    parallel = specification_grid(cohort, covariate_sets=sets, jobs=2)
    pd.testing.assert_frame_equal(serial.to_frame(), parallel.to_frame())
    assert calls[-1] == (250, 250) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    other = specification_grid(cohort, covariate_sets=sets, seed=1)
    assert other.settings["order_seeds"] != serial.settings["order_seeds"]


def test_the_grid_runs_through_run_parallel_one_task_per_set_with_dask_address(
        cohort, effects, monkeypatch):
    """run_sensitivity(dask_address=) reaches the grid's run_parallel (as the bootstrap's);
    one task per covariate set; the rows are those of the serial run (a stand-in for the
    Dask backend records the call and runs the tasks in this process)."""
    import importlib
    # The package exports a name "grid" too: the module itself, by its full name.
    grid_module = importlib.import_module("causal_hcc.sensitivity.grid")
    from causal_hcc.parallel import run_parallel
    from causal_hcc.sensitivity import run_sensitivity
    sets = {k: v for k, v in covariate_sets(cohort).items()
            if k in ("default", "intrahepatic control: Milan")}
    seen = []

    def recording(function, tasks, *, jobs=1, dask_address=None, progress=None):
        tasks = list(tasks)
        seen.append((dask_address, [len(t) for t in tasks]))
        return run_parallel(function, tasks, progress=progress)

    serial = specification_grid(cohort, covariate_sets=sets)
    monkeypatch.setattr(grid_module, "run_parallel", recording)
    with quiet():
        report = run_sensitivity(cohort, effects, covariate_sets=sets, landmarks=(),
                                 dask_address="tcp://scheduler:8786")
    assert seen == [("tcp://scheduler:8786", [125, 125])]
    pd.testing.assert_frame_equal(report.grid.to_frame(), serial.to_frame())


def _random_cohort(seed, n):
    rng = np.random.default_rng(seed)
    tx = np.r_[np.ones(n // 2, int), np.zeros(n - n // 2, int)]
    frame = pd.DataFrame({
        "patient_id": [f"R{i:03d}" for i in range(n)], "local_therapy": tx,
        "os_months": np.round(rng.exponential(12, n) + 0.1, 1),
        # At least one death per arm: the validation gate refuses a cohort without (tested
        # in test_schema); the property is about the grid, not the gate.
        "death": np.r_[1, rng.integers(0, 2, n // 2 - 1), 1, rng.integers(0, 2, n - n // 2 - 1)],
        "ecog": rng.integers(0, 2, n), "intrahepatic_ccr": rng.integers(0, 2, n),
        "vascular_invasion": rng.integers(0, 2, n),
        "milan_within": rng.integers(0, 2, n)})
    return validate_frame(frame, source="hypothesis", candidates=("milan_within",))


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(12, 40))
def test_property_rows_estimable_or_explained(seed, n):
    cohort = _random_cohort(seed, n)
    sets = {"a": ("ecog", "intrahepatic_ccr", "vascular_invasion"),
            "b": ("ecog", "milan_within")}
    grid = specification_grid(cohort, covariate_sets=sets, calipers=(0.05, None),
                              ratios=(1, 2), orders=("largest", "random"), n_order_seeds=2,
                              truncations=(None, (5, 95)), trims=(None, (0.1, 0.9)),
                              seed=seed)
    rows = grid.to_frame()
    assert len(rows) == 2 * (2 * 2 * (3 + 1) + 5 * 2 * 2)
    ok = rows[rows.estimable]
    assert np.isfinite(ok[["hr", "ci_lower", "ci_upper"]].to_numpy()).all()
    assert (ok.ci_lower <= ok.hr).all() and (ok.hr <= ok.ci_upper).all()
    assert (ok.events > 0).all() and (ok.n_treated > 0).all() and (ok.n_control > 0).all()
    bad = rows[~rows.estimable]
    assert (bad.reason.str.len() > 0).all() and bad.hr.isna().all()


# ----------------------------------------------------------------------------- audit B6
@pytest.fixture(scope="module")
def vi(cohort):
    return vascular_invasion_sensitivity(cohort, n_draws=4, seed=7)


def test_vascular_invasion_flips(cohort, vi):
    data = cohort.data
    treated_vi = set(data.patient_id[(data.local_therapy == 1) & (data.vascular_invasion == 1)])
    treated_no = set(data.patient_id[(data.local_therapy == 1) & (data.vascular_invasion == 0)])
    assert vi.observed_k == 5 == len(treated_vi)
    rows = vi.to_frame()
    assert sorted(rows.k.unique()) == [3, 4, 5, 6, 7, 8]
    for r in rows.itertuples():
        ids = [x for x in r.flipped_ids.split(", ") if x]
        assert len(ids) == abs(r.k - 5)                      # exact counts
        assert set(ids) <= (treated_vi if r.k < 5 else treated_no)
    assert (rows[rows.k == 5].draw == 1).all() and (rows.k == 5).sum() == 2
    assert len(rows) == 2 * (5 * 4 + 1)
    by_k = vi.by_k
    assert set(by_k.method) == {"psm", "iptw"} and len(by_k) == 12
    assert (by_k.hr_min <= by_k.hr_median).all() and (by_k.hr_median <= by_k.hr_max).all()
    assert "RECONSTRUCTED" in vi.notes[0]


def test_vascular_invasion_observed_k_equals_adjust(vi, effects):
    rows = vi.to_frame()
    at5 = rows[rows.k == 5].set_index("method")
    psm = next(e for e in effects.estimates if e.method == "psm")
    ate = next(e for e in effects.estimates if e.method == "iptw" and e.estimand == "ATE")
    np.testing.assert_allclose(at5.loc["psm", "hr"], psm.hr, rtol=1e-12)
    np.testing.assert_allclose(at5.loc["iptw", "hr"], ate.hr, rtol=1e-12)


def test_vascular_invasion_reproducible_and_refused_on_real_data(cohort, vi):
    again = vascular_invasion_sensitivity(cohort, n_draws=4, seed=7)
    pd.testing.assert_frame_equal(vi.to_frame(), again.to_frame())
    # A k's draws do not depend on which other k values are asked for.
    only6 = vascular_invasion_sensitivity(cohort, k_values=[6], n_draws=4, seed=7)
    full6 = vi.to_frame()
    full6 = full6[full6.k == 6].reset_index(drop=True)
    pd.testing.assert_frame_equal(only6.to_frame(), full6)
    real = validate_frame(cohort.data.drop(columns="diagnosis_date"),
                          source="a real-data stand-in")
    with pytest.raises(ValueError, match="reconstructed"):
        vascular_invasion_sensitivity(real)
    with pytest.raises(ValueError, match="outside"):
        vascular_invasion_sensitivity(cohort, k_values=[41])
    assert vi.summary().startswith(cohort.label)


def test_default_sets_come_from_the_roles(cohort):
    sets = default_covariate_sets(cohort)
    assert list(sets) == ["default", "without ecog", "without intrahepatic_ccr",
                          "without vascular_invasion"]
    with_age = cohort.with_roles(covariates=("ecog", "age"), candidates=("afp_positive",))
    sets = default_covariate_sets(with_age)
    assert sets["default + afp_positive"]["covariates"] == ("ecog", "age", "afp_positive")
    assert sets["default, numeric as splines"]["splines"] == {"age": 3}
    grid = specification_grid(with_age, calipers=(0.2,), ratios=(1,), replace=(False,),
                              orders=("largest",), weightings=(("ATE", True),),
                              truncations=(None,), trims=(None,))
    rows = grid.to_frame()
    assert rows.estimable.all(), rows.reason.tolist()
    assert rows.covariates.str.contains("ns(age, df=3)", regex=False).any()
    assert "Denominator: 10 specifications in all" in grid.summary()


def test_the_report_command_passes_dask_to_the_grid(monkeypatch):
    """`causal-hcc report --dask ADDRESS` reaches run_sensitivity (and so the grid's
    run_parallel), not only the bootstrap."""
    import argparse
    import importlib

    # the subpackage itself (``causal_hcc.sensitivity`` as an attribute is the verb)
    sensitivity_package = importlib.import_module("causal_hcc.sensitivity")
    from causal_hcc.cli.commands import run_sensitivity_stage
    from causal_hcc.config import Config
    from causal_hcc.data import Cohort
    seen = {}

    def recording(cohort, effects, **kwargs):
        seen.update(kwargs)
        return "report"

    monkeypatch.setattr(sensitivity_package, "run_sensitivity", recording)
    generic = Cohort.from_frame(pd.DataFrame({"t": [1.0, 2, 3, 4], "e": [1, 0, 1, 1],
                                                 "a": [1, 0, 1, 0]}),
                                   time="t", event="e", treatment="a")
    args = argparse.Namespace(dask="tcp://127.0.0.1:1", quiet=True)
    assert run_sensitivity_stage(args, generic, None, Config(), quiet=True) == "report"
    assert seen["dask_address"] == "tcp://127.0.0.1:1"


def test_shared_rows_compute_a_set_once_and_equal_the_computation(cohort, monkeypatch):
    """Inside shared_rows a specification met again on the same data is looked up: the rows
    equal those computed (a set of the grid's 125 or just its two default rows), and
    different data (one patient's covariate changed) are computed anew."""
    import dataclasses
    import importlib

    from causal_hcc.sensitivity._memo import shared_rows
    grid_module = importlib.import_module("causal_hcc.sensitivity.grid")

    covs = tuple(cohort.roles.covariates)
    specs = [s for s in build_specifications({"default": covs}) if s.name == "default"]
    pair = [Specification.psm(covs), Specification.iptw(covs)]
    with quiet():
        alone = evaluate_set(cohort, pair)
    calls = []
    real = grid_module.prepare
    monkeypatch.setattr(grid_module, "prepare", lambda *a, **k: calls.append(1) or real(*a, **k))
    data = cohort.data.copy()
    data.loc[0, "ecog"] = 1 - data.loc[0, "ecog"]
    other = dataclasses.replace(cohort, data=data)
    with quiet(), shared_rows():
        full = evaluate_set(cohort, specs)
        looked_up = evaluate_set(cohort, pair)
        again = evaluate_set(dataclasses.replace(cohort, data=cohort.data.copy()), pair)
        changed = evaluate_set(other, pair)
        looked_up[0]["hr"] = -1.0           # a caller's edit does not reach the memo
        assert evaluate_set(cohort, pair)[0]["hr"] == alone[0]["hr"]
    assert len(calls) == 2                  # the full set and the changed data only
    def same(a, b):                         # NaN equals NaN
        return a.keys() == b.keys() and all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k])
                                            for k in a)
    by_spec = dict(zip(specs, full))
    for spec, a, b in zip(pair, alone, again):
        assert same(a, b) and same(a, by_spec[spec])
    assert [r["hr"] for r in changed] != [r["hr"] for r in alone]
    with quiet():                           # outside a scope nothing is cached
        evaluate_set(cohort, pair)
    assert len(calls) == 3
