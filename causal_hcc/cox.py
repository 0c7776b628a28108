"""Cox proportional-hazards regression in numpy, matching R's ``survival::coxph``.

:func:`fit_cox` maximises the partial likelihood by Newton-Raphson (Efron or Breslow
ties, case weights, strata) and reports the model-based variance (inverse information),
the robust sandwich (``coxph(robust = TRUE)``) or the cluster-robust sandwich
(``coxph(cluster = )``). :func:`fit_cox_many` fits the same model for many weight
vectors at once (bootstrap replicates, re-weighted samples) on one sorted copy of the
data. :func:`cox_zph` is the proportional-hazards score test of survival 3.x's
``cox.zph``. The paper's Table 3 models are in :mod:`causal_hcc.cox_table`.

Every risk-set quantity is a sum over the patients still at risk. After one sort by
(stratum, time) these are reverse cumulative sums, so a fit costs O(n log n) for the
sort and O(n p^2) per iteration, the robust variance included (score residuals are
cumulative sums too): the same code serves registry-sized cohorts. :func:`fit_cox_many`
stacks the weight vectors along a new axis of the same sums.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from causal_hcc._numeric import z_value
from causal_hcc.errors import ConvergenceWarning, NotEstimableError, SeparationWarning

TIES = ("efron", "breslow")
SEPARATION_REMEDY = ("Remedy: drop the covariate or merge its levels, or fit a "
                     "Firth-penalised Cox model (e.g. R coxphf), which gives a finite "
                     "estimate.")
EPS = 1e-9                      # R coxph.control(eps), used as R does for the infinity check
TOLER_INF = np.sqrt(EPS)        # R coxph.control(toler.inf): flag for infinite coefficients
# Convergence is declared tighter than R's (relative log-likelihood change 1e-9), so that
# coefficients agree with R's to ~1e-10 whether or not R stopped one step early.
STEP_TOL = 1e-10                # max |step| relative to 1 + |beta|
LOGLIK_TOL = 1e-13              # relative change of the log-likelihood
TIMEFIX_TOL = np.sqrt(np.finfo(float).eps)   # R aeqSurv tolerance


# ----------------------------------------------------------------------------- data
def timefix(time: np.ndarray) -> np.ndarray:
    """Merge times that differ only by floating-point noise, as R's ``aeqSurv``.

    R's ``coxph``, ``survfit`` and ``survdiff`` (``timefix = TRUE``) treat two times
    as tied when they differ by at most ``sqrt(.Machine$double.eps)`` absolutely or
    relative to the mean absolute time; each is replaced by the smallest of its run.
    """
    time = np.asarray(time, dtype=float)
    uniq = np.unique(time[np.isfinite(time)])
    if uniq.size < 2:
        return time
    gap = np.diff(uniq)
    tied = (gap <= TIMEFIX_TOL) | (gap / np.mean(np.abs(uniq)) <= TIMEFIX_TOL)
    if not tied.any():
        return time
    cuts = uniq[np.r_[True, ~tied]]
    return cuts[np.searchsorted(cuts, time, side="right") - 1]


def _codes(values, n: int) -> np.ndarray:
    """Integer codes 0..k-1 of a grouping variable (strata or clusters); None -> zeros."""
    if values is None:
        return np.zeros(n, dtype=np.int64)
    values = np.asarray(values)
    if values.shape != (n,):
        raise ValueError(f"grouping variable has shape {values.shape}; expected ({n},)")
    return np.unique(values, return_inverse=True)[1].astype(np.int64).ravel()


@dataclass(frozen=True)
class _RiskSets:
    """Data sorted by (stratum, time), with the tie structure R's C code walks through.

    A *block* is a run of rows with the same stratum and time; a *group* is a block with
    at least one event; a *slot* is one term of the Efron (or Breslow) denominator.
    """

    order: np.ndarray          # sorted position -> original row
    time: np.ndarray
    event: np.ndarray
    x: np.ndarray              # covariates, centred (means below), sorted
    means: np.ndarray
    weight: np.ndarray
    stratum: np.ndarray
    block: np.ndarray          # block index of each sorted row
    block_first: np.ndarray    # first sorted row of each block
    stratum_end: np.ndarray    # for each row: one past the last row of its stratum
    block_stratum_start: np.ndarray  # for each block: first block of its stratum
    group_block: np.ndarray    # block index of each event group
    row_group: np.ndarray      # group index of each row's block (-1: no events there)
    slot_group: np.ndarray     # group of each slot
    slot_frac: np.ndarray      # Efron fraction k/d of each slot (0 for Breslow)
    slot_mw: np.ndarray        # weight of each slot: W/d (Efron) or W (Breslow)
    ties: str
    # Index maps computed once so that each Newton-Raphson iteration is a few passes:
    dead: np.ndarray           # sorted positions of the event rows
    dead_group: np.ndarray     # group of each event row
    group_first: np.ndarray    # first sorted row of each group's block
    group_end: np.ndarray      # one past the last row of that block's stratum
    row_hi: np.ndarray         # per row: groups of its stratum at or before its time, as
    row_lo: np.ndarray         # the range [row_lo, row_hi) of global group indices
    wx_dead: np.ndarray        # sum over events of w x (the constant part of the score)


def _risk_sets(time, event, x, weight, stratum, ties) -> _RiskSets:
    order = np.lexsort((time, stratum))
    t, d, s = time[order], event[order], stratum[order]
    w, xs = weight[order], x[order]
    means = xs.mean(axis=0)     # R centres covariates for numerical stability
    xs = xs - means
    n = t.size
    new_stratum = np.ones(n, dtype=bool)
    new_stratum[1:] = s[1:] != s[:-1]
    new_block = new_stratum.copy()
    new_block[1:] |= t[1:] != t[:-1]
    block = np.cumsum(new_block) - 1
    block_first = np.flatnonzero(new_block)
    stratum_first = np.flatnonzero(new_stratum)
    stratum_end = np.append(stratum_first[1:], n)[np.cumsum(new_stratum) - 1]
    block_stratum_start = block[stratum_first][np.cumsum(new_stratum[block_first]) - 1]
    deaths = np.bincount(block, weights=d, minlength=block_first.size)
    death_w = np.bincount(block, weights=d * w, minlength=block_first.size)
    group_block = np.flatnonzero(deaths > 0)
    row_group = np.full(block_first.size, -1)
    row_group[group_block] = np.arange(group_block.size)
    dg = deaths[group_block].astype(np.int64)
    if ties == "efron":
        slot_group = np.repeat(np.arange(group_block.size), dg)
        start = np.repeat(np.cumsum(dg) - dg, dg)
        slot_frac = (np.arange(slot_group.size) - start) / dg[slot_group]
        slot_mw = (death_w[group_block] / dg)[slot_group]
    else:
        slot_group = np.arange(group_block.size)
        slot_frac = np.zeros(group_block.size)
        slot_mw = death_w[group_block]
    dead = np.flatnonzero(d == 1)
    group_first = block_first[group_block]
    return _RiskSets(order, t, d, xs, means, w, s, block, block_first, stratum_end,
                     block_stratum_start, group_block, row_group[block], slot_group,
                     slot_frac, slot_mw, ties, dead, row_group[block][dead], group_first,
                     stratum_end[group_first],
                     np.searchsorted(group_block, block, side="right"),
                     np.searchsorted(group_block, block_stratum_start[block]),
                     (w[dead, None] * xs[dead]).sum(axis=0))


def _risk_set_sums(values: np.ndarray, rs: _RiskSets) -> np.ndarray:
    """Per event group: sum of ``values`` over its risk set (rows of its stratum from its
    time on), by one reverse cumulative sum over the sorted rows."""
    c = np.cumsum(values[::-1], axis=0)[::-1]
    c = np.concatenate([c, np.zeros((1,) + values.shape[1:])])
    return c[rs.group_first] - c[rs.group_end]


# ----------------------------------------------------------------------------- likelihood
@dataclass(frozen=True)
class _Terms:
    """Partial likelihood and the per-slot pieces its derivatives and residuals need."""

    loglik: float
    score: np.ndarray
    info: np.ndarray
    risk: np.ndarray        # exp(eta), sorted rows (shifted: ratios are what matter)
    slot_den: np.ndarray
    slot_mean: np.ndarray
    slot_h: np.ndarray      # hazard increment mw / den of each slot


def _terms(beta: np.ndarray, rs: _RiskSets) -> _Terms:
    eta = rs.x @ beta
    # A common shift of eta cancels in every ratio and in the log-likelihood
    # (sum of slot weights = sum of event weights), and prevents overflow.
    shift = eta.max() if eta.size else 0.0
    risk = np.exp(eta - shift)
    wr = rs.weight * risk
    dead = rs.dead
    wrx = np.column_stack([wr, wr[:, None] * rs.x])
    all_sums = _risk_set_sums(wrx, rs)                 # (groups, 1 + p): S and A
    dead_sums = _group_sum(rs.dead_group, wrx[dead], rs.group_first.size)
    g, frac = rs.slot_group, rs.slot_frac
    den = all_sums[g, 0] - frac * dead_sums[g, 0]
    mean = (all_sums[g, 1:] - frac[:, None] * dead_sums[g, 1:]) / den[:, None]
    with np.errstate(divide="ignore"):
        loglik = float(np.sum(rs.weight[dead] * (eta[dead] - shift))
                       - np.sum(rs.slot_mw * np.log(den)))
    score = rs.wx_dead - rs.slot_mw @ mean
    h = rs.slot_mw / den
    info = _information(rs, wr, mean, h)
    return _Terms(loglik, score, info, risk, den, mean, h)


def _group_sum(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Sum rows of ``values`` (1-D or 2-D) by integer ``index`` (fast np.add.at)."""
    if values.ndim == 1:
        return np.bincount(index, weights=values, minlength=size)
    # One bincount over (group, column) cells; each cell adds its rows in row order.
    k = values.shape[1]
    cells = (index[:, None] * k + np.arange(k)).ravel()
    return np.bincount(cells, weights=values.ravel(), minlength=size * k).reshape(size, k)


def _row_cumulative(rs: _RiskSets, per_slot: np.ndarray) -> np.ndarray:
    """For each row: sum of ``per_slot`` over the slots whose risk set contains it.

    A row is in every slot of each earlier event group of its stratum; at its own event
    time a censored row is in every slot, an event row of slot k only with weight
    (1 - k/d) (Efron: the events are removed from the risk set a fraction at a time).
    """
    n_groups = rs.group_block.size
    extra = per_slot.shape[1:]
    full = _group_sum(rs.slot_group, per_slot, n_groups)
    part = _group_sum(rs.slot_group, rs.slot_frac.reshape((-1,) + (1,) * len(extra))
                      * per_slot, n_groups)
    cum = np.concatenate([np.zeros((1,) + extra), np.cumsum(full, axis=0)])
    out = cum[rs.row_hi] - cum[rs.row_lo]
    out[rs.dead] -= part[rs.dead_group]
    return out


def _information(rs, wr, mean, h, slot_coef=None) -> np.ndarray:
    """sum_s c_s mw_s [C_s / den_s - m_s m_s'] without forming per-slot p x p sums
    (c_s = 1 unless ``slot_coef`` is given)."""
    coef_h, coef_mw = (h, rs.slot_mw) if slot_coef is None else (slot_coef * h,
                                                                  slot_coef * rs.slot_mw)
    row_h = _row_cumulative(rs, coef_h)
    first = (rs.x * (wr * row_h)[:, None]).T @ rs.x
    second = (mean * coef_mw[:, None]).T @ mean
    return first - second


def _score_residuals(rs: _RiskSets, tm: _Terms) -> np.ndarray:
    """Score residuals in sorted order, as R's ``coxscore2`` (unweighted)."""
    row_h = _row_cumulative(rs, tm.slot_h)
    row_hm = _row_cumulative(rs, tm.slot_h[:, None] * tm.slot_mean)
    resid = -tm.risk[:, None] * (rs.x * row_h[:, None] - row_hm)
    dead = rs.dead
    n_groups = rs.group_block.size
    mbar = _group_sum(rs.slot_group, tm.slot_mean, n_groups)
    mbar /= np.bincount(rs.slot_group, minlength=n_groups)[:, None]
    resid[dead] += rs.x[dead] - mbar[rs.row_group[dead]]
    return resid


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class CoxFit:
    """A fitted Cox model (agrees with R ``coxph`` on the same data and options).

    Attributes
    ----------
    names : tuple of str
        Covariate names.
    coef, se : ndarray
        Log hazard ratios and their reported standard errors (robust when
        ``variance_type`` is ``"robust"`` or ``"cluster_robust"``, else model-based).
    se_model : ndarray
        Model-based SE (inverse information), reported by R as ``se(coef)``.
    variance : ndarray
        Reported covariance matrix (``vcov(fit)`` in R).
    variance_type : {"model", "robust", "cluster_robust"}
    robust : bool
    hr, ci_lower, ci_upper : ndarray
        ``exp(coef)`` and its Wald confidence limits at ``conf_level``.
    z, p : ndarray
        Wald statistics ``coef / se`` and two-sided P values.
    loglik, loglik_null : float
        Partial log-likelihood at the estimate and at zero.
    lr_chisq, lr_df, lr_p : float, int, float
        Likelihood-ratio test against the null model.
    n, events : int
        Rows used and events (unweighted counts, as R ``fit$n``, ``fit$nevent``).
    n_strata, n_clusters : int
    ties : {"efron", "breslow"}
    iterations : int
    converged : bool
    infinite : tuple of str
        Covariates whose coefficient may be infinite (monotone likelihood).
    """

    names: tuple
    coef: np.ndarray
    se: np.ndarray
    se_model: np.ndarray
    variance: np.ndarray
    variance_model: np.ndarray
    variance_type: str
    robust: bool
    hr: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    z: np.ndarray
    p: np.ndarray
    conf_level: float
    loglik: float
    loglik_null: float
    lr_chisq: float
    lr_df: int
    lr_p: float
    n: int
    events: int
    weighted: bool
    n_strata: int
    n_clusters: int
    ties: str
    iterations: int
    converged: bool
    infinite: tuple = ()
    _risk_sets: _RiskSets | None = field(default=None, repr=False, compare=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per covariate: coef, se, hr, CI, z, p and the settings."""
        return pd.DataFrame({
            "term": list(self.names), "coef": self.coef, "se": self.se,
            "se_model": self.se_model, "hr": self.hr, "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper, "z": self.z, "p": self.p,
            "variance_type": self.variance_type, "ties": self.ties, "n": self.n,
            "events": self.events})

    def settings(self) -> str:
        """Ties, variance estimator, weights, strata and clusters in words."""
        variance = {"model": "model-based variance (inverse information)",
                    "robust": "robust sandwich variance (R coxph robust = TRUE)",
                    "cluster_robust": f"cluster-robust sandwich variance over "
                                      f"{self.n_clusters} clusters (R coxph cluster =)"}
        parts = [f"{self.ties} ties", variance[self.variance_type]]
        if self.weighted:
            parts.append("case weights")
        if self.n_strata > 1:
            parts.append(f"{self.n_strata} strata")
        return ", ".join(parts)

    def summary(self) -> str:
        """Text for humans, settings included."""
        pct = f"{100 * self.conf_level:g}%"
        lines = [f"Cox proportional-hazards model ({self.settings()}): n = {self.n}, "
                 f"events = {self.events}.",
                 f"{'term':<24}{'HR':>8}  {pct + ' CI':<17}{'P':>8}"]
        for i, name in enumerate(self.names):
            lines.append(f"{name:<24}{self.hr[i]:>8.3f}  ({self.ci_lower[i]:.3f}-"
                         f"{self.ci_upper[i]:.3f}){'':<2}{self.p[i]:>8.4f}")
        lines.append(f"Log-likelihood {self.loglik:.4f} (null {self.loglik_null:.4f}); "
                     f"LR chi-square {self.lr_chisq:.3f} on {self.lr_df} df, P = "
                     f"{self.lr_p:.4g}. Agrees with R survival::coxph.")
        if not self.converged:
            lines.append("WARNING: Newton-Raphson did not converge.")
        if self.infinite:
            lines.append(f"WARNING: coefficient may be infinite for {', '.join(self.infinite)}.")
        return "\n".join(lines)

    def score_residuals(self) -> np.ndarray:
        """Score residuals (n x p, original row order; R ``residuals(fit, "score")``)."""
        rs = self._risk_sets
        out = np.empty_like(rs.x)
        out[rs.order] = _score_residuals(rs, _terms(self.coef, rs))
        return out

    def dfbeta(self) -> np.ndarray:
        """Weighted dfbeta residuals (n x p; R ``residuals(fit, "dfbeta", weighted=TRUE)``)."""
        rs = self._risk_sets
        w = np.empty_like(rs.weight)
        w[rs.order] = rs.weight
        return (self.score_residuals() @ self.variance_model) * w[:, None]


# ----------------------------------------------------------------------------- fitting
def _check_inputs(time, event, x, weights, names):
    time = np.asarray(time, dtype=float)
    n = time.size
    event = np.asarray(event, dtype=float).ravel()
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if time.shape != (n,) or event.shape != (n,) or x.shape[0] != n:
        raise ValueError(f"time ({time.shape}), event ({event.shape}) and covariates "
                         f"({x.shape}) must have the same number of rows")
    if n == 0 or x.shape[1] == 0:
        raise ValueError("need at least one row and one covariate")
    if not (np.isfinite(time).all() and np.isfinite(x).all()):
        raise ValueError("time and covariates must be finite (no missing values); "
                         "drop or impute incomplete rows first")
    if not np.isin(event, (0.0, 1.0)).all():
        raise ValueError("event must be coded 1 (event) / 0 (censored)")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float).ravel()
    if w.shape != (n,) or not np.isfinite(w).all() or (w <= 0).any():
        raise ValueError("weights must be finite and > 0, one per row (as R coxph)")
    names = tuple(names) if names is not None else tuple(f"x{i + 1}" for i in range(x.shape[1]))
    if len(names) != x.shape[1]:
        raise ValueError(f"{len(names)} names for {x.shape[1]} covariates")
    return time, event, x, w, names


def _check_estimable(rs: _RiskSets, names, info0) -> None:
    if rs.group_block.size == 0:
        raise NotEstimableError("No events: the Cox model is not estimable.")
    keep = []
    for j in range(len(names)):
        trial = keep + [j]
        sub = info0[np.ix_(trial, trial)]
        eig = np.linalg.eigvalsh(sub) if sub.size else np.array([1.0])
        scale = max(np.max(np.abs(np.diag(sub))), 1e-300)
        if eig.min() <= 1e-10 * scale:
            what = ("constant within every stratum (or among patients at risk at the event "
                    "times)" if not keep or info0[j, j] <= 1e-10 * scale
                    else f"collinear with {', '.join(names[k] for k in keep)}")
            raise NotEstimableError(f"Covariate '{names[j]}' is {what}: its hazard ratio "
                                    "is not estimable. Remove it from the model.")
        keep.append(j)


def _warn_empty_levels(event, x, names) -> None:
    """A binary covariate with no events at one level: the estimate runs off to infinity."""
    for j, name in enumerate(names):
        levels = np.unique(x[:, j])
        if levels.size != 2:
            continue
        for level in levels:
            at = x[:, j] == level
            if event[at].sum() == 0:
                warnings.warn(f"Covariate '{name}': no events among the {int(at.sum())} "
                              f"patients with {name} = {level:g}; (quasi-)separation, its "
                              "hazard ratio tends to 0 or infinity and is not estimable. "
                              + SEPARATION_REMEDY,
                              SeparationWarning, stacklevel=4)


def _newton(rs: _RiskSets, tm: _Terms, max_iter: int):
    """Newton-Raphson with step halving from beta = 0 (``tm``: the terms there)."""
    beta = np.zeros(rs.x.shape[1])
    loglik_null = tm.loglik
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        step = np.linalg.solve(tm.info, tm.score)
        new = beta + step
        new_tm = _terms(new, rs)
        halvings = 0
        while not (np.isfinite(new_tm.loglik) and new_tm.loglik >= tm.loglik - 1e-12
                   * abs(tm.loglik)) and halvings < 40:
            new = (beta + new) / 2          # step halving, as R's coxfit6
            new_tm = _terms(new, rs)
            halvings += 1
        small_step = np.all(np.abs(new - beta) <= STEP_TOL * (1 + np.abs(new)))
        flat = abs(new_tm.loglik - tm.loglik) <= LOGLIK_TOL * abs(new_tm.loglik)
        beta, tm = new, new_tm
        if small_step or flat:
            converged = True
            break
    return beta, tm, loglik_null, it, converged


def fit_cox(time, event, covariates, *, weights=None, strata=None, cluster=None,
            robust: bool = False, ties: str = "efron", names=None,
            conf_level: float = 0.95, max_iter: int = 50) -> CoxFit:
    """Fit a Cox proportional-hazards model by Newton-Raphson on the partial likelihood.

    Parameters
    ----------
    time : array_like, shape (n,)
        Follow-up times (months). Times equal up to floating-point noise are tied, as in
        R (``timefix = TRUE``).
    event : array_like, shape (n,)
        1 = event (death), 0 = censored.
    covariates : array_like, shape (n, p)
        Design matrix, already coded (no intercept).
    weights : array_like, optional
        Case weights (> 0, may be non-integer), as ``coxph(weights = )``.
    strata : array_like, optional
        Stratum labels: separate baseline hazards, as ``strata()`` in a ``coxph`` formula.
    cluster : array_like, optional
        Cluster labels (e.g. matched sets). Implies the cluster-robust variance.
    robust : bool
        Robust sandwich variance ``D'D`` from the weighted dfbeta residuals, as
        ``coxph(robust = TRUE)``. Note R turns this on silently for non-integer
        weights; here it is always explicit.
    ties : {"efron", "breslow"}
    names : sequence of str, optional
        Covariate names (default x1..xp).
    conf_level : float
        Level of the Wald confidence intervals of the hazard ratios.
    max_iter : int
        Newton-Raphson iterations before a ConvergenceWarning.

    Returns
    -------
    CoxFit

    Raises
    ------
    NotEstimableError
        No events, or a covariate that is constant or collinear.

    Warns
    -----
    SeparationWarning
        A covariate whose coefficient may be infinite (e.g. a level without events).
    ConvergenceWarning
        Newton-Raphson did not converge in ``max_iter`` iterations.

    Notes
    -----
    Efron's approximation removes tied events from the risk set a fraction ``k/d`` at a
    time; with case weights each of the ``d`` terms carries the mean event weight, as
    in R's ``coxfit6``. The robust variance is ``D'D`` with ``D`` the score residuals
    (R ``coxscore2``, weighted Efron correction included) times the case weights times
    the model-based variance, summed within clusters when ``cluster`` is given
    (Lin & Wei 1989). Agrees with R ``survival::coxph`` (3.5) to the precision stated
    in ``tests/test_cox.py``.

    References
    ----------
    Therneau & Grambsch (2000), Modeling Survival Data, ch. 3 and 7.
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, not {ties!r}")
    time, event, x, w, names = _check_inputs(time, event, covariates, weights, names)
    n, p = x.shape
    rs = _risk_sets(timefix(time), event, x, w, _codes(strata, n), ties)
    tm0 = _terms(np.zeros(p), rs)
    _check_estimable(rs, names, tm0.info)
    _warn_empty_levels(event, x, names)
    try:
        beta, tm, loglik_null, iterations, converged = _newton(rs, tm0, max_iter)
        var_model = np.linalg.inv(tm.info)
    except np.linalg.LinAlgError as exc:
        # A coefficient ran off to infinity until the information matrix was singular.
        raise NotEstimableError(f"Cox model ({', '.join(names)}): the information matrix "
                                "became singular while a coefficient diverged "
                                "((quasi-)separation). " + SEPARATION_REMEDY) from exc
    if not converged:
        warnings.warn(f"Cox model ({', '.join(names)}): Newton-Raphson did not converge in "
                      f"{max_iter} iterations; the estimates should not be reported as is.",
                      ConvergenceWarning, stacklevel=2)
    # As R: the infinite-coefficient check only makes sense after convergence.
    infinite = _infinite(beta, tm, var_model, names) if converged else ()
    var, var_type, n_clusters = _variance(rs, tm, var_model, beta, cluster, robust, n)
    return _result(beta, var, var_model, var_type, names, conf_level, tm.loglik,
                   loglik_null, rs, iterations, converged, infinite, n_clusters,
                   weights is not None)


def _infinite(beta, tm, var_model, names) -> tuple:
    """R's check: the Newton step still to take is large relative to the coefficient."""
    step = np.abs(tm.score @ var_model)
    flag = (step > EPS) & (step > TOLER_INF * np.abs(beta))
    out = tuple(name for name, f in zip(names, flag) if f)
    if out:
        warnings.warn(f"Cox model: the log-likelihood converged before the coefficient of "
                      f"{', '.join(repr(o) for o in out)}; it may be infinite "
                      "((quasi-)separation, e.g. a covariate level without events). Its HR "
                      "is not estimable. " + SEPARATION_REMEDY, SeparationWarning,
                      stacklevel=3)
    return out


def _variance(rs, tm, var_model, beta, cluster, robust, n):
    if cluster is None and not robust:
        return var_model, "model", 0
    resid = _score_residuals(rs, tm)
    dfb = (resid @ var_model) * rs.weight[:, None]
    if cluster is None:
        return dfb.T @ dfb, "robust", n
    codes = _codes(cluster, n)[rs.order]
    summed = _group_sum(codes, dfb, codes.max() + 1)
    return summed.T @ summed, "cluster_robust", summed.shape[0]


def _result(beta, var, var_model, var_type, names, conf_level, loglik, loglik_null, rs,
            iterations, converged, infinite, n_clusters, weighted) -> CoxFit:
    se = np.sqrt(np.diag(var))
    z = beta / se
    crit = z_value(conf_level)
    lr = 2 * (loglik - loglik_null)
    with np.errstate(over="ignore"):     # infinite limits of an infinite coefficient
        arrays = [beta, se, np.sqrt(np.diag(var_model)), var, var_model, np.exp(beta),
                  np.exp(beta - crit * se), np.exp(beta + crit * se), z,
                  2 * special.ndtr(-np.abs(z))]
    for a in arrays:
        a.setflags(write=False)
    (coef, se, se_model, var, var_model, hr, lo, hi, z, p) = arrays
    return CoxFit(tuple(names), coef, se, se_model, var, var_model, var_type,
                  var_type != "model", hr, lo, hi, z, p, conf_level, loglik, loglik_null,
                  lr, len(names), float(special.chdtrc(len(names), lr)), int(rs.time.size),
                  int(rs.event.sum()), weighted, int(rs.stratum.max() + 1), n_clusters,
                  rs.ties, iterations, converged, infinite, rs)


# ----------------------------------------------------------------------------- PH test
@dataclass(frozen=True)
class PHTest:
    """Proportional-hazards test of R survival 3.x ``cox.zph`` (per covariate and global).

    Attributes
    ----------
    names : tuple of str
        Covariates tested, in model order.
    chisq, df, p : ndarray
        Score-test chi-square, degrees of freedom and P value per covariate.
    global_chisq, global_df, global_p : float, int, float
        Global test of all covariates at once.
    transform : str
        Time transform g(t): ``"km"`` (R's default), ``"identity"``, ``"rank"``, ``"log"``.
    """

    names: tuple
    chisq: np.ndarray
    df: np.ndarray
    p: np.ndarray
    global_chisq: float
    global_df: int
    global_p: float
    transform: str

    def to_frame(self) -> pd.DataFrame:
        """One row per covariate and a final ``GLOBAL`` row, as ``cox.zph(fit)$table``."""
        return pd.DataFrame({"term": [*self.names, "GLOBAL"],
                             "chisq": [*self.chisq, self.global_chisq],
                             "df": [*self.df, self.global_df], "p": [*self.p, self.global_p],
                             "transform": self.transform})

    def summary(self) -> str:
        lines = [f"Proportional-hazards test (scaled Schoenfeld residuals, score test of "
                 f"R survival 3.x cox.zph, transform = '{self.transform}'):"]
        for name, c, d, p in zip(self.names, self.chisq, self.df, self.p):
            lines.append(f"  {name:<24} chi-square {c:8.3f}  df {int(d)}  P = {p:.4f}")
        lines.append(f"  {'GLOBAL':<24} chi-square {self.global_chisq:8.3f}  df "
                     f"{self.global_df}  P = {self.global_p:.4f}")
        return "\n".join(lines)


def _transformed_time(rs: _RiskSets, transform: str) -> np.ndarray:
    """g(t) for each sorted row; ``km`` is 1 - S(t-) of the pooled unweighted KM (R)."""
    t = rs.time
    if transform == "identity":
        return t.copy()
    if transform == "log":
        return np.log(t)
    if transform == "rank":
        return stats.rankdata(t)
    if transform != "km":
        raise ValueError("transform must be 'km', 'identity', 'rank' or 'log'")
    uniq, inv = np.unique(t, return_inverse=True)
    deaths = np.bincount(inv, weights=rs.event, minlength=uniq.size)
    at_risk = np.cumsum(np.bincount(inv, minlength=uniq.size)[::-1])[::-1]
    surv = np.cumprod(1 - deaths / at_risk)
    before = np.r_[1.0, surv[:-1]]
    return 1 - before[inv]


def cox_zph(fit: CoxFit, transform: str = "km") -> PHTest:
    """Test proportional hazards for each covariate and globally, as R ``cox.zph``.

    Parameters
    ----------
    fit : CoxFit
        A model from :func:`fit_cox` (weights, strata and ties are taken from it).
    transform : {"km", "identity", "rank", "log"}
        Time transform; R's default ``"km"`` uses 1 - S(t-) of the pooled KM curve.

    Returns
    -------
    PHTest

    Notes
    -----
    survival 3.x replaced the old regression of scaled Schoenfeld residuals on g(t) by an
    exact score test: at the fitted beta, add the p covariates x * (g(t) - mean g over
    events) and test their coefficients with the 2p x 2p information matrix (R C routine
    ``zph1``). The per-covariate test uses the block of the first p terms plus that
    covariate's time term; the global test uses all. Agrees with R ``survival::cox.zph``
    (``terms = FALSE``) for Efron or Breslow ties, case weights and strata.
    """
    rs = fit._risk_sets
    p = len(fit.names)
    tm = _terms(fit.coef, rs)
    g_row = _transformed_time(rs, transform)
    g_row = g_row - g_row[rs.event == 1].mean()
    g = g_row[rs.block_first[rs.group_block]][rs.slot_group]
    wr = rs.weight * tm.risk
    dead = rs.event == 1
    u = ((g_row * rs.weight)[dead, None] * rs.x[dead]).sum(axis=0) - (g * rs.slot_mw) @ tm.slot_mean
    i12 = _information(rs, wr, tm.slot_mean, tm.slot_h, g)
    i22 = _information(rs, wr, tm.slot_mean, tm.slot_h, g * g)
    imat = np.block([[tm.info, i12], [i12.T, i22]])
    full_u = np.r_[np.zeros(p), u]
    chisq = np.empty(p)
    for j in range(p):
        keep = np.r_[np.arange(p), p + j]
        sub_u = full_u[keep]
        chisq[j] = sub_u @ np.linalg.solve(imat[np.ix_(keep, keep)], sub_u)
    global_chisq = float(full_u @ np.linalg.solve(imat, full_u))
    df = np.ones(p, dtype=int)
    return PHTest(fit.names, chisq, df, stats.chi2.sf(chisq, df), global_chisq, p,
                  float(stats.chi2.sf(global_chisq, p)), transform)


def fit_cox_frame(frame: pd.DataFrame, covariates, *, time_col: str = "os_months",
                  event_col: str = "death", weights_col: str | None = None,
                  strata_col: str | None = None, cluster_col: str | None = None,
                  robust: bool = False, ties: str = "efron",
                  conf_level: float = 0.95) -> CoxFit:
    """:func:`fit_cox` on columns of a data frame (numeric covariates, no missing values).

    Example: ``fit_cox_frame(cohort.data, ["local_therapy", "ecog"])`` is
    ``coxph(Surv(os_months, death) ~ local_therapy + ecog, ties = "efron")``.
    """
    covariates = list(covariates)
    missing = [c for c in [time_col, event_col, *covariates, weights_col, strata_col,
                           cluster_col] if c is not None and c not in frame]
    if missing:
        raise ValueError(f"columns {missing} not in the data frame")
    col = (lambda c: None if c is None else frame[c].to_numpy())
    return fit_cox(frame[time_col].to_numpy(float), frame[event_col].to_numpy(float),
                   frame[covariates].to_numpy(float), weights=col(weights_col),
                   strata=col(strata_col), cluster=col(cluster_col), robust=robust,
                   ties=ties, names=covariates, conf_level=conf_level)


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
    """The sorted data and tie structure (_RiskSets, unit weights) shared by every weight
    vector, with what the batched sums need besides."""

    rs: _RiskSets
    xx: np.ndarray            # products x_j x_k for j <= k (n, p(p+1)/2)
    pairs: tuple              # the (j, k) of each column of xx
    group_start: np.ndarray   # first entry of each group in rs.dead
    binary: tuple             # (column, level value) pairs of two-valued covariates


def _layout(rs: _RiskSets) -> _Layout:
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


def _many_terms(beta: np.ndarray, reps: np.ndarray, lay: _Layout, ch: _Chunk):
    """Log-likelihood, score and information of the vectors ``reps`` at ``beta`` (k, p).

    The sums of _terms, with a leading axis over vectors. Every operation is
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
    wr = w * np.exp(eta - shift[:, None])
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
    # _row_cumulative): all groups of its stratum up to its own time, less the Efron
    # fraction at its own event time.
    row_h = cum[:, rs.row_hi] - cum[:, rs.row_lo]
    row_h[:, rs.dead] -= part[:, rs.dead_group]
    v = wr * row_h
    info = np.empty((k, p, p))
    for col, (j, l) in enumerate(lay.pairs):
        info[:, j, l] = info[:, l, j] = _row_sum(v * lay.xx[:, col]) - np.bincount(
            local, weights=mw * mean[:, j] * mean[:, l], minlength=k)
    return loglik, score, info


def _columns(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """values[:, index] in C order (fancy indexing along axis 1 returns Fortran order)."""
    return np.ascontiguousarray(values[:, index])


def _row_sum(values: np.ndarray) -> np.ndarray:
    """Sum of each row, pairwise along the row: for a C-ordered array numpy sums each row
    the same way whatever the number of rows (a Fortran-ordered one is summed column by
    column, which would make a vector's result depend on its batch)."""
    return np.ascontiguousarray(values).sum(axis=1)


def _rev_gather(values: np.ndarray, rs: _RiskSets) -> np.ndarray:
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
    """Newton-Raphson with step halving for each vector of ``reps``, as fit_cox's _newton.

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
                 ties: str = "efron", names=None, max_iter: int = 50) -> CoxManyFit:
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
    time, event, x, _, names = _check_inputs(time, event, covariates, None, names)
    n, p = x.shape
    w_all, c_all = _weight_matrix(weights, copies, n)
    rs = _risk_sets(timefix(time), event, x, np.ones(n), _codes(strata, n), ties)
    lay = _layout(rs)
    n_vec = w_all.shape[0]
    out = {"coef": np.full((n_vec, p), np.nan), "loglik": np.full(n_vec, np.nan),
           "loglik_null": np.full(n_vec, np.nan), "score": np.full((n_vec, p), np.nan),
           "info": np.full((n_vec, p, p), np.nan), "iterations": np.zeros(n_vec, dtype=int),
           "status": np.full(n_vec, "no_events", dtype="<U13")}
    batch = max(1, BATCH_BYTES // (8 * n * (2 * p + 10)))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for first in range(0, n_vec, batch):
            _fit_batch(slice(first, first + batch), w_all, c_all, lay, ties, max_iter, out)
    return _many_result(out, names, n, int(rs.event.sum()), ties)


def _fit_batch(rows: slice, w_all, c_all, lay: _Layout, ties, max_iter, out) -> None:
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


def _many_result(out, names, n, events, ties) -> CoxManyFit:
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
    for a in arrays:
        a.setflags(write=False)
    return CoxManyFit(tuple(names), *arrays, n=n, events=events, ties=ties)


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
