"""causal_hcc.cox.fit_cox_many: many weight vectors at once, against fit_cox, R and lifelines.

R fixtures are those of tests/test_cox.py (tests/reference/survival.R, R 4.2.2, survival
3.5.3): R's ``veteran`` and a synthetic heavy-ties set (9 distinct times for 240 rows).
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_hcc.survival import cox_many as cox
from causal_hcc.survival import MANY_STATUS, CoxManyFit, fit_cox, fit_cox_many
from causal_hcc.errors import CausalHccWarning, NotEstimableError

REF = Path(__file__).parent / "reference"


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, float_precision="round_trip")   # exact times, as test_cox


VETERAN = _read(REF / "veteran.csv")
TIES = _read(REF / "ties_data.csv")
COX = _read(REF / "survival_cox.csv")
DATA = {"veteran": VETERAN, "ties": TIES}

# R model name -> weights / strata / ties (robust and cluster change neither coef nor se).
SPECS = {
    "efron": {}, "breslow": {"ties": "breslow"}, "efron_robust": {},
    "breslow_robust": {"ties": "breslow"}, "efron_weighted": {"w": True},
    "efron_weighted_robust": {"w": True},
    "breslow_weighted_robust": {"w": True, "ties": "breslow"},
    "efron_cluster": {}, "efron_weighted_cluster": {"w": True},
    "efron_strata": {"strata": "celltype"}, "efron_strata_robust": {"strata": "celltype"},
    "efron_strata_weighted_cluster": {"strata": "grp", "w": True}, "efron_trt_only": {},
}
R_MODELS = [(d, m) for (d, m) in COX.groupby(["dataset", "model"], sort=False).groups
            if d in DATA]


def _fit_quiet(*args, **kwargs):
    """fit_cox with its warnings recorded: (fit or None, warning categories)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = fit_cox(*args, **kwargs)
        except NotEstimableError:
            fit = None
        except np.linalg.LinAlgError:
            # fit_cox stops when the information turns singular while a coefficient
            # runs off to infinity; fit_cox_many reports that vector as failed.
            return "singular", set()
    return fit, {w.category.__name__ for w in caught}


# ----------------------------------------------------------------------------- R
@pytest.mark.parametrize("dataset,model", R_MODELS)
def test_each_vector_agrees_with_r_coxph(dataset, model):
    ref = COX[(COX.dataset == dataset) & (COX.model == model)]
    data, spec = DATA[dataset], SPECS[model]
    n = len(data)
    w_r = data["w"].to_numpy() if spec.get("w") else np.ones(n)
    # R's weight vector sits among random ones, to show the batch does not disturb it.
    rng = np.random.default_rng(11)
    weights = np.vstack([rng.exponential(1, (2, n)), w_r, rng.exponential(1, (2, n))])
    fit = fit_cox_many(data.time, data.status, data[list(ref.term)].to_numpy(float),
                       weights, strata=data[spec["strata"]] if "strata" in spec else None,
                       ties=spec.get("ties", "efron"))
    assert fit.status[2] == "ok" and fit.events == ref.events.iloc[0]
    # Coefficients rtol 1e-8 (R stops at eps = 1e-9 on the log-likelihood, which on these
    # data leaves its coefficients within ~2e-11 of the optimum: measured max 2.0e-11).
    np.testing.assert_allclose(fit.coef[2], ref.coef, rtol=1e-8)
    # Model-based SE rtol 1e-6 (measured max 4e-14); log-likelihood rtol 1e-10.
    np.testing.assert_allclose(fit.se_model[2], ref.se, rtol=1e-6)
    np.testing.assert_allclose(fit.loglik[2], ref.loglik.iloc[0], rtol=1e-10)
    np.testing.assert_allclose(fit.loglik_null[2], ref.loglik_null.iloc[0], rtol=1e-10)


# ----------------------------------------------------------------------------- fit_cox
@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("dataset", ["veteran", "ties"])
def test_bootstrap_replicates_equal_fit_cox_on_the_resampled_rows(dataset, ties):
    data = DATA[dataset]
    cols = ["trt", "karno", "age"] if dataset == "veteran" else ["x1", "x2", "arm"]
    n = len(data)
    rng = np.random.default_rng(5)
    draws = rng.integers(0, n, size=(8, n))
    mult = np.stack([np.bincount(d, minlength=n) for d in draws]).astype(float)
    case_w = data["w"].to_numpy()
    x = data[cols].to_numpy(float)
    fit = fit_cox_many(data.time, data.status, x, mult * case_w, copies=mult, ties=ties)
    for b, idx in enumerate(draws):
        ref = fit_cox(data.time.to_numpy()[idx], data.status.to_numpy()[idx], x[idx],
                      weights=case_w[idx], ties=ties)
        # A patient drawn k times is k tied rows (copies), as in the resampled data.
        # Coefficients rtol 1e-8, SEs rtol 1e-6 (same algorithm; sums in another order).
        np.testing.assert_allclose(fit.coef[b], ref.coef, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(fit.se_model[b], ref.se_model, rtol=1e-6)
        assert fit.iterations[b] == ref.iterations


def test_zero_weights_leave_rows_out_and_strata_are_shared():
    data = TIES
    x = data[["x1", "x2", "arm"]].to_numpy(float)
    rng = np.random.default_rng(8)
    weights = rng.exponential(1, (5, len(data))) * (rng.random((5, len(data))) < 0.7)
    fit = fit_cox_many(data.time, data.status, x, weights, strata=data.grp)
    for b, w in enumerate(weights):
        keep = w > 0
        ref = fit_cox(data.time[keep], data.status[keep], x[keep], weights=w[keep],
                      strata=data.grp[keep])
        np.testing.assert_allclose(fit.coef[b], ref.coef, rtol=1e-8)      # as above
        np.testing.assert_allclose(fit.se_model[b], ref.se_model, rtol=1e-6)


def test_hand_checkable_three_patients():
    # Times 1, 2, 3, all deaths, x = 0, 1, 0: b = log(2)/2 (see test_cox); the likelihood
    # does not change when every weight is multiplied by 3, so neither does b.
    fit = fit_cox_many([1, 2, 3], [1, 1, 1], [[0], [1], [0]], [[1, 1, 1], [3, 3, 3]])
    np.testing.assert_allclose(fit.coef[:, 0], np.log(2) / 2, rtol=1e-12)   # closed form
    u = np.sqrt(2)
    info = 2 * u / (2 + u) ** 2 + u / (1 + u) ** 2
    np.testing.assert_allclose(fit.se_model[0, 0], 1 / np.sqrt(info), rtol=1e-10)
    np.testing.assert_allclose(fit.se_model[1, 0], 1 / np.sqrt(3 * info), rtol=1e-10)


def test_efron_copies_differ_from_one_weighted_row():
    # Ten rows, one covariate, deaths tied at t = 2: weight 3 on a dying row is one event
    # of weight 3 (R's coxph); three copies are three tied events. Breslow: identical.
    time = np.array([1, 2, 2, 3, 4, 5, 6, 7, 8, 9.0])
    event = np.array([1, 1, 1, 0, 1, 1, 0, 1, 1, 0.0])
    x = np.array([0, 1, 0, 1, 0, 1, 1, 0, 0, 1.0])
    w = np.array([1, 3, 1, 1, 4 / 3, 1, 1, 1, 1, 1.0])
    copies = np.array([1, 3, 1, 1, 1, 1, 1, 1, 1, 1.0])
    rows = np.repeat(np.arange(10), copies.astype(int))
    per_copy = w / copies
    for ties in ("efron", "breslow"):
        fit = fit_cox_many(time, event, x, np.vstack([w, w]), copies=np.vstack([np.ones(10),
                                                                                copies]),
                           ties=ties)
        one_row = fit_cox(time, event, x, weights=w, ties=ties)
        repeated = fit_cox(time[rows], event[rows], x[rows], weights=per_copy[rows], ties=ties)
        np.testing.assert_allclose(fit.coef[0], one_row.coef, rtol=1e-10)    # rounding
        np.testing.assert_allclose(fit.coef[1], repeated.coef, rtol=1e-10)
        same = np.isclose(one_row.coef[0], repeated.coef[0], rtol=1e-6)
        assert same == (ties == "breslow")


# ----------------------------------------------------------------------------- lifelines
@pytest.mark.parametrize("dataset,weighted", [("veteran", False), ("veteran", True),
                                              ("ties", True)])
def test_agrees_with_lifelines(dataset, weighted):
    import lifelines
    data = DATA[dataset]
    cols = ["trt", "karno", "age", "prior"] if dataset == "veteran" else ["x1", "x2", "x3",
                                                                          "arm"]
    frame = data[["time", "status", *cols] + (["w"] if weighted else [])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")    # lifelines' own chatter is not ours to test
        cph = lifelines.CoxPHFitter().fit(frame, "time", "status",
                                          weights_col="w" if weighted else None,
                                          robust=weighted, fit_options={"precision": 1e-12})
    w = data["w"].to_numpy() if weighted else np.ones(len(data))
    fit = fit_cox_many(data.time, data.status, data[cols].to_numpy(float), w[None, :])
    # Coefficients rtol 1e-6 with lifelines' precision 1e-12 (measured: 6e-12 on veteran,
    # 5e-7 on the heavy-ties set). Its robust SE is not R's with tied times: not compared.
    np.testing.assert_allclose(fit.coef[0], cph.params_[cols].to_numpy(), rtol=1e-6)


# ----------------------------------------------------------------------------- properties
DIVERGED = 10.0     # |log HR| per unit of a 0-2 covariate: e^10, only without a finite MLE


def _diverging(ref, caught) -> bool:
    """fit_cox found no finite estimate (or a huge one): flagged, singular or unconverged."""
    return (isinstance(ref, str) or "SeparationWarning" in caught or not ref.converged
            or np.max(np.abs(ref.coef)) > DIVERGED)


@st.composite
def _tied_data(draw):
    n = draw(st.integers(6, 30))
    n_vec = draw(st.integers(1, 4))
    ints = st.lists(st.integers(0, 4), min_size=n, max_size=n)
    time = np.array(draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)), float)
    event = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), float)
    binary = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), float)
    other = np.array(draw(ints), float) / 2
    copies = np.array([draw(ints) for _ in range(n_vec)], float)
    scale = np.array([draw(st.lists(st.sampled_from([0.5, 1.0, 4 / 3, 2.5]), min_size=n,
                                    max_size=n)) for _ in range(n_vec)])
    ties = draw(st.sampled_from(["efron", "breslow"]))
    return time, event, np.column_stack([binary, other]), copies, scale, ties


@settings(max_examples=60, deadline=None)
@given(_tied_data())
def test_random_heavy_ties_equal_fit_cox_per_vector(case):
    time, event, x, copies, scale, ties = case
    fit = fit_cox_many(time, event, x, copies * scale, copies=copies, ties=ties)
    assert set(fit.status) <= set(MANY_STATUS)
    for b in range(len(copies)):
        rows = np.repeat(np.arange(len(time)), copies[b].astype(int))
        if rows.size == 0:                    # every weight 0: nothing to fit
            assert fit.status[b] == "no_events"
            continue
        ref, caught = _fit_quiet(time[rows], event[rows], x[rows], weights=scale[b][rows],
                                 ties=ties)
        status = fit.status[b]
        if ref is None:                       # fit_cox: no events, constant or collinear
            # fit_cox refuses before iterating; the batched fit iterates and may meet the
            # same degenerate data as a diverging coefficient: both say "no estimate".
            assert status in ("no_events", "not_estimable", "separation")
        elif _diverging(ref, caught):
            # No finite MLE: the coefficient runs off to infinity along a path rounding
            # can change, so one fit may stop and flag it infinite where the other meets
            # a singular information, or stops at another huge value. Both must diverge.
            assert status != "ok" or np.max(np.abs(fit.coef[b])) > DIVERGED
        else:
            assert status == "ok", (status, ref.coef)
            # Coefficients rtol 1e-8 (atol 1e-10 for estimates at 0); SE rtol 1e-6.
            np.testing.assert_allclose(fit.coef[b], ref.coef, rtol=1e-8, atol=1e-10)
            np.testing.assert_allclose(fit.se_model[b], ref.se_model, rtol=1e-6)
        if status != "ok":
            assert np.isnan(fit.coef[b]).all() and np.isnan(fit.se_model[b]).all()


@settings(max_examples=20, deadline=None)
@given(st.randoms(use_true_random=False))
def test_a_vectors_result_does_not_depend_on_its_batch(rnd):
    data = TIES
    x = data[["x1", "x2", "arm"]].to_numpy(float)
    rng = np.random.default_rng(rnd.randrange(2**32))
    weights = rng.exponential(1, (6, len(data))) * (rng.random((6, len(data))) < 0.8)
    whole = fit_cox_many(data.time, data.status, x, weights, strata=data.grp)
    pick = rnd.sample(range(6), rnd.randint(1, 5))
    part = fit_cox_many(data.time, data.status, x, weights[pick], strata=data.grp)
    # Bit for bit: every operation is per vector (no sums across vectors).
    np.testing.assert_array_equal(part.coef, whole.coef[pick])
    np.testing.assert_array_equal(part.se_model, whole.se_model[pick])


def test_small_batches_give_the_same_bits(monkeypatch):
    data = VETERAN
    x = data[["trt", "karno"]].to_numpy(float)
    weights = np.random.default_rng(3).exponential(1, (7, len(data)))
    whole = fit_cox_many(data.time, data.status, x, weights)
    monkeypatch.setattr(cox, "BATCH_BYTES", 1)        # one vector per batch
    split = fit_cox_many(data.time, data.status, x, weights)
    np.testing.assert_array_equal(split.coef, whole.coef)
    np.testing.assert_array_equal(split.iterations, whole.iterations)


# ----------------------------------------------------------------------------- trouble
def test_failed_vectors_are_nan_with_their_reason():
    time = np.arange(1.0, 11.0)
    event = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0.0])
    x = np.array([0, 0, 0, 1, 0, 1, 1, 0, 1, 1.0])
    ones = np.ones(10)
    no_events = np.r_[np.zeros(5), np.ones(5)]
    constant = np.where(x == 1, 0.0, 1.0)                    # only x = 0 rows left
    separated = np.where(time == 4, 0.0, 1.0)                # x = 1 rows: no events
    fit = fit_cox_many(time, event, x, np.vstack([ones, no_events, constant, separated]))
    assert list(fit.status) == ["ok", "no_events", "not_estimable", "separation"]
    assert np.isfinite(fit.coef[0]).all() and np.isnan(fit.coef[1:]).all()
    assert fit.n_failed == 3 and "separation 1" in fit.summary()
    slow = fit_cox_many(VETERAN.time, VETERAN.status, VETERAN[["karno"]].to_numpy(float),
                        np.ones((1, len(VETERAN))), max_iter=1)
    assert slow.status[0] == "not_converged" and np.isnan(slow.coef).all()


def test_monotone_likelihood_is_infinite_as_in_fit_cox():
    time = np.arange(1.0, 9.0)
    x = np.arange(8.0)[::-1] + 0.1 * np.sin(np.arange(8))   # as test_cox: beta -> infinity
    fit = fit_cox_many(time, np.ones(8), x, np.ones((2, 8)))
    assert list(fit.status) == ["infinite", "infinite"]


def test_result_is_frozen_and_tidy():
    fit = fit_cox_many(VETERAN.time, VETERAN.status, VETERAN[["trt", "karno"]].to_numpy(float),
                       np.ones((3, len(VETERAN))), names=["trt", "karno"])
    assert isinstance(fit, CoxManyFit)
    frame = fit.to_frame()
    assert list(frame.columns) == ["replicate", "status", "iterations", "loglik", "coef_trt",
                                   "se_trt", "coef_karno", "se_karno"]
    with pytest.raises((AttributeError, TypeError)):
        fit.coef = None
    with pytest.raises(ValueError):
        fit.coef[0, 0] = 1.0                                 # read-only arrays


@pytest.mark.parametrize("kwargs,match", [
    (dict(weights=np.ones((2, 4))), "shape"),
    (dict(weights=-np.ones((1, 3))), ">= 0"),
    (dict(weights=np.ones((1, 3)), copies=np.array([[1, 0, 1]])), "exactly where"),
    (dict(weights=np.ones((1, 3)), copies=np.array([[1, 1.5, 1]])), "whole numbers"),
    (dict(weights=np.ones((1, 3)), ties="exact"), "ties must be"),
])
def test_bad_input_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_cox_many([1, 2, 3], [1, 0, 1], [0, 1, 1], **kwargs)


def test_no_warnings_escape():
    # Trouble is reported in status, never as a warning (bootstrap loops stay quiet).
    with warnings.catch_warnings():
        warnings.simplefilter("error", CausalHccWarning)
        warnings.simplefilter("error", RuntimeWarning)
        fit_cox_many(np.arange(1.0, 9.0), np.ones(8), np.arange(8.0)[::-1], np.ones((1, 8)))


# ----------------------------------------------------------------------------- robust SE
ROBUST_MODELS = [(d, m) for (d, m) in R_MODELS
                 if ("robust" in m or "cluster" in m) and "strata" not in m]


@pytest.mark.parametrize("dataset,model", ROBUST_MODELS)
def test_robust_and_cluster_se_agree_with_r_coxph(dataset, model):
    """fit_cox_many(robust=True, cluster=): R coxph(..., robust = TRUE[, cluster = cl]),
    R's vector among random ones (robust SE rtol 1e-6: the sandwich at the converged
    coefficient, which sits within ~2e-11 of R's)."""
    ref = COX[(COX.dataset == dataset) & (COX.model == model)]
    data, spec = DATA[dataset], SPECS[model]
    n = len(data)
    w_r = data["w"].to_numpy() if spec.get("w") else np.ones(n)
    weights = np.vstack([np.random.default_rng(2).exponential(1, (2, n)), w_r])
    cluster = data["cl"].to_numpy().astype(int) if "cluster" in model else None
    fit = fit_cox_many(data.time, data.status, data[list(ref.term)].to_numpy(float),
                       weights, ties=spec.get("ties", "efron"), robust=True, cluster=cluster)
    assert fit.status[2] == "ok"
    assert fit.robust_type == ("cluster_robust" if cluster is not None else "robust")
    np.testing.assert_allclose(fit.se_robust[2], ref.robust_se, rtol=1e-6)


def test_robust_se_equals_fit_cox_per_vector_with_zero_weights_and_clusters():
    """Each vector's robust / cluster-robust SE equals fit_cox's on its rows with positive
    weight (rtol 1e-12: the same sandwich, summed in another order); rows of weight 0,
    whatever their cluster, change nothing."""
    rng = np.random.default_rng(3)
    n = 60
    time = rng.integers(1, 20, n).astype(float)       # heavy ties
    event = rng.binomial(1, 0.6, n).astype(float)
    x = np.column_stack([rng.binomial(1, 0.5, n), rng.normal(size=n)])
    weights = rng.uniform(0.2, 2, (5, n)) * (rng.uniform(size=(5, n)) > 0.2)
    clusters = rng.integers(0, 15, (5, n))
    for cluster in (None, clusters):
        fit = fit_cox_many(time, event, x, weights, robust=True, cluster=cluster)
        for b in range(5):
            keep = weights[b] > 0
            ref = fit_cox(time[keep], event[keep], x[keep], weights=weights[b][keep],
                          robust=True, cluster=None if cluster is None else cluster[b][keep])
            np.testing.assert_allclose(fit.se_robust[b], ref.se, rtol=1e-12)
            np.testing.assert_allclose(fit.coef[b], ref.coef, rtol=1e-12)
    assert fit_cox_many(time, event, x, weights).se_robust is None
    with pytest.raises(ValueError, match="cluster"):
        fit_cox_many(time, event, x, weights, robust=True, cluster=-clusters)
