"""ATC matching, exact / CEM / subclass matching and the order-free tie rule.

References: tests/reference/estimands.R (bundled cohort and R's veteran; MatchIt 4.5.1 with
distance = logit PS * 2^26, see that header) and tests/reference/public.R (ATC rows of
<d>_match.csv and <d>_effects.csv for rossi, veteran, pbc, ovarian). Tolerances: matched
sets, strata and counts exact (partitions compared, labels are arbitrary); weights atol
1e-12 (sums of a few ratios); Cox coefficients rtol 1e-6; robust / cluster SEs rtol 1e-4
(optimiser convergence); cut points rtol 1e-12 (same arithmetic).
"""

import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import causal_hcc as ch
from causal_hcc.effects.estimate import cox_effect
from causal_hcc.errors import CausalHccWarning, NotEstimableError
from causal_hcc.matching import match_on_logit, match_patients
from causal_hcc.effects.matched import order_spread
from causal_hcc.matching_strata import (find_interval, ps_subclasses, stratum_match,
                                        stratum_weights, sturges_breaks)
from causal_hcc.propensity import fit_propensity
from causal_hcc.data import Cohort
from tests._fixtures import quiet
from causal_hcc.studies.yang2025 import load_bundled

REF = Path(__file__).parent / "reference"
EST = REF / "estimands"
VETERAN_ROLES = dict(time="time", event="status", treatment="trt", treated=2,
                     covariates=["celltype", "karno", "age", "prior"])
#: estimands.R's exact-matching variables (veteran: the factors only).
EXACT_COVS = {"bundled": None, "veteran": ("celltype", "prior")}


@cache
def _cohort(name):
    if name == "bundled":
        return load_bundled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        return ch.cohort(pd.read_csv(REF / "datasets" / "veteran.csv"), **VETERAN_ROLES)


@cache
def _ps(name):
    cohort = _cohort(name)
    return fit_propensity(cohort, cohort.roles.covariates)


def _ref(name, what):
    return pd.read_csv(EST / f"{name}_{what}.csv")


def _partition(labels) -> set:
    sets: dict = {}
    for i, s in enumerate(labels):
        if pd.notna(s) and s != -1:
            sets.setdefault(s, set()).add(i)
    return {frozenset(v) for v in sets.values()}


def _cox(cohort, weights, cluster=None):
    tx = cohort.treated.astype(float)[:, None]
    if cluster is None:
        return cox_effect("x", None, "", cohort.time, cohort.event, tx, ["treatment"],
                          weights=weights, robust=True)
    return cox_effect("x", None, "", cohort.time, cohort.event, tx, ["treatment"],
                      weights=weights, cluster=cluster)


def _check_cox(ours, ref_row, what):
    np.testing.assert_allclose(np.log(ours.hr), ref_row.coef, rtol=1e-6, err_msg=what)
    np.testing.assert_allclose(ours.se_log_hr, ref_row.se, rtol=1e-4, err_msg=what)
    assert ours.n_treated == ref_row.n_treated and ours.n_control == ref_row.n_control


# ----------------------------------------------------------------------------- ATC (1)
@pytest.mark.parametrize("name", ["bundled", "veteran"])
def test_atc_pairs_equal_matchit(name):
    """Controls focal, smallest logit PS first (MatchIt's ATC default), caliper 0.2 SD:
    the same control -> treated pairs as MatchIt (exact), on our own PS."""
    cohort = _cohort(name)
    m = match_patients(cohort, _ps(name), estimand="ATC")
    assert m.order == "smallest" and m.ties == "matchit"
    pairs = m.pairs_frame()
    ours = dict(zip(pairs.control_id, pairs.treated_id))
    ref = _ref(name, "atc_pairs")
    # R's veteran ids are V001...; ours are row numbers.
    ids = dict(zip(_ref(name, "ps").id, cohort.ids))
    theirs = {ids[c]: ids[t] for c, t in zip(ref.control_id, ref.treated_id) if pd.notna(t)}
    assert ours == theirs                                                  # exact
    rows = _ref(name, "rows").query("method == 'nearest_caliper' and estimand == 'ATC'")
    np.testing.assert_array_equal(m.weights, rows.weight.to_numpy(float))  # exact (0/1)
    assert _partition(m.subclass) == _partition(rows.subclass)
    assert m.estimand == "ATC among matched controls"
    cox = _ref(name, "cox").query("method == 'nearest_caliper' and estimand == 'ATC'")
    np.testing.assert_allclose(m.caliper, cox.caliper_logit.iloc[0], rtol=1e-9)
    _check_cox(_cox(cohort, m.weights, m.subclass),
               cox[cox.variance == "cluster_subclass"].iloc[0], f"{name} ATC cluster")
    _check_cox(_cox(cohort, m.weights), cox[cox.variance == "robust"].iloc[0],
               f"{name} ATC robust")


@pytest.mark.parametrize("name", ["rossi", "veteran", "pbc", "ovarian"])
def test_public_atc_matched_sets_equal_matchit(name):
    """public.R's ATC rows: same pairs (partition), same 0/1 weights, on R's logit PS."""
    r = pd.read_csv(REF / "public" / f"{name}_match.csv")
    r = r[r.estimand == "ATC"].sort_values("row")
    m = match_on_logit(r.lp.to_numpy(), r.A.to_numpy(), estimand="ATC")
    assert _partition(m.subclass) == _partition(r.subclass.to_numpy())    # exact
    assert len(_partition(m.subclass)) == r.n_pairs.iloc[0]
    np.testing.assert_array_equal(m.weights, r.weight.to_numpy(float))
    np.testing.assert_allclose(m.caliper, r.caliper_lp.iloc[0], rtol=1e-9)


def test_hand_atc_controls_choose_smallest_first():
    # Controls C1 (0.0), C2 (0.1); treated T1 (0.05), T2 (0.12). C1 goes first and takes
    # T1 (0.05 away); C2 then takes T2.
    m = match_on_logit([0.0, 0.1, 0.05, 0.12], [0, 0, 1, 1], caliper_sd=None,
                       patient_id=["C1", "C2", "T1", "T2"], estimand="ATC")
    assert dict(zip(m.pairs_frame().control_id, m.pairs_frame().treated_id)) == \
        {"C1": "T1", "C2": "T2"}
    assert m.estimand == "ATC" and m.match_matrix.shape == (2, 1)


# ----------------------------------------------------------------- exact / CEM / subclass
@pytest.mark.parametrize("name", ["bundled", "veteran"])
@pytest.mark.parametrize("method", ["exact", "cem", "subclass"])
@pytest.mark.parametrize("estimand", ["ATT", "ATC", "ATE"])
def test_strata_equal_matchit(name, method, estimand):
    cohort = _cohort(name)
    s = stratum_match(cohort, method, estimand, propensity=_ps(name),
                      covariates=EXACT_COVS[name] if method == "exact" else None)
    rows = _ref(name, "rows").query(f"method == '{method}' and estimand == '{estimand}'")
    assert _partition(s.subclass) == _partition(rows.subclass.to_numpy())   # exact
    np.testing.assert_allclose(s.weights, rows.weight.to_numpy(float), rtol=0, atol=1e-12)
    cox = _ref(name, "cox").query(f"method == '{method}' and estimand == '{estimand}'")
    ref = cox[cox.variance == "robust"].iloc[0]
    assert s.n_dropped_treated == ref.n_dropped_treated
    assert s.n_dropped_control == ref.n_dropped_control
    _check_cox(_cox(cohort, s.weights), ref, f"{name} {method} {estimand} robust")
    _check_cox(_cox(cohort, s.weights, s.subclass),
               cox[cox.variance == "cluster_subclass"].iloc[0],
               f"{name} {method} {estimand} cluster")


@pytest.mark.parametrize("name", ["bundled", "veteran"])
def test_cem_cutpoints_equal_matchit(name):
    cohort = _cohort(name)
    s = stratum_match(cohort, "cem", "ATT", propensity=_ps(name))
    ref = _ref(name, "cem_cutpoints")
    for var, group in ref.groupby("variable", sort=False):
        if group.type.iloc[0] == "factor":
            assert s.details[var] is None
        else:
            np.testing.assert_allclose(s.details[var], group.interior_break, rtol=1e-12)
    bins = _ref(name, "cem_bins")
    for var in ref[ref.type == "numeric"].variable.unique():
        np.testing.assert_array_equal(
            find_interval(cohort.data[var], sturges_breaks(cohort.data[var])), bins[var])


@pytest.mark.parametrize("name", ["bundled", "veteran"])
def test_subclass_cuts_equal_matchit(name):
    cohort = _cohort(name)
    ref = _ref(name, "subclass_cuts")
    ps = _ref(name, "ps")
    for estimand, group in ref.groupby("estimand"):
        sub, q, scooted = ps_subclasses(ps.ps.to_numpy(), ps.treat.to_numpy(), estimand)
        np.testing.assert_allclose(q, group.q_cut, rtol=1e-12)
        assert len(np.unique(sub)) == group.n_subclasses.iloc[0]
        assert scooted == bool(group.scoot_changed.iloc[0])
        assert stratum_match(cohort, "subclass", estimand, propensity=_ps(name)) \
            .details["scooted"] == scooted


def test_hand_stratum_weights():
    # Stratum 1: 1 treated, 2 controls; stratum 2: 3 treated, 1 control; one dropped.
    sub = np.array([1, 1, 1, 2, 2, 2, 2, -1])
    tx = np.array([1, 0, 0, 1, 1, 1, 0, 1])
    att = stratum_weights(sub, tx, "ATT")
    # controls n1/n0: 1/2, 1/2, 3 (sum 4) rescaled to 3 kept controls: x 3/4
    np.testing.assert_allclose(att, [1, 3 / 8, 3 / 8, 1, 1, 1, 9 / 4, 0], rtol=1e-15)
    atc = stratum_weights(sub, tx, "ATC")
    # treated n0/n1: 2, 1/3 x 3 (sum 3) rescaled to 4 kept treated: x 4/3
    np.testing.assert_allclose(atc, [8 / 3, 1, 1, 4 / 9, 4 / 9, 4 / 9, 1, 0], rtol=1e-15)


def test_strata_without_both_arms_are_not_estimable():
    cohort = load_bundled()
    with pytest.raises(ValueError, match="method must be"):
        stratum_match(cohort, "optimal", "ATT")
    with pytest.raises(ValueError, match="propensity"):
        stratum_match(cohort, "subclass", "ATT")


# ----------------------------------------------------------------------------- ties="all"
def test_hand_ties_all_shares_tied_controls():
    # Treated T1, T2 at 1.0, T3 at 2.0; controls C1, C2, C3 at 1.0, C4 at 2.5. Largest
    # first: T3 takes C4 (0.5 away). The block {T1, T2} then takes all of C1-C3: each gets
    # 2 x 1/3; control weights (2/3, 2/3, 2/3, 1; sum 3) are rescaled to sum to the 4
    # matched controls: 8/9 and 4/3.
    score = [1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 2.5]
    tx = [1, 1, 1, 0, 0, 0, 0]
    ids = ["T1", "T2", "T3", "C1", "C2", "C3", "C4"]
    m = match_on_logit(score, tx, caliper_sd=None, patient_id=ids, ties="all")
    assert [(list(f), list(p)) for f, p in m.sets] == [([0, 1], [3, 4, 5]), ([2], [6])]
    np.testing.assert_allclose(m.weights, [1, 1, 1, 8 / 9, 8 / 9, 8 / 9, 4 / 3], rtol=1e-15)
    assert _partition(m.subclass) == {frozenset({0, 1, 3, 4, 5}), frozenset({2, 6})}
    # Equidistant on both sides: T at 2.0 between C at 1.0 and C at 3.0 takes both.
    both = match_on_logit([2.0, 1.0, 3.0], [1, 0, 0], caliper_sd=None, ties="all")
    assert [list(p) for _, p in both.sets] == [[1, 2]]
    assert len(m.pairs_frame()) == 7       # 2 x 3 + 1 x 1 treated-control pairs
    # 13 treated tied with 1 control: one set, control weight 13 -> rescaled to 1 control.
    m = match_on_logit([0.0] * 13 + [0.0], [1] * 13 + [0], caliper_sd=None, ties="all")
    assert len(m.sets) == 1 and m.weights[-1] == 1.0 and m.n_matched_treated == 13


def test_ties_all_without_ties_equals_matchit():
    rng = np.random.default_rng(1)
    score, tx = rng.normal(size=200), rng.integers(0, 2, 200)
    a = match_on_logit(score, tx, ties="all")
    b = match_on_logit(score, tx, ties="matchit")
    np.testing.assert_array_equal(a.weights, b.weights)
    assert _partition(a.subclass) == _partition(b.subclass)


def test_ties_all_refuses_data_order():
    with pytest.raises(ValueError, match="row order"):
        match_on_logit([0.0, 1.0], [1, 0], ties="all", order="data")
    with pytest.raises(ValueError, match="ties must be"):
        match_on_logit([0.0, 1.0], [1, 0], ties="first")
    with pytest.raises(ValueError, match="estimand must be"):
        match_on_logit([0.0, 1.0], [1, 0], estimand="ATE")


@st.composite
def tied_problems(draw):
    n = draw(st.integers(4, 40))
    levels = draw(st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=6))
    score = np.array([levels[draw(st.integers(0, len(levels) - 1))] for _ in range(n)])
    tx = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    if tx.min() == tx.max():
        tx[0] = 1 - tx[0]
    seed = draw(st.integers(0, 2**31))
    return score, tx, seed


@settings(max_examples=80, deadline=None)
@given(problem=tied_problems(), estimand=st.sampled_from(["ATT", "ATC"]),
       ratio=st.integers(1, 3), caliper=st.sampled_from([None, 0.2, 1.0]),
       replace=st.booleans())
def test_ties_all_is_invariant_to_row_order(problem, estimand, ratio, caliper, replace):
    """Permuting the rows of both arms gives bit-identical weights per patient, the same
    matched sets, and (Cox on the permuted data) the same HR."""
    score, tx, seed = problem
    perm = np.random.default_rng(seed).permutation(len(score))
    ids = np.array([f"p{i}" for i in range(len(score))])
    kw = dict(caliper_sd=caliper, ratio=ratio, replace=replace, estimand=estimand,
              ties="all")
    try:
        a = match_on_logit(score, tx, patient_id=ids, **kw)
    except NotEstimableError:
        with pytest.raises(NotEstimableError):
            match_on_logit(score[perm], tx[perm], patient_id=ids[perm], **kw)
        return
    b = match_on_logit(score[perm], tx[perm], patient_id=ids[perm], **kw)
    wa = dict(zip(a.patient_id, a.weights))
    wb = dict(zip(b.patient_id, b.weights))
    assert wa == wb                                                      # bit-identical
    sets_a = {(frozenset(ids[f]), frozenset(ids[p])) for f, p in a.sets}
    sets_b = {(frozenset(ids[perm][f]), frozenset(ids[perm][p])) for f, p in b.sets}
    assert sets_a == sets_b
    assert a.estimand == b.estimand


def test_bundled_ties_all_hr_is_invariant_to_row_order():
    """The bundled cohort (8 PS values): with ties="all" a permutation of all rows gives
    the same weights bit for bit and the same HR (rtol 1e-12: Cox sums in another order);
    MatchIt's greedy rule does not."""
    cohort = load_bundled()
    ps = _ps("bundled")
    rng = np.random.default_rng(7)
    base = None
    for _ in range(5):
        perm = rng.permutation(cohort.n)
        m = match_on_logit(ps.logit_ps[perm], ps.treated[perm], patient_id=cohort.ids[perm],
                           ties="all")
        e = cox_effect("psm", "ATT", "", cohort.time[perm], cohort.event[perm],
                       cohort.treated[perm].astype(float)[:, None], ["t"], weights=m.weights,
                       cluster=m.subclass)
        w = dict(zip(m.patient_id, m.weights))
        if base is None:
            base = (w, e.hr, e.se_log_hr)
        assert w == base[0]
        np.testing.assert_allclose([e.hr, e.se_log_hr], base[1:], rtol=1e-12)
    # Exact-matching ATT (same cells at this caliper) has the same point estimate.
    exact = stratum_match(cohort, "exact", "ATT", propensity=ps)
    np.testing.assert_allclose(base[1], _cox(cohort, exact.weights).hr, rtol=1e-10)


def test_order_spread_is_seeded_and_crosses_one_on_bundled():
    cohort = load_bundled()
    a = order_spread(cohort, _ps("bundled"), k=30, seed=3)
    b = order_spread(cohort, _ps("bundled"), k=30, seed=3)
    np.testing.assert_array_equal(a.log_hr, b.log_hr)
    q = a.quantiles
    assert q["min"] < q["median"] < q["max"] and a.n_failed == 0
    assert a.crosses_1 and 0 < a.share_below_1 < 1
    assert "random row orders" in a.summary()


# ----------------------------------------------------------------------------- adjust rows
@cache
def _adjusted_bundled():
    from causal_hcc.effects import adjust
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        return adjust(load_bundled(), n_boot=0, aipw=False, order_spread_k=20)


def test_adjust_rows_and_labels():
    fit = _adjusted_bundled()
    rows = {(e.method, e.estimand): e for e in fit.estimates}
    psm_att = rows[("psm", "ATT among matched treated")]
    assert "MatchIt greedy rule (data order) HR 0.553" in psm_att.description
    assert "random row orders" in psm_att.description
    assert ("psm_stratified", "ATT among matched treated (conditional HR within matched "
            "sets)") in rows
    assert ("psm", "ATC") in rows
    for method in ("exact", "cem", "subclass"):
        assert sum(e.method == method for e in fit.estimates) == 3
    # Against R (estimands.R): exact ATT and subclass ATC rows, robust SE.
    cox = _ref("bundled", "cox")
    for (method, estimand), e in rows.items():
        if method in ("exact", "cem", "subclass"):
            head = estimand.split(" ")[0]
            ref = cox.query(f"method == '{method}' and estimand == '{head}' "
                            "and variance == 'robust'").iloc[0]
            _check_cox(e, ref, f"{method} {estimand}")
    assert set(fit.settings["order_spread"]) == {"ATT", "ATC"}
    assert fit.settings["matching_ties"] == "all"
    assert set(fit.matching_weights) >= {("psm", "ATC"), ("exact", "ATT"), ("cem", "ATE"),
                                         ("subclass", "ATC")}


def test_adjust_with_matchit_rule_gives_r_psm():
    from causal_hcc.effects import adjust
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        fit = adjust(load_bundled(), n_boot=0, aipw=False, ties="matchit")
    rows = {(e.method, e.estimand.split(" ")[0]): e for e in fit.estimates if e.estimand}
    ref = _ref("bundled", "cox").query("method == 'nearest_caliper' and "
                                       "variance == 'cluster_subclass'").iloc[0]
    _check_cox(rows[("psm", "ATC")], ref, "bundled psm ATC")
    assert rows[("psm", "ATT")].hr == pytest.approx(0.553, abs=5e-4)


def test_sets_frame_lists_the_pairs_sets_a_row_per_patient():
    """sets_frame is the linear-size form of pairs_frame: the same sets, every patient of a
    set once, and its pairs rebuilt from it equal pairs_frame (ties="all": focal x
    partner within each set)."""
    rng = np.random.default_rng(7)
    n = 300
    frame = pd.DataFrame({"id": [f"P{i}" for i in range(n)],
                          "t": rng.exponential(10, n), "e": rng.integers(0, 2, n),
                          "a": rng.integers(0, 2, n), "x": rng.integers(0, 3, n)})
    cohort = Cohort.from_frame(frame, id="id", time="t", event="e", treatment="a",
                               covariates=["x"], categorical=["x"])
    with quiet():
        m = match_patients(cohort, fit_propensity(cohort), caliper_sd=None, ties="all")
    pairs, sets = m.pairs_frame(), m.sets_frame()
    assert m.n_pairs == len(pairs) > len(sets)   # three PS values: big tied sets
    rebuilt = set()
    for _, g in sets.groupby("matched_set"):
        focal = g.loc[g.role == "focal"]
        partner = g.loc[g.role == "partner"]
        for f_id, f_t in zip(focal.patient_id, focal.treated):
            for p_id in partner.patient_id:
                rebuilt.add((f_id, p_id) if f_t == 1 else (p_id, f_id))
    assert rebuilt == set(zip(pairs.treated_id, pairs.control_id))
    assert not sets.duplicated(["matched_set", "patient_id"]).any()
