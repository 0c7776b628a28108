"""Cox proportional-hazards regression in numpy, matching R's ``survival::coxph``.

:func:`fit_cox` maximises the partial likelihood by Newton-Raphson (Efron or Breslow
ties, case weights, strata) and reports the model-based variance (inverse information),
the robust sandwich (``coxph(robust = TRUE)``) or the cluster-robust sandwich
(``coxph(cluster = )``). :func:`cox_zph` is the proportional-hazards score test of
survival 3.x's ``cox.zph``. :func:`cox_table` fits the univariable and multivariable
models of the paper's Table 3 on a Cohort, each HR with its comparison and reference.

Every risk-set quantity is a sum over the patients still at risk. After one sort by
(stratum, time) these are reverse cumulative sums, so a fit costs O(n log n) for the
sort and O(n p^2) per iteration: the same code serves registry-sized cohorts, and many
weight vectors could later be stacked along a new axis of the same sums.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from causal_hcc._numeric import z_value
from causal_hcc.errors import (ConvergenceWarning, NotEstimableError, SeparationWarning,
                               SmallSampleWarning)

TIES = ("efron", "breslow")
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


def _risk_sets(time, event, x, weight, stratum, ties) -> _RiskSets:
    order = np.lexsort((time, stratum))
    t, d, s = time[order], event[order], stratum[order]
    w, xs = weight[order], x[order]
    means = xs.mean(axis=0)     # R centres covariates for numerical stability
    xs = xs - means
    n = t.size
    new_block = np.r_[True, (t[1:] != t[:-1]) | (s[1:] != s[:-1])]
    block = np.cumsum(new_block) - 1
    block_first = np.flatnonzero(new_block)
    new_stratum = np.r_[True, s[1:] != s[:-1]]
    stratum_first = np.flatnonzero(new_stratum)
    stratum_end = np.r_[stratum_first[1:], n][np.cumsum(new_stratum) - 1]
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
    return _RiskSets(order, t, d, xs, means, w, s, block, block_first, stratum_end,
                     block_stratum_start, group_block, row_group[block], slot_group,
                     slot_frac, slot_mw, ties)


def _rev_cumsum(values: np.ndarray, rs: _RiskSets) -> np.ndarray:
    """Sum over rows at or after each row within its stratum (sorted by time)."""
    c = np.cumsum(values[::-1], axis=0)[::-1]
    c = np.concatenate([c, np.zeros((1,) + values.shape[1:])])
    return c[:-1] - c[rs.stratum_end]


def _block_cumsum(values: np.ndarray, rs: _RiskSets) -> np.ndarray:
    """Sum over blocks up to and including each block within its stratum."""
    c = np.cumsum(values, axis=0)
    c0 = np.concatenate([np.zeros((1,) + values.shape[1:]), c])
    return c - c0[rs.block_stratum_start]


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
    first = rs.block_first[rs.group_block]
    dead = rs.event == 1
    s_all = _rev_cumsum(wr, rs)[first]
    a_all = _rev_cumsum(wr[:, None] * rs.x, rs)[first]
    grp_rows = rs.row_group[dead]
    e_dead = np.bincount(grp_rows, weights=wr[dead], minlength=first.size)
    a_dead = _group_sum(grp_rows, wr[dead, None] * rs.x[dead], first.size)
    g, frac = rs.slot_group, rs.slot_frac
    den = s_all[g] - frac * e_dead[g]
    mean = (a_all[g] - frac[:, None] * a_dead[g]) / den[:, None]
    with np.errstate(divide="ignore"):
        loglik = float(np.sum(rs.weight[dead] * (eta[dead] - shift))
                       - np.sum(rs.slot_mw * np.log(den)))
    score = (rs.weight[dead, None] * rs.x[dead]).sum(axis=0) - rs.slot_mw @ mean
    h = rs.slot_mw / den
    info = _information(rs, wr, mean, h, np.ones_like(h))
    return _Terms(loglik, score, info, risk, den, mean, h)


def _group_sum(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Sum rows of ``values`` (1-D or 2-D) by integer ``index`` (fast np.add.at)."""
    if values.ndim == 1:
        return np.bincount(index, weights=values, minlength=size)
    return np.stack([np.bincount(index, weights=values[:, j], minlength=size)
                     for j in range(values.shape[1])], axis=1).reshape(size, values.shape[1])


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
    blocks = np.zeros((rs.block_first.size,) + extra)
    blocks[rs.group_block] = full
    out = _block_cumsum(blocks, rs)[rs.block]
    dead = rs.event == 1
    out[dead] -= part[rs.row_group[dead]]
    return out


def _information(rs, wr, mean, h, slot_coef) -> np.ndarray:
    """sum_s c_s mw_s [C_s / den_s - m_s m_s'] without forming per-slot p x p sums."""
    row_h = _row_cumulative(rs, slot_coef * h)
    first = (rs.x * (wr * row_h)[:, None]).T @ rs.x
    second = (mean * (slot_coef * rs.slot_mw)[:, None]).T @ mean
    return first - second


def _score_residuals(rs: _RiskSets, tm: _Terms) -> np.ndarray:
    """Score residuals in sorted order, as R's ``coxscore2`` (unweighted)."""
    row_h = _row_cumulative(rs, tm.slot_h)
    row_hm = _row_cumulative(rs, tm.slot_h[:, None] * tm.slot_mean)
    resid = -tm.risk[:, None] * (rs.x * row_h[:, None] - row_hm)
    dead = rs.event == 1
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
                              "hazard ratio tends to 0 or infinity and is not estimable.",
                              SeparationWarning, stacklevel=4)


def _newton(rs: _RiskSets, p: int, max_iter: int):
    beta = np.zeros(p)
    tm = _terms(beta, rs)
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
    _check_estimable(rs, names, _terms(np.zeros(p), rs).info)
    _warn_empty_levels(event, x, names)
    beta, tm, loglik_null, iterations, converged = _newton(rs, p, max_iter)
    if not converged:
        warnings.warn(f"Cox model ({', '.join(names)}): Newton-Raphson did not converge in "
                      f"{max_iter} iterations; the estimates should not be reported as is.",
                      ConvergenceWarning, stacklevel=2)
    var_model = np.linalg.inv(tm.info)
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
                      "is not estimable.", SeparationWarning, stacklevel=3)
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


# ----------------------------------------------------------------------------- Table 3
@dataclass(frozen=True)
class CoxVariable:
    """How one Table 3 variable is coded for the Cox model: ``level`` (1) vs ``reference`` (0).

    ``paper_same_direction`` is True when the paper's HR (read as audit C1 prescribes:
    printed "A vs. B" = hazard of B relative to A) is for ``level`` vs ``reference``.
    ``paper_key`` is the variable's key in ``paper_targets.json`` (``cox_table3``).
    """

    paper_key: str
    column: str
    label: str
    level: str
    reference: str
    paper_same_direction: bool
    rule: str            # how the 0/1 indicator is made: "==value", ">cut" or "==1", "==0"
    value: object = 1

    @property
    def comparison(self) -> str:
        return f"{self.label}: {self.level} vs {self.reference} (reference: {self.reference})"

    @property
    def paper_comparison(self) -> str:
        if self.paper_same_direction:
            return f"{self.level} vs {self.reference}"
        return f"{self.reference} vs {self.level}"

    def indicator(self, data: pd.DataFrame) -> np.ndarray:
        """1.0 for ``level``, 0.0 for ``reference``, NaN where the value is missing."""
        col = data[self.column]
        missing = col.isna().to_numpy()
        if self.rule == ">":
            out = (pd.to_numeric(col) > self.value).to_numpy(float)
        else:
            out = (col == self.value).to_numpy(float)
        out[missing] = np.nan
        return out


TABLE3_VARIABLES: tuple[CoxVariable, ...] = (
    CoxVariable("sex", "sex", "sex", "female", "male", True, "==", "female"),
    CoxVariable("age", "age", "age", ">50 years", "<=50 years", True, ">", 50),
    CoxVariable("hepatitis", "hepatitis", "hepatitis", "no", "yes", True, "==", 0),
    CoxVariable("cirrhosis", "cirrhosis", "cirrhosis", "yes", "no", False, "==", 1),
    CoxVariable("ecog_ps", "ecog", "ECOG PS", "1", "0", True, "==", 1),
    CoxVariable("child_pugh_class", "child_pugh", "Child-Pugh class", "B", "A", True, "==", "B"),
    CoxVariable("afp", "afp_positive", "AFP", "positive", "negative", True, "==", 1),
    CoxVariable("intrahepatic_milan", "milan_within", "intrahepatic lesions",
                "within Milan criteria", "beyond Milan criteria", True, "==", 1),
    CoxVariable("intrahepatic_ccr", "intrahepatic_ccr", "intrahepatic cCR", "yes", "no", True,
                "==", 1),
    CoxVariable("extrahepatic_max_diameter", "extrahepatic_max_diameter_cm",
                "maximum extrahepatic lesion diameter", ">2 cm", "<=2 cm", True, ">", 2),
    CoxVariable("oligometastasis", "oligometastatic", "oligometastasis", "yes", "no", False,
                "==", 1),
    CoxVariable("local_therapy", "local_therapy", "local therapy", "yes", "no", False, "==", 1),
)
"""Table 3 in package convention. Hepatitis keeps the paper's direction (no vs yes);
cirrhosis, oligometastasis and local therapy are reversed relative to the paper's HRs,
whose direction each row keeps in ``hr_paper`` for comparison (audit.md C1)."""


@dataclass(frozen=True)
class CoxTerm:
    """One HR of a Cox table: comparison, reference, estimate, and the paper's direction.

    ``hr``/``ci_lower``/``ci_upper`` are for ``level`` vs ``reference``;
    ``hr_reversed`` etc. for ``reference`` vs ``level``; ``hr_paper`` etc. in the
    direction of the paper's printed HR (``paper_comparison``). NaN when not estimable.
    """

    variable: str
    model: str
    comparison: str
    level: str
    reference: str
    estimable: bool
    reason: str
    n: int
    events: int
    coef: float = np.nan
    se: float = np.nan
    hr: float = np.nan
    ci_lower: float = np.nan
    ci_upper: float = np.nan
    p: float = np.nan
    hr_reversed: float = np.nan
    ci_lower_reversed: float = np.nan
    ci_upper_reversed: float = np.nan
    paper_comparison: str = ""
    hr_paper: float = np.nan
    ci_lower_paper: float = np.nan
    ci_upper_paper: float = np.nan


def _term(var: CoxVariable, model: str, fit: CoxFit | None, j: int, n: int, events: int,
          reason: str = "") -> CoxTerm:
    base = dict(variable=var.paper_key, model=model, comparison=var.comparison,
                level=var.level, reference=var.reference, n=n, events=events,
                paper_comparison=var.paper_comparison)
    if fit is None:
        return CoxTerm(estimable=False, reason=reason, **base)
    hr, lo, hi = fit.hr[j], fit.ci_lower[j], fit.ci_upper[j]
    paper = (hr, lo, hi) if var.paper_same_direction else (1 / hr, 1 / hi, 1 / lo)
    return CoxTerm(estimable=True, reason="", coef=fit.coef[j], se=fit.se[j], hr=hr,
                   ci_lower=lo, ci_upper=hi, p=fit.p[j], hr_reversed=1 / hr,
                   ci_lower_reversed=1 / hi, ci_upper_reversed=1 / lo, hr_paper=paper[0],
                   ci_lower_paper=paper[1], ci_upper_paper=paper[2], **base)


def _fit_quietly(time, event, x, names, notes, **kwargs):
    """fit_cox, turning trouble into (None, reason) and re-issuing its warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = fit_cox(time, event, x, names=names, **kwargs)
        except NotEstimableError as exc:
            return None, str(exc)
    reason = ""
    for w in caught:
        notes.append(str(w.message))
        warnings.warn(w.message, w.category, stacklevel=3)
        if issubclass(w.category, (SeparationWarning, ConvergenceWarning)) and not reason:
            reason = str(w.message)      # the first is the most specific
    return (None, reason) if reason else (fit, "")


@dataclass(frozen=True)
class CoxTable:
    """Univariable and multivariable Cox models of OS (the paper's Table 3).

    Attributes
    ----------
    rows : tuple of CoxTerm
        Univariable rows (every variable) then multivariable rows.
    selected : tuple of str
        Variables in the multivariable model.
    selection : str
        How they were chosen ("univariable P < 0.05" or "as specified").
    select_p : float
    multivariable : CoxFit or None
    events_per_variable : float
        Events of the multivariable model per covariate (NaN without one).
    ph_test : PHTest or None
        cox.zph of the multivariable model.
    ph_test_local_therapy : PHTest or None
        cox.zph of the univariable local-therapy model.
    ties, variance_type : str
    notes : tuple of str
        Warnings raised while fitting, for the report.
    """

    rows: tuple
    selected: tuple
    selection: str
    select_p: float
    multivariable: CoxFit | None
    events_per_variable: float
    ph_test: PHTest | None
    ph_test_local_therapy: PHTest | None
    ties: str
    variance_type: str
    notes: tuple = ()

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per (model, variable)."""
        return pd.DataFrame([vars(r) for r in self.rows])

    def summary(self) -> str:
        lines = [f"Cox models of overall survival ({self.ties} ties, {self.variance_type} "
                 f"variance; HR for level vs reference, Wald 95% CI and P):"]
        for r in self.rows:
            est = (f"HR {r.hr:.3f} ({r.ci_lower:.3f}-{r.ci_upper:.3f}), P = {r.p:.3f}"
                   if r.estimable else f"not estimable: {r.reason}")
            lines.append(f"  [{r.model}] {r.comparison}: {est}")
        lines.append(f"Multivariable model: {', '.join(self.selected) or 'none'} "
                     f"({self.selection}); events per variable {self.events_per_variable:.1f}.")
        if self.ph_test is not None:
            lines.append(self.ph_test.summary())
        return "\n".join(lines + [f"Note: {n}" for n in self.notes])


def cox_table(cohort, variables: tuple[CoxVariable, ...] = TABLE3_VARIABLES, *,
              ties: str = "efron", select_p: float = 0.05, multivariable=None,
              conf_level: float = 0.95) -> CoxTable:
    """Univariable Cox model of OS for each variable, then the multivariable model.

    Parameters
    ----------
    cohort : causal_hcc.data.Cohort
    variables : tuple of CoxVariable
        Default: the paper's Table 3 variables in package convention.
    ties : {"efron", "breslow"}
        Efron is the package default (R's); SPSS, which the paper used, uses Breslow.
    select_p : float
        Variables with univariable Wald P below this enter the multivariable model.
    multivariable : sequence of str, optional
        ``paper_key`` s of the multivariable model, overriding the P-value rule.
    conf_level : float

    Returns
    -------
    CoxTable

    Warns
    -----
    SmallSampleWarning
        Fewer than 10 events per covariate in the multivariable model.
    SeparationWarning, ConvergenceWarning
        From a model; that row is then not estimable, with the reason.

    Notes
    -----
    Each model is a complete-case analysis of its own variables (``n`` per row). The
    model-based variance is used, as the paper's SPSS Cox regression and R's ``coxph``.
    """
    data, notes = cohort.data, []
    time, event = data["os_months"].to_numpy(float), data["death"].to_numpy(float)
    rows, uni_p, columns = [], {}, {}
    for var in variables:
        row, x = _univariable(var, data, time, event, ties, conf_level, notes)
        rows.append(row)
        if row.estimable:
            uni_p[var.paper_key], columns[var.paper_key] = row.p, x
    small = [r.variable for r in rows if r.estimable and r.events < 10]
    if small:
        _small_sample(f"univariable Cox models with fewer than 10 events ({', '.join(small)})",
                      notes)
    selected = tuple(multivariable) if multivariable is not None else tuple(
        k for k, p in uni_p.items() if p < select_p)
    multi, epv, multi_rows = _multivariable(selected, variables, columns, time, event, ties,
                                            conf_level, notes)
    local = _local_therapy_zph(variables, columns, time, event, ties, notes)
    selection = ("as specified" if multivariable is not None
                 else f"univariable Wald P < {select_p:g}")
    return CoxTable(tuple(rows + multi_rows), selected, selection, select_p, multi, epv,
                    None if multi is None else cox_zph(multi), local, ties, "model",
                    tuple(notes))


def _univariable(var, data, time, event, ties, conf_level, notes):
    if var.column not in data:
        return _term(var, "univariable", None, 0, 0, 0,
                     f"column '{var.column}' is not in the data"), None
    x = var.indicator(data)
    ok = ~np.isnan(x)
    n, events = int(ok.sum()), int(event[ok].sum())
    if n == 0:
        return _term(var, "univariable", None, 0, 0, 0, f"'{var.column}' is all missing"), None
    fit, reason = _fit_quietly(time[ok], event[ok], x[ok], [var.paper_key], notes, ties=ties,
                               conf_level=conf_level)
    return _term(var, "univariable", fit, 0, n, events, reason), x


def _multivariable(selected, variables, columns, time, event, ties, conf_level, notes):
    by_key = {v.paper_key: v for v in variables}
    unknown = [k for k in selected if k not in columns]
    if not selected or unknown:
        if unknown:
            notes.append(f"multivariable model not fitted: {', '.join(unknown)} not estimable "
                         "or not in the data")
        return None, np.nan, []
    x = np.column_stack([columns[k] for k in selected])
    ok = ~np.isnan(x).any(axis=1)
    events = int(event[ok].sum())
    epv = events / len(selected)
    if epv < 10:
        _small_sample(f"multivariable Cox model: {events} events for {len(selected)} "
                      f"covariates ({epv:.1f} events per variable, below 10)", notes)
    fit, reason = _fit_quietly(time[ok], event[ok], x[ok], list(selected), notes, ties=ties,
                               conf_level=conf_level)
    rows = [_term(by_key[k], "multivariable", fit, j, int(ok.sum()), events, reason)
            for j, k in enumerate(selected)]
    return fit, epv, rows


def _local_therapy_zph(variables, columns, time, event, ties, notes):
    if "local_therapy" not in columns:
        return None
    fit, _ = _fit_quietly(time, event, columns["local_therapy"], ["local_therapy"], notes,
                          ties=ties)
    return None if fit is None else cox_zph(fit)


def _small_sample(message: str, notes: list) -> None:
    notes.append(message)
    warnings.warn(message + "; estimates are unstable.", SmallSampleWarning, stacklevel=4)


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
