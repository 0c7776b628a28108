"""causal_hcc.matching against MatchIt 4.5.1 (fixtures from tests/reference/matching.R).

MatchIt was run with distance = logit_ps * 2^26 (workaround for its 4.5.1 truncation bug;
the caliper in SD units is unchanged by the scaling). Matched pairs must be IDENTICAL.
"""

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _fixtures import require_current_matching_fixtures
from causal_hcc.studies.yang2025 import validate_frame
from causal_hcc.errors import CohortError, NotEstimableError
from causal_hcc.matching import match_on_logit, match_patients, matching_weights
from causal_hcc.propensity import fit_propensity, fit_propensity_frame

REF = Path(__file__).parent / "reference"
DATA = {"lalonde": pd.read_csv(REF / "matching_lalonde.csv"),
        "veteran": pd.read_csv(REF / "matching_veteran.csv"),
        "ties": pd.read_csv(REF / "matching_ties.csv")}
PS = pd.read_csv(REF / "matching_ps.csv")
CONFIG = pd.read_csv(REF / "matching_config.csv")
ROWS = pd.read_csv(REF / "matching_rows.csv")
PAIRS = pd.read_csv(REF / "matching_pairs.csv")
BUNDLED = Path(__file__).parents[1] / "causal_hcc" / "studies" / "yang2025" / "bundled" / \
    "reconstructed_pseudo_cohort.csv"

# MatchIt 4.5.1's "already matched to this treated patient" check (rounds 2..k of k:1
# matching) compares 0-based with 1-based row indices: it skips the control in the data row
# AFTER each control already matched to that patient instead of the control itself. With
# replacement the same control is then matched twice; without replacement an available
# control is skipped. Those configurations differ from ours; test_differences_are_exactly_
# matchit_451_bugs proves the differences are these bugs and nothing else.
MATCHIT_BUG_CONFIGS = {"lalonde_nn_ratio2_replace", "ties_nn_cal02_ratio2"}


def _run(config: pd.Series):
    ps = PS[PS.model == config.model]
    data = DATA.get(config.model.split("_")[0])
    score = ps.logit_ps.to_numpy() if config.score == "logit" else ps.ps.to_numpy()
    exact = config.exact if isinstance(config.exact, str) and config.exact else None
    order = "largest" if config.m_order.startswith("default") else config.m_order
    return match_on_logit(score, ps.treat.to_numpy(), ratio=int(config.ratio),
                          replace=bool(config["replace"]),
                          caliper_sd=None if np.isnan(config.caliper_sd) else config.caliper_sd,
                          order=order, patient_id=ps.id.to_numpy(),
                          exact_strata=None if exact is None else data[exact].to_numpy(),
                          exact=() if exact is None else (exact,))


def _pairs(frame):
    return set(zip(frame.treated_id, frame.slot, frame.control_id))


CONFIGS = [c for c in CONFIG.config if c not in MATCHIT_BUG_CONFIGS
           and not c.startswith("bundled")]


@pytest.mark.parametrize("name", CONFIGS)
def test_pairs_identical_to_matchit(name):
    config = CONFIG.set_index("config").loc[name].rename(name)
    config["config"] = name
    matched = _run(config)
    ref_pairs = PAIRS[(PAIRS.config == name) & PAIRS.control_id.notna()]
    # Same treated patient, same slot (order of matching), same control: exact equality.
    assert _pairs(matched.pairs_frame()) == _pairs(ref_pairs)
    rows = ROWS[ROWS.config == name]
    np.testing.assert_allclose(matched.weights, rows.weight, rtol=0, atol=1e-12)
    assert matched.n_matched_treated == config.n_matched_treated
    assert matched.n_matched_control == config.n_matched_control
    if not np.isnan(config.caliper_abs):
        # Caliper in logit units: 0.2 x sd(logit PS) computed the same way (rtol 1e-12).
        assert matched.caliper == pytest.approx(config.caliper_abs, rel=1e-12)
    if not config["replace"]:
        # Subclasses: the same partition into matched sets (MatchIt numbers them by the
        # lexicographic order of the treated row number; we number by row order).
        ours = pd.Series(matched.subclass, index=matched.patient_id)
        theirs = rows.set_index("id").subclass
        assert ((ours > 0) == theirs.notna()).all()
        sets_ours = {frozenset(g.index) for _, g in ours[ours > 0].groupby(ours[ours > 0])}
        sets_r = {frozenset(g.index) for _, g in theirs.dropna().groupby(theirs.dropna())}
        assert sets_ours == sets_r


def _brute_force_nearest(score, treated, ratio, caliper):
    """Independent reference for matching with replacement: the k nearest distinct
    controls within the caliper, ties to the lower score."""
    out = {}
    controls = np.flatnonzero(treated == 0)
    for t in np.flatnonzero(treated == 1):
        d = np.abs(score[controls] - score[t])
        order = np.lexsort((score[controls], np.round(d, 12)))
        chosen = [controls[i] for i in order[:ratio] if caliper is None or d[i] <= caliper]
        out[t] = chosen
    return out


def _matchit_451_port(score, treated, ratio, caliper_sd, replace, order, faithful):
    """Independent line-by-line port of MatchIt 4.5.1's nn_matchC_vec (src/nn_matchC_vec.cpp)
    for a vector distance without exact/antiexact: an O(n^2) reference for the tests.

    faithful=True reproduces 4.5.1 on distance * 2^26: |difference| truncated to an integer
    (C ``abs`` on int) and the 0-/1-based index mix-up. faithful=False fixes both (exact
    differences, ties within 1e-10 relative, the matched control itself skipped): it must then
    equal causal_hcc.matching.
    """
    dist = score * 2.0 ** 26 if faithful else score.astype(float)
    n = len(dist)
    cal = None if caliper_sd is None else caliper_sd * np.std(dist, ddof=1)
    tie = 0.0 if faithful else 1e-10 * max(1.0, np.max(np.abs(dist)))
    d_ord = np.argsort(dist, kind="stable")            # R sort.list: stable
    t_sorted, d_sorted = treated[d_ord], dist[d_ord]
    pos = np.empty(n, dtype=int)
    pos[d_ord] = np.arange(n)
    t_rows = np.flatnonzero(treated == 1)
    reuse_max = len(t_rows) if replace else 1
    if replace:
        order = "data"                                 # matchit2nearest does this
    ords = {"largest": np.argsort(-score[t_rows], kind="stable"),
            "smallest": np.argsort(score[t_rows], kind="stable"),
            "data": np.arange(len(t_rows))}[order]
    can = t_sorted == 0
    times = np.zeros(n, dtype=int)
    mm = np.full((len(t_rows), ratio), -1)

    def gap(a, b):
        x = abs(d_sorted[a] - d_sorted[b])
        return float(np.trunc(x)) if faithful else x

    for r in range(ratio):
        for i in ords:
            ii = pos[t_rows[i]]
            done = [c for c in mm[i] if c >= 0]
            skip = {c + 1 for c in done} if faithful else set(done)

            def scan(step):
                k = ii + step
                while 0 <= k < n:
                    if t_sorted[k] == 1 or (r > 0 and d_ord[k] in skip) or not can[k]:
                        k += step
                        continue
                    return -1 if cal is not None and gap(ii, k) > cal else k
                return -1

            left, right = scan(-1), scan(1)
            if left >= 0 and right >= 0:
                k = left if gap(left, ii) <= gap(right, ii) + tie else right
            elif max(left, right) < 0:
                continue
            else:
                k = max(left, right)
            mm[i, r] = d_ord[k]
            times[k] += 1
            if times[k] >= reuse_max:
                can[k] = False
            if not can.any():
                return mm
    return mm


def _r_match_matrix(name, ids, treated, ratio):
    """MatchIt's match.matrix as row indices (rows: treated in data order; -1 = none)."""
    t_ids = ids[treated == 1]
    r_mm = np.full((len(t_ids), ratio), -1)
    index = {v: j for j, v in enumerate(ids)}
    row_of = {v: j for j, v in enumerate(t_ids)}
    for p in PAIRS[PAIRS.config == name].dropna().itertuples():
        r_mm[row_of[p.treated_id], p.slot - 1] = index[p.control_id]
    return r_mm


@pytest.mark.parametrize("name", [c for c in CONFIG.config if not c.startswith("bundled")
                                  and CONFIG.set_index("config").exact.isna()[c]])
def test_differences_are_exactly_matchit_451_bugs(name):
    config = CONFIG.set_index("config").loc[name]
    ps = PS[PS.model == config.model]
    score = (ps.logit_ps if config.score == "logit" else ps.ps).to_numpy()
    treated = ps.treat.to_numpy()
    order = "largest" if config.m_order.startswith("default") else config.m_order
    caliper_sd = None if np.isnan(config.caliper_sd) else config.caliper_sd
    args = (score, treated, int(config["ratio"]), caliper_sd, bool(config["replace"]), order)
    r_mm = _r_match_matrix(name, ps.id.to_numpy(), treated, int(config["ratio"]))
    # 1. The faithful port reproduces MatchIt 4.5.1 exactly (so it is a valid model of it).
    assert np.array_equal(_matchit_451_port(*args, faithful=True), r_mm)
    # 2. With the two bugs fixed, the port equals causal_hcc exactly.
    ours = _run(config).match_matrix
    assert np.array_equal(_matchit_451_port(*args, faithful=False), ours)
    # 3. Hence ours differs from MatchIt 4.5.1 only in the known bug configurations.
    assert np.array_equal(ours, r_mm) == (name not in MATCHIT_BUG_CONFIGS)


def test_ratio_with_replacement_matchit_bug_documented():
    config = CONFIG.set_index("config").loc["lalonde_nn_ratio2_replace"]
    matched = _run(config)
    ref = PAIRS[PAIRS.config == "lalonde_nn_ratio2_replace"]
    slot1 = ref[ref.slot == 1].set_index("treated_id").control_id
    slot2 = ref[ref.slot == 2].set_index("treated_id").control_id
    # MatchIt 4.5.1: the second "match" repeats the first for every treated patient.
    assert (slot1 == slot2).all()
    ours = matched.pairs_frame()
    assert _pairs(ours[ours.slot == 1]) == _pairs(ref[ref.slot == 1])
    # Ours: the two nearest DISTINCT controls, as a brute-force search finds them.
    ps = PS[PS.model == "lalonde_main"]
    score, treated = ps.logit_ps.to_numpy(), ps.treat.to_numpy()
    expected = _brute_force_nearest(score, treated, 2, None)
    t_rows = np.flatnonzero(treated == 1)
    for i, t in enumerate(t_rows):
        # Compare distances: equal-score controls are interchangeable (which one is taken
        # first follows the sorted position, as in MatchIt).
        np.testing.assert_allclose(np.abs(score[matched.match_matrix[i]] - score[t]),
                                   np.abs(score[expected[t]] - score[t]), rtol=0, atol=1e-12)


def test_own_ps_gives_matchit_pairs_end_to_end():
    fit = fit_propensity_frame(DATA["lalonde"], "treat",
                               ["age", "educ", "race", "married", "nodegree", "re74", "re75"],
                               id_col="id")
    matched = match_on_logit(fit.logit_ps, fit.treated, patient_id=fit.patient_id)
    ref = PAIRS[(PAIRS.config == "lalonde_nn_cal02") & PAIRS.control_id.notna()]
    assert _pairs(matched.pairs_frame()) == _pairs(ref)


@pytest.mark.parametrize("name", ["ties_nn_cal02", "ties_nn_cal02_ratio2",
                                  "ties_nn_cal02_replace", "ties_nn_nocal"])
def test_heavy_ties_cohort_end_to_end(name):
    # Three binary confounders with the paper's margins: 8 distinct scores, so every match
    # is decided by the tie rules (sorted position, lower score first). Full pipeline:
    # Cohort -> fit_propensity -> match_patients, against MatchIt.
    config = CONFIG.set_index("config").loc[name]
    frame = DATA["ties"].assign(os_months=12.0, death=1)
    cohort = validate_frame(frame, source="synthetic ties cohort")
    matched = match_patients(cohort, fit_propensity(cohort), ratio=int(config["ratio"]),
                             replace=bool(config["replace"]),
                             caliper_sd=None if np.isnan(config.caliper_sd) else 0.2)
    ref = PAIRS[(PAIRS.config == name) & PAIRS.control_id.notna()]
    if name in MATCHIT_BUG_CONFIGS:
        ref = ref[ref.slot == 1]   # MatchIt 4.5.1's round-2 bug; see above
        ours = matched.pairs_frame()
        assert _pairs(ours[ours.slot == 1]) == _pairs(ref)
        return
    assert _pairs(matched.pairs_frame()) == _pairs(ref)
    np.testing.assert_allclose(matched.weights, ROWS[ROWS.config == name].weight, atol=1e-12)


@pytest.mark.parametrize("name", ["bundled_nn_cal02", "bundled_nn_cal02_ratio2",
                                  "bundled_nn_cal02_replace"])
def test_bundled_cohort_pairs_identical_to_matchit(name):
    from causal_hcc.studies.yang2025 import load_bundled
    require_current_matching_fixtures()
    config = CONFIG.set_index("config").loc[name]
    cohort = load_bundled()
    matched = match_patients(cohort, fit_propensity(cohort), ratio=int(config["ratio"]),
                             replace=bool(config["replace"]))
    ps = PS[PS.model == "bundled_main"]
    r_mm = _r_match_matrix(name, ps.id.to_numpy(), ps.treat.to_numpy(), int(config["ratio"]))
    if np.array_equal(matched.match_matrix, r_mm):
        np.testing.assert_allclose(matched.weights, ROWS[ROWS.config == name].weight,
                                   atol=1e-12)
        return
    # Only MatchIt 4.5.1's round-2 index bug may explain a difference (see above).
    args = (ps.logit_ps.to_numpy(), ps.treat.to_numpy(), int(config["ratio"]), 0.2,
            bool(config["replace"]), "largest")
    assert int(config["ratio"]) > 1
    assert np.array_equal(_matchit_451_port(*args, faithful=True), r_mm)
    assert np.array_equal(_matchit_451_port(*args, faithful=False), matched.match_matrix)


# ---------------------------------------------------------------- hand-checkable cases
# Ten rows. Treated T1..T4 at logits 0.0, 0.1, 0.2, 2.0; controls C1..C6 at
# 0.05, 1.0, 2.05, 5.0, 6.0, 7.0.
HAND_SCORE = np.array([0.0, 0.1, 0.2, 2.0, 0.05, 1.0, 2.05, 5.0, 6.0, 7.0])
HAND_TREATED = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
HAND_IDS = np.array(["T1", "T2", "T3", "T4", "C1", "C2", "C3", "C4", "C5", "C6"])


def _hand(**options):
    return match_on_logit(HAND_SCORE, HAND_TREATED, patient_id=HAND_IDS, **options)


def _pair_ids(matched):
    p = matched.pairs_frame()
    return dict(zip(p.treated_id + "/" + p.slot.astype(str), p.control_id))


def test_hand_greedy_largest_first_without_caliper():
    # Largest first: T4 -> C3 (0.05); T3 -> C1 (0.15 < 0.8); T2 -> C2 (C1 taken, 0.9);
    # T1 -> C4 (the only controls left are 5, 6, 7).
    matched = _hand(caliper_sd=None)
    assert _pair_ids(matched) == {"T4/1": "C3", "T3/1": "C1", "T2/1": "C2", "T1/1": "C4"}
    assert matched.estimand == "ATT"


def test_hand_caliper_drops_treated_and_changes_estimand():
    sd = np.std(HAND_SCORE, ddof=1)          # 2.7226..., caliper 0.2 SD = 0.5445
    matched = _hand(caliper_sd=0.2)
    assert matched.caliper == pytest.approx(0.2 * sd)
    # T2 (nearest available C2 at 0.9) and T1 (C4 at 5.0) fall outside the caliper.
    assert _pair_ids(matched) == {"T4/1": "C3", "T3/1": "C1"}
    assert matched.unmatched_treated_ids == ("T1", "T2")
    assert matched.estimand == "ATT among matched treated"
    assert "ATT among matched treated" in matched.summary()
    assert list(matched.weights) == [0, 0, 1, 1, 1, 0, 1, 0, 0, 0]
    frame = matched.to_frame()
    assert frame.subclass.tolist()[:4] == [pd.NA, pd.NA, 1, 2]


def test_hand_smallest_first_differs():
    # Smallest first: T1 -> C1 (0.05); T2 -> C2 (0.9); T3 -> C3 (1.85); T4 -> C4 (3.0).
    matched = _hand(caliper_sd=None, order="smallest")
    assert _pair_ids(matched) == {"T1/1": "C1", "T2/1": "C2", "T3/1": "C3", "T4/1": "C4"}


def test_hand_with_replacement_weights():
    # T1, T2, T3 all take C1; T4 takes C3. Raw control weights 3 and 1, scaled to sum to
    # the 2 distinct controls: 3 * 2/4 = 1.5 and 1 * 2/4 = 0.5.
    matched = _hand(caliper_sd=None, replace=True)
    assert _pair_ids(matched) == {"T1/1": "C1", "T2/1": "C1", "T3/1": "C1", "T4/1": "C3"}
    np.testing.assert_allclose(matched.weights, [1, 1, 1, 1, 1.5, 0, 0.5, 0, 0, 0])
    assert (matched.subclass == -1).all()


def test_hand_one_to_two_weights():
    # 1:2 without replacement, largest first, in rounds: round 1 as above (C3, C1, C2, C4),
    # round 2: T4 -> C5 (4.0 vs nothing left below); T3, T2, T1 -> C6 ... only C5, C6 left.
    matched = _hand(caliper_sd=None, ratio=2)
    pairs = _pair_ids(matched)
    assert pairs["T4/2"] == "C5" and pairs["T3/2"] == "C6"
    assert "T2/2" not in pairs and "T1/2" not in pairs
    # Controls of T4 and T3 get 1/2 each, of T2 and T1 get 1; scaled by 6 / 4 = 1.5.
    np.testing.assert_allclose(matched.weights[4:], [0.75, 1.5, 0.75, 1.5, 0.75, 0.75])


def test_ties_go_to_the_lower_score():
    # Treated at 0.5, controls at 0.25 and 0.75 (exact tie): the lower score wins.
    matched = match_on_logit([0.5, 0.25, 0.75], [1, 0, 0], caliper_sd=None,
                             patient_id=["T", "low", "high"])
    assert matched.pairs_frame().control_id.tolist() == ["low"]


def test_floating_point_tie_goes_to_the_lower_score():
    # 0.9217.. - 0.9182.. and 0.9253.. - 0.9217.. are equal in exact arithmetic but differ
    # by 2e-16 in floating point (lalonde, NSW71): MatchIt and we call it a tie.
    score = [0.9217580974932476, 0.9182219302944928, 0.925294264692002]
    matched = match_on_logit(score, [1, 0, 0], caliper_sd=None, patient_id=["T", "lo", "hi"])
    assert matched.pairs_frame().control_id.tolist() == ["lo"]


def test_exact_matching_never_crosses_strata():
    strata = np.array(["a", "b", "a", "b", "a", "b", "a", "b", "a", "b"])
    matched = _hand(caliper_sd=None, exact_strata=strata)
    for t, c in zip(matched.pairs_frame().treated_id, matched.pairs_frame().control_id):
        assert strata[HAND_IDS == t][0] == strata[HAND_IDS == c][0]


def test_no_control_within_caliper_raises():
    with pytest.raises(NotEstimableError, match="caliper"):
        match_on_logit([0.0, 0.1, 5.0, 5.2], [1, 1, 0, 0], caliper_sd=0.01)


def test_pooled_sd_option():
    matched = _hand(caliper_sd=0.2, sd_denominator="pooled")
    sd = np.sqrt((np.var(HAND_SCORE[:4], ddof=1) + np.var(HAND_SCORE[4:], ddof=1)) / 2)
    assert matched.sd_value == pytest.approx(sd)
    assert matched.caliper == pytest.approx(0.2 * sd)
    assert "pooled within-arm SD" in matched.summary()


def test_random_order_needs_seed_and_is_reproducible():
    with pytest.raises(ValueError, match="seed"):
        _hand(order="random")
    a = _hand(order="random", seed=11, caliper_sd=None)
    b = _hand(order="random", seed=11, caliper_sd=None)
    assert np.array_equal(a.match_matrix, b.match_matrix)
    assert np.array_equal(a.weights, b.weights)


def test_optimal_matching_equals_brute_force():
    # Greedy (largest first) gives T4-C3, T3-C1, T2-C2, T1-C4: total 0.05+0.15+0.9+5.0.
    # Optimal: the assignment minimising the total distance over all 6P4 possibilities.
    matched = _hand(method="optimal", caliper_sd=None)
    t, c = HAND_SCORE[:4], HAND_SCORE[4:]
    best = min(sum(abs(t[i] - c[j]) for i, j in enumerate(p))
               for p in itertools.permutations(range(6), 4))
    assert matched.pairs_frame().distance.sum() == pytest.approx(best)
    greedy = _hand(caliper_sd=None)
    assert best <= greedy.pairs_frame().distance.sum() + 1e-12


def test_optimal_matching_respects_caliper():
    matched = _hand(method="optimal", caliper_sd=0.2)
    assert (matched.pairs_frame().distance <= matched.caliper).all()
    assert matched.n_matched_treated == 2


def test_matching_weights_function_by_hand():
    # Two treated, three controls: T1 matched to C1, C2 (1/2 each); T2 to C2.
    # Raw: C1 0.5, C2 1.5, C3 0; scaled to 2 distinct controls: C1 0.5, C2 1.5.
    mm = np.array([[2, 3], [3, -1]])
    w = matching_weights(mm, np.array([1, 1, 0, 0, 0]))
    np.testing.assert_allclose(w, [1, 1, 0.5, 1.5, 0])


# ---------------------------------------------------------------- cohort level
def _cohort():
    rng = np.random.default_rng(5)
    n = 90
    treated = np.r_[np.ones(35), np.zeros(55)].astype(int)
    frame = pd.DataFrame({
        "patient_id": [f"P{i:02d}" for i in range(n)], "local_therapy": treated,
        "os_months": np.round(rng.exponential(20, n) + 0.5, 1), "death": np.r_[1, 0].repeat(45),
        "ecog": rng.integers(0, 2, n), "intrahepatic_ccr": (rng.random(n) < 0.3 + 0.4 * treated),
        "vascular_invasion": (rng.random(n) < 0.5 - 0.3 * treated),
        "sex": rng.choice(["male", "female"], n)})
    frame["intrahepatic_ccr"] = frame.intrahepatic_ccr.astype(int)
    frame["vascular_invasion"] = frame.vascular_invasion.astype(int)
    frame.loc[[0, 89], "death"] = 1
    return validate_frame(frame, source="synthetic test cohort")


def test_match_patients_carries_audit_trail():
    cohort = _cohort()
    fit = fit_propensity(cohort)
    matched = match_patients(cohort, fit, exact=("sex",))
    assert matched.covariates == fit.covariates
    assert matched.exact == ("sex",)
    text = matched.summary()
    assert text.startswith(cohort.label)
    assert "caliper 0.2 SD of the logit PS" in text and "MatchIt std.caliper" in text
    sex = cohort.data.set_index("patient_id").sex
    pairs = matched.pairs_frame()
    assert (sex[pairs.treated_id].to_numpy() == sex[pairs.control_id].to_numpy()).all()
    assert list(matched.to_frame().columns) == ["patient_id", "treated", "logit_ps",
                                               "matched", "subclass", "weight"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        matched.ratio = 2


def test_match_patients_unknown_exact_column():
    cohort = _cohort()
    with pytest.raises(CohortError, match="'albumin'"):
        match_patients(cohort, fit_propensity(cohort), exact=("albumin",))


def test_match_patients_rejects_other_patients():
    cohort = _cohort()
    fit = fit_propensity(cohort)
    other = cohort.subset(np.arange(cohort.n) != 3, "without one patient")
    with pytest.raises(CohortError, match="other patients"):
        match_patients(other, fit)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="order"):
        _hand(order="closest")
    with pytest.raises(ValueError, match="caliper_sd"):
        _hand(caliper_sd=-1)
    with pytest.raises(ValueError, match="ratio"):
        _hand(ratio=0)
    with pytest.raises(ValueError, match="replacement"):
        _hand(method="optimal", replace=True)


# ---------------------------------------------------------------- properties
samples = st.integers(0, 100_000).map(np.random.default_rng)


@st.composite
def matching_problems(draw):
    rng = draw(samples)
    n = draw(st.integers(6, 80))
    treated = (rng.random(n) < draw(st.floats(0.2, 0.6))).astype(int)
    treated[:2] = [1, 0]
    score = np.round(rng.normal(treated * draw(st.floats(0, 2)), 1), draw(st.integers(1, 6)))
    return score, treated


@settings(max_examples=60, deadline=None)
@given(problem=matching_problems(), ratio=st.integers(1, 3),
       caliper=st.sampled_from([None, 0.1, 0.2, 0.5]), replace=st.booleans(),
       order=st.sampled_from(["largest", "smallest", "data", "random"]))
def test_matching_properties(problem, ratio, caliper, replace, order):
    score, treated = problem
    try:
        m = match_on_logit(score, treated, ratio=ratio, caliper_sd=caliper, replace=replace,
                           order=order, seed=3)
    except NotEstimableError:
        return
    used = m.match_matrix[m.match_matrix >= 0]
    if not replace:
        assert len(used) == len(set(used))                    # no control reused
    for i, t in enumerate(np.flatnonzero(treated == 1)):
        row = m.match_matrix[i][m.match_matrix[i] >= 0]
        assert len(row) == len(set(row))                      # distinct within a set
        if caliper is not None:
            assert np.all(np.abs(score[row] - score[t]) <= m.caliper)  # within caliper
    assert np.all(np.isfinite(m.weights)) and np.all(m.weights >= 0)
    assert np.all(m.weights[treated == 1] <= 1)
    assert m.weights[treated == 0].sum() == pytest.approx(m.n_matched_control)
    again = match_on_logit(score, treated, ratio=ratio, caliper_sd=caliper, replace=replace,
                           order=order, seed=3)
    assert np.array_equal(m.match_matrix, again.match_matrix)  # bit for bit
    assert np.array_equal(m.weights, again.weights)


@settings(max_examples=40, deadline=None)
@given(problem=matching_problems(), caliper=st.sampled_from([None, 0.2]))
def test_greedy_with_replacement_equals_brute_force(problem, caliper):
    score, treated = problem
    try:
        m = match_on_logit(score, treated, ratio=2, caliper_sd=caliper, replace=True)
    except NotEstimableError:
        return
    expected = _brute_force_nearest(score, treated, 2, m.caliper)
    for i, t in enumerate(np.flatnonzero(treated == 1)):
        got = [c for c in m.match_matrix[i] if c >= 0]
        assert sorted(np.abs(score[got] - score[t])) == pytest.approx(
            sorted(np.abs(score[expected[t]] - score[t])))


def _loop_weights_and_sets(match_matrix, treated, replace):
    """MatchIt's weights and matched sets written as a plain loop (the reference)."""
    weights = np.zeros(len(treated))
    sub = np.full(len(treated), -1)
    k = 0
    for i, t in enumerate(np.flatnonzero(treated == 1)):
        ctrl = match_matrix[i][match_matrix[i] >= 0]
        if len(ctrl):
            weights[t] = 1.0
            np.add.at(weights, ctrl, 1.0 / len(ctrl))
            k += 1
            if not replace:
                sub[t] = k
                sub[ctrl] = k
    control = treated == 0
    if weights[control].sum() > 0:
        weights[control] *= np.sum(weights[control] > 0) / weights[control].sum()
    return weights, sub


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), ratio=st.integers(1, 3), replace=st.booleans())
def test_vectorised_weights_and_sets_equal_the_loop(seed, ratio, replace):
    from causal_hcc.matching import _subclass
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 120))
    treated = np.zeros(n, dtype=int)
    treated[rng.choice(n, size=int(rng.integers(1, n)), replace=False)] = 1
    try:
        m = match_on_logit(rng.normal(size=n) + treated, treated, ratio=ratio,
                           replace=replace, caliper_sd=0.5)
    except NotEstimableError:
        return
    weights, sub = _loop_weights_and_sets(m.match_matrix, treated, replace)
    # Exact: same additions in the same order.
    np.testing.assert_array_equal(matching_weights(m.match_matrix, treated), weights)
    np.testing.assert_array_equal(_subclass(m.match_matrix, treated, replace), sub)
