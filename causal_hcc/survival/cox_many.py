"""Many Cox fits at once: one data set under many weight vectors (bootstrap replicates).

:func:`fit_cox_many` stacks the weight vectors along a new axis of the risk-set sums of
:mod:`causal_hcc.survival.cox` (one sort of the data for all of them); each row agrees
with :func:`~causal_hcc.survival.cox.fit_cox` on the same weights (tests/test_cox_many.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc.survival.cox import EPS, LOGLIK_TOL, STEP_TOL, TIES, TOLER_INF, check_inputs
from causal_hcc.survival.cox_many_robust import cluster_codes, score_residuals_many
from causal_hcc.survival.risk_sets import RiskSets, group_codes, risk_sets, timefix


# ----------------------------------------------------------------------------- many fits
BATCH_BYTES = 2 ** 27           # working memory of one batch of weight vectors (~128 MB)
MANY_STATUS = {
    "ok": "converged",
    "no_events": "no events with positive weight",
    "not_estimable": "a covariate is constant or collinear among the rows with positive "
                     "weight (as fit_cox's NotEstimableError)",
    "separation": "a binary covariate has no events with positive weight at one of its "
                  "levels: its coefficient is infinite (fit_cox's SeparationWarning)",
    "not_converged": "Newton-Raphson did not converge in max_iter iterations (or the "
                     "information matrix became singular)",
    "infinite": "the coefficient may be infinite (R's toler.inf check, as fit_cox)",
}


@dataclass(frozen=True)
class CoxManyFit:
    """Cox models of one data set under many weight vectors (row b: weight vector b).

    Attributes
    ----------
    names : tuple of str
        Covariate names.
    coef : ndarray (B, p)
        Log hazard ratios; NaN where ``status`` is not ``"ok"``.
    se_model : ndarray (B, p)
        Model-based SE (inverse information, R's ``se(coef)`` without ``robust``); NaN
        where ``status`` is not ``"ok"``.
    loglik, loglik_null : ndarray (B,)
        Partial log-likelihood at the estimate (NaN when not ok) and at zero.
    iterations : ndarray (B,) of int
        Newton-Raphson iterations (0 when not attempted).
    status : ndarray (B,) of str
        ``"ok"`` or why the row is NaN: a key of :data:`MANY_STATUS`.
    n, events : int
        Rows and events of the data (unweighted; a row with weight 0 in a replicate is
        left out of that replicate's fit).
    ties : {"efron", "breslow"}
    se_robust : ndarray (B, p) or None
        With ``robust=True``: the robust (``robust_type`` "robust") or cluster-robust
        ("cluster_robust") SE, as fit_cox's; NaN where ``status`` is not ``"ok"``.
    """

    names: tuple
    coef: np.ndarray
    se_model: np.ndarray
    loglik: np.ndarray
    loglik_null: np.ndarray
    iterations: np.ndarray
    status: np.ndarray
    n: int
    events: int
    ties: str
    se_robust: np.ndarray | None = None
    robust_type: str = ""

    @property
    def ok(self) -> np.ndarray:
        """True where the fit converged to a finite estimate."""
        return self.status == "ok"

    @property
    def n_failed(self) -> int:
        return int(np.sum(~self.ok))

    def to_frame(self) -> pd.DataFrame:
        """One row per weight vector: status, iterations, log-likelihood, coef_*, se_*."""
        frame = pd.DataFrame({"replicate": np.arange(len(self.status)), "status": self.status,
                              "iterations": self.iterations, "loglik": self.loglik})
        for j, name in enumerate(self.names):
            frame[f"coef_{name}"] = self.coef[:, j]
            frame[f"se_{name}"] = self.se_model[:, j]
        return frame

    def summary(self) -> str:
        """Counts of successful and failed fits, with the reasons."""
        failed = {s: int(np.sum(self.status == s)) for s in MANY_STATUS if s != "ok"}
        reasons = "; ".join(f"{k} {v}: {MANY_STATUS[k]}" for k, v in failed.items() if v)
        return (f"{len(self.status)} Cox models ({self.ties} ties, model-based SE; "
                f"covariates {', '.join(self.names)}): {int(self.ok.sum())} converged, "
                f"{self.n_failed} NaN" + (f" ({reasons})." if reasons else "."))


@dataclass(frozen=True)
class _Layout:
    """The sorted data and tie structure (RiskSets, unit weights) shared by every weight
    vector, with what the batched sums need besides."""

    rs: RiskSets
    xx: np.ndarray            # products x_j x_k for j <= k (n, p(p+1)/2)
    pairs: tuple              # the (j, k) of each column of xx
    group_start: np.ndarray   # first entry of each group in rs.dead
    binary: tuple             # (column, level value) pairs of two-valued covariates


def _layout(rs: RiskSets) -> _Layout:
    p = rs.x.shape[1]
    pairs = tuple((j, k) for j in range(p) for k in range(j, p))
    binary = []
    for j in range(p):
        levels = np.unique(rs.x[:, j])
        if levels.size == 2:
            binary += [(j, level) for level in levels]
    return _Layout(rs, np.column_stack([rs.x[:, j] * rs.x[:, k] for j, k in pairs]), pairs,
                   np.searchsorted(rs.dead_group, np.arange(rs.group_block.size)),
                   tuple(binary))


@dataclass(frozen=True)
class _Slots:
    """The Efron (or Breslow) denominator terms of every weight vector, one after another.

    With weight vector b, event group g has d_bg events (copies with positive weight)
    and so d_bg Efron slots k = 0..d_bg-1 (fraction k/d_bg, weight dw_bg/d_bg), or one
    Breslow slot (weight dw_bg). Slots are stored by vector, then group, then k.
    """

    group: np.ndarray
    frac: np.ndarray
    mw: np.ndarray
    start: np.ndarray         # offsets: slots of vector b are start[b]:start[b + 1]

    def subset(self, reps: np.ndarray):
        """(position in ``reps``, group, frac, mw) of the slots of vectors ``reps``."""
        count = self.start[reps + 1] - self.start[reps]
        local = np.repeat(np.arange(reps.size), count)
        offset = np.repeat(self.start[reps] - (np.cumsum(count) - count), count)
        pos = offset + np.arange(local.size)
        return local, self.group[pos], self.frac[pos], self.mw[pos]


def _slots(deaths: np.ndarray, death_w: np.ndarray, ties: str) -> _Slots:
    n_vec, n_groups = deaths.shape
    d = deaths.ravel()
    count = d if ties == "efron" else (d > 0).astype(np.int64)
    nz = np.flatnonzero(count)
    per = count[nz]
    cell = np.repeat(nz, per)
    if ties == "efron":
        k = np.arange(cell.size) - np.repeat(np.cumsum(per) - per, per)
        frac = k / np.repeat(per, per)
        mw = np.repeat(death_w.ravel()[nz] / per, per)
    else:
        frac = np.zeros(cell.size)
        mw = death_w.ravel()[nz]
    rep = cell // n_groups
    return _Slots(cell % n_groups, frac, mw, np.searchsorted(rep, np.arange(n_vec + 1)))


@dataclass(frozen=True)
class _Chunk:
    """Weight vectors of one batch, sorted like the data, and their constant parts."""

    weight: np.ndarray        # (B, n)
    slots: _Slots
    wx_dead: np.ndarray       # (B, p): sum over events of w x
    n_groups: int


def _many_terms(beta: np.ndarray, reps: np.ndarray, lay: _Layout, ch: _Chunk,
                residuals: bool = False):
    """Log-likelihood, score and information of the vectors ``reps`` at ``beta`` (k, p).

    The sums of likelihood_terms, with a leading axis over vectors. Every operation is
    elementwise, a reduction or cumulative sum along the row axis, or a bincount over one
    vector's slots in order, so a vector's numbers do not depend on which other vectors
    share the batch (results are the same for any batching).
    """
    rs = lay.rs
    k, p = beta.shape
    n_groups = ch.n_groups
    w = ch.weight[reps]
    eta = beta[:, :1] * rs.x[:, 0]
    for j in range(1, p):
        eta += beta[:, j:j + 1] * rs.x[:, j]
    # Shift by the largest eta among rows in the fit: ratios are unchanged, no overflow.
    shift = np.max(np.where(w > 0, eta, -np.inf), axis=1)
    risk = np.exp(eta - shift[:, None])
    wr = w * risk
    s_all = _rev_gather(wr, rs)
    a_all = np.stack([_rev_gather(wr * rs.x[:, j], rs) for j in range(p)], axis=-1)
    wr_dead = _columns(wr, rs.dead)
    s_dead = np.add.reduceat(wr_dead, lay.group_start, axis=1)
    a_dead = np.stack([np.add.reduceat(wr_dead * rs.x[rs.dead, j], lay.group_start, axis=1)
                       for j in range(p)], axis=-1)
    local, group, frac, mw = ch.slots.subset(reps)
    cell = local * n_groups + group
    den = s_all.ravel()[cell] - frac * s_dead.ravel()[cell]
    mean = (a_all.reshape(-1, p)[cell] - frac[:, None] * a_dead.reshape(-1, p)[cell]) \
        / den[:, None]
    loglik = _row_sum(_columns(w, rs.dead) * (_columns(eta, rs.dead) - shift[:, None])) \
        - np.bincount(local, weights=mw * np.log(den), minlength=k)
    score = ch.wx_dead[reps] - np.stack(
        [np.bincount(local, weights=mw * mean[:, j], minlength=k) for j in range(p)], axis=1)
    h = mw / den
    full = np.bincount(cell, weights=h, minlength=k * n_groups).reshape(k, n_groups)
    part = np.bincount(cell, weights=frac * h, minlength=k * n_groups).reshape(k, n_groups)
    cum = np.zeros((k, n_groups + 1))
    np.cumsum(full, axis=1, out=cum[:, 1:])
    # Each row's share of the hazard increments of the risk sets it belongs to (as
    # row_cumulative): all groups of its stratum up to its own time, less the Efron
    # fraction at its own event time.
    row_h = cum[:, rs.row_hi] - cum[:, rs.row_lo]
    row_h[:, rs.dead] -= part[:, rs.dead_group]
    v = wr * row_h
    info = np.empty((k, p, p))
    for col, (j, l) in enumerate(lay.pairs):
        info[:, j, l] = info[:, l, j] = _row_sum(v * lay.xx[:, col]) - np.bincount(
            local, weights=mw * mean[:, j] * mean[:, l], minlength=k)
    if residuals:
        return loglik, score, info, score_residuals_many(risk, row_h, cum, part, cell, h,
                                                     frac, mean, k, n_groups, rs)
    return loglik, score, info


def _columns(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """values[:, index] in C order (fancy indexing along axis 1 returns Fortran order)."""
    return np.ascontiguousarray(values[:, index])


def _row_sum(values: np.ndarray) -> np.ndarray:
    """Sum of each row, pairwise along the row: for a C-ordered array numpy sums each row
    the same way whatever the number of rows (a Fortran-ordered one is summed column by
    column, which would make a vector's result depend on its batch)."""
    return np.ascontiguousarray(values).sum(axis=1)


def _rev_gather(values: np.ndarray, rs: RiskSets) -> np.ndarray:
    """Per vector, the sum over each event group's risk set (rows from its time on)."""
    c = np.cumsum(values[:, ::-1], axis=1)[:, ::-1]
    n = values.shape[1]
    end = np.where(rs.group_end < n, c[:, np.minimum(rs.group_end, n - 1)], 0.0)
    return c[:, rs.group_first] - end


def _solve_many(info: np.ndarray, score: np.ndarray):
    """Newton steps info^-1 score per vector; NaN rows where the information is singular."""
    try:
        return np.linalg.solve(info, score[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.full_like(score, np.nan)
        for i in range(score.shape[0]):
            try:
                out[i] = np.linalg.solve(info[i], score[i])
            except np.linalg.LinAlgError:
                pass
        return out


def _not_estimable_many(info0: np.ndarray) -> np.ndarray:
    """fit_cox's estimability check (leading sub-matrices of the information at 0)."""
    bad = np.zeros(info0.shape[0], dtype=bool)
    for j in range(info0.shape[1]):
        sub = info0[:, :j + 1, :j + 1]
        eig = np.linalg.eigvalsh(sub)
        scale = np.maximum(np.max(np.abs(np.diagonal(sub, axis1=1, axis2=2)), axis=1), 1e-300)
        bad |= ~(eig.min(axis=1) > 1e-10 * scale)
    return bad


def _newton_many(reps, lay, ch, max_iter, out) -> None:
    """Newton-Raphson with step halving for each vector of ``reps``, as fit_cox's newton.

    Fills ``out`` (coef, loglik, iterations, status, and the final score and information).
    Each vector stops on its own criterion; the batch shrinks as vectors converge.
    """
    rs = lay.rs
    beta = np.zeros((reps.size, rs.x.shape[1]))
    loglik, score, info = _many_terms(beta, reps, lay, ch)
    out["loglik_null"][reps] = loglik
    bad = _not_estimable_many(info)
    out["status"][reps[bad]] = "not_estimable"
    for j, level in lay.binary:
        at = rs.x[rs.dead, j] == level
        no_events = ~np.any(ch.weight[np.ix_(reps, rs.dead[at])] > 0, axis=1)
        out["status"][reps[~bad & no_events]] = "separation"
        bad |= no_events
    keep = ~bad
    active, beta, loglik, score, info = (reps[keep], beta[keep], loglik[keep], score[keep],
                                         info[keep])
    for it in range(1, max_iter + 1):
        if active.size == 0:
            break
        new = beta + _solve_many(info, score)
        ll_new, sc_new, in_new = _many_terms(new, active, lay, ch)
        worse = ~(np.isfinite(ll_new) & (ll_new >= loglik - 1e-12 * np.abs(loglik)))
        halvings = 0
        while worse.any() and halvings < 40:
            i = np.flatnonzero(worse)
            new[i] = (beta[i] + new[i]) / 2          # step halving, as R's coxfit6
            ll_new[i], sc_new[i], in_new[i] = _many_terms(new[i], active[i], lay, ch)
            worse[i] = ~(np.isfinite(ll_new[i]) & (ll_new[i] >= loglik[i] - 1e-12
                                                    * np.abs(loglik[i])))
            halvings += 1
        with np.errstate(invalid="ignore"):
            small_step = np.all(np.abs(new - beta) <= STEP_TOL * (1 + np.abs(new)), axis=1)
            flat = np.abs(ll_new - loglik) <= LOGLIK_TOL * np.abs(ll_new)
        done = small_step | flat
        beta, loglik, score, info = new, ll_new, sc_new, in_new
        out["iterations"][active] = it
        for name, value in (("coef", beta), ("loglik", loglik), ("score", score),
                            ("info", info)):
            out[name][active[done]] = value[done]
        out["status"][active[done]] = "ok"
        keep = ~done
        active, beta, loglik, score, info = (active[keep], beta[keep], loglik[keep],
                                             score[keep], info[keep])
    out["status"][active] = "not_converged"


def _robust_var(beta, reps, lay: _Layout, ch: _Chunk, codes) -> np.ndarray:
    """Robust sandwich variance D'D of the vectors ``reps`` at their estimates ``beta``:
    D the weighted dfbeta residuals (score residuals x model variance x weight), summed
    within clusters (``codes``, sorted like the data), as fit_cox's ``_variance``."""
    *_, info, resid = _many_terms(beta, reps, lay, ch, residuals=True)
    w = ch.weight[reps]
    dfb = np.einsum("knp,kpq->knq", resid, _invert_many(info)) * w[:, :, None]
    dfb[w == 0] = 0.0          # rows outside a fit (their residuals are not defined)
    k, n, p = dfb.shape
    c = codes[reps]
    size = int(c.max()) + 1
    cells = (np.arange(k)[:, None] * size + c).ravel()
    summed = np.stack([np.bincount(cells, weights=dfb[:, :, j].ravel(), minlength=k * size)
                       for j in range(p)], axis=-1).reshape(k, size, p)
    return np.einsum("kcp,kcq->kpq", summed, summed)


def _weight_matrix(weights, copies, n: int):
    w = np.asarray(weights, dtype=float)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.shape[1] != n:
        raise ValueError(f"weights must have shape (B, {n}) (one weight vector per row), "
                         f"not {np.shape(weights)}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and >= 0 (0 leaves a row out of that fit)")
    if copies is None:
        return w, (w > 0).astype(float)
    c = np.asarray(copies, dtype=float).reshape(w.shape)
    if not (np.isfinite(c).all() and (c >= 0).all() and (c == np.round(c)).all()):
        raise ValueError("copies must be non-negative whole numbers")
    if ((c > 0) != (w > 0)).any():
        raise ValueError("copies must be > 0 exactly where weights are > 0")
    return w, c


def fit_cox_many(time, event, covariates, weights, *, copies=None, strata=None,
                 ties: str = "efron", names=None, max_iter: int = 50,
                 robust: bool = False, cluster=None) -> CoxManyFit:
    """Fit one Cox model for each of many weight vectors (e.g. bootstrap replicates).

    Parameters
    ----------
    time : array_like, shape (n,)
        Follow-up times (months); times equal up to floating-point noise are tied, as
        in R (``timefix``, applied once to all n rows).
    event : array_like, shape (n,)
        1 = event (death), 0 = censored.
    covariates : array_like, shape (n, p)
        Design matrix, already coded (no intercept).
    weights : array_like, shape (B, n)
        One weight vector per row: case weights >= 0; rows with weight 0 are left out
        of that fit. A bootstrap replicate is its multiplicity (times drawn) times any
        matching or IPTW weight, over the original n rows.
    copies : array_like, shape (B, n), optional
        How many tied rows each weighted row stands for (> 0 exactly where the weight
        is > 0). Default 1: each row is one row weighted as R's ``coxph(weights = )``.
        For bootstrap replicates pass the multiplicity: under Efron's approximation a
        patient drawn k times is k tied events, not one event of weight k (Breslow is
        the same either way).
    strata : array_like, optional
        Stratum labels (shared by every vector).
    ties : {"efron", "breslow"}
    names : sequence of str, optional
    max_iter : int
        Newton-Raphson iterations per vector before it is reported "not_converged".
    robust : bool
        Also the robust sandwich SE of each fit (``se_robust``): ``D'D`` from the
        weighted dfbeta residuals, as ``fit_cox(robust=True)`` (R ``coxph(..., weights,
        robust = TRUE)``); not with ``copies``.
    cluster : array_like of int, shape (n,) or (B, n), optional
        With ``robust``: cluster codes (>= 0; e.g. matched sets), per vector or shared;
        dfbeta summed within clusters, as ``fit_cox(cluster=)``. Default: each row its
        own cluster. Rows with weight 0 are in no fit, whatever their code.

    Returns
    -------
    CoxManyFit
        coef (B, p), model-based SEs, log-likelihoods, iterations, and a status per
        vector; no warnings: trouble is a NaN row with its ``status``.

    Notes
    -----
    Row b equals ``fit_cox(time[w_b > 0], event[w_b > 0], covariates[w_b > 0],
    weights=w_b[w_b > 0])`` (R ``coxph(..., weights = w)``, its ``se(coef)``) to
    rounding error, or, with ``copies``, the fit on the rows repeated ``copies`` times
    with the per-copy weights. The data are sorted once; for all vectors at once the
    risk-set sums are cumulative sums along the sorted axis and the Newton-Raphson
    steps (with step halving, R's and fit_cox's convergence rules, per vector) are
    batched. A vector is NaN, with its ``status``, when it has no events, a covariate
    is constant or collinear, a two-valued covariate has no events at one level, the
    iterations do not converge, or a coefficient is infinite. Work per iteration is
    O(B n p^2); vectors are processed in batches of at most :data:`BATCH_BYTES` of
    working memory, and a vector's result does not depend on the batching.

    References
    ----------
    Therneau & Grambsch (2000), Modeling Survival Data, ch. 3 and 7.
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, not {ties!r}")
    time, event, x, _, names = check_inputs(time, event, covariates, None, names)
    n, p = x.shape
    if robust and copies is not None:
        raise ValueError("robust SEs of weighted fits with copies are not defined here")
    w_all, c_all = _weight_matrix(weights, copies, n)
    codes = cluster_codes(cluster, w_all.shape[0], n) if robust else None
    rs = risk_sets(timefix(time), event, x, np.ones(n), group_codes(strata, n), ties)
    lay = _layout(rs)
    n_vec = w_all.shape[0]
    out = {"coef": np.full((n_vec, p), np.nan), "loglik": np.full(n_vec, np.nan),
           "loglik_null": np.full(n_vec, np.nan), "score": np.full((n_vec, p), np.nan),
           "info": np.full((n_vec, p, p), np.nan), "iterations": np.zeros(n_vec, dtype=int),
           "status": np.full(n_vec, "no_events", dtype="<U13"),
           "var_robust": np.full((n_vec, p, p), np.nan)}
    batch = max(1, BATCH_BYTES // (8 * n * (2 * p + 10)))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for first in range(0, n_vec, batch):
            _fit_batch(slice(first, first + batch), w_all, c_all, lay, ties, max_iter, out,
                       None if codes is None else codes[first:first + batch][:, rs.order])
    return _many_result(out, names, n, int(rs.event.sum()), ties, robust,
                        cluster is not None)


def _fit_batch(rows: slice, w_all, c_all, lay: _Layout, ties, max_iter, out,
               codes=None) -> None:
    """Sort one batch's weight vectors like the data and fit them (results into out)."""
    rs = lay.rs
    part = {k: v[rows] for k, v in out.items()}   # views: filled in place
    if rs.dead.size == 0:
        return
    w = np.ascontiguousarray(w_all[rows][:, rs.order])
    w_dead = _columns(w, rs.dead)
    death_w = np.add.reduceat(w_dead, lay.group_start, axis=1)
    deaths = np.add.reduceat(_columns(c_all[rows][:, rs.order], rs.dead), lay.group_start,
                             axis=1)
    wx_dead = np.stack([_row_sum(w_dead * rs.x[rs.dead, j]) for j in range(rs.x.shape[1])],
                       axis=1)
    ch = _Chunk(w, _slots(np.rint(deaths).astype(np.int64), death_w, ties), wx_dead,
                lay.group_start.size)
    reps = np.flatnonzero(_row_sum(w_dead) > 0)
    if reps.size:
        part["status"][reps] = "ok"
        _newton_many(reps, lay, ch, max_iter, part)
        ok = np.flatnonzero(part["status"] == "ok")
        if codes is not None and ok.size:
            part["var_robust"][ok] = _robust_var(part["coef"][ok], ok, lay, ch, codes)


def _many_result(out, names, n, events, ties, robust=False, clustered=False) -> CoxManyFit:
    ok = out["status"] == "ok"
    p = len(names)
    var = np.full((ok.size, p, p), np.nan)
    if ok.any():
        var[ok] = _invert_many(out["info"][ok])
        # As fit_cox: the Newton step still to take is large relative to the coefficient.
        step = np.abs((out["score"][:, :, None] * var).sum(axis=1))
        infinite = ok & np.any((step > EPS) & (step > TOLER_INF * np.abs(out["coef"])), axis=1)
        out["status"][infinite] = "infinite"
        # A variance that is not positive: the information is not positive definite.
        ok &= ~infinite & np.all(np.diagonal(var, axis1=1, axis2=2) > 0, axis=1)
        out["status"][~ok & (out["status"] == "ok")] = "not_converged"
    with np.errstate(invalid="ignore"):
        se = np.where(ok[:, None], np.sqrt(np.diagonal(var, axis1=1, axis2=2)), np.nan)
    coef = np.where(ok[:, None], out["coef"], np.nan)
    loglik = np.where(ok, out["loglik"], np.nan)
    arrays = [coef, se, loglik, out["loglik_null"], out["iterations"], out["status"]]
    se_robust = None
    if robust:
        with np.errstate(invalid="ignore"):
            se_robust = np.where(ok[:, None], np.sqrt(np.diagonal(
                out["var_robust"], axis1=1, axis2=2)), np.nan)
        arrays.append(se_robust)
    for a in arrays:
        a.setflags(write=False)
    return CoxManyFit(tuple(names), *arrays[:6], n=n, events=events, ties=ties,
                      se_robust=se_robust, robust_type=("cluster_robust" if clustered
                                                        else "robust") if robust else "")


def _invert_many(info: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(info)
    except np.linalg.LinAlgError:
        out = np.full_like(info, np.nan)
        for i in range(info.shape[0]):
            try:
                out[i] = np.linalg.inv(info[i])
            except np.linalg.LinAlgError:
                pass
        return out
