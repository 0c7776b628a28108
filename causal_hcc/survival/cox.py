"""Cox proportional-hazards regression in numpy, matching R's ``survival::coxph``.

:func:`fit_cox` maximises the partial likelihood by Newton-Raphson (Efron or Breslow
ties, case weights, strata) and reports the model-based variance (inverse information),
the robust sandwich (``coxph(robust = TRUE)``) or the cluster-robust sandwich
(``coxph(cluster = )``). :func:`~causal_hcc.survival.cox_many.fit_cox_many` fits the same model for many weight
vectors at once (bootstrap replicates, re-weighted samples) on one sorted copy of the
data. :func:`~causal_hcc.survival.zph.cox_zph` is the proportional-hazards score test of survival 3.x's
``cox.zph`` (:mod:`causal_hcc.survival.zph`); the batched fit is in
:mod:`causal_hcc.survival.cox_many`.

Every risk-set quantity is a sum over the patients still at risk. After one sort by
(stratum, time) these are reverse cumulative sums, so a fit costs O(n log n) for the
sort and O(n p^2) per iteration, the robust variance included (score residuals are
cumulative sums too): the same code serves registry-sized cohorts. :func:`fit_cox_many`
stacks the weight vectors along a new axis of the same sums. The risk sets, the partial
likelihood and the score residuals are in :mod:`causal_hcc.survival.risk_sets`;
:func:`timefix` is imported from there and stays importable from here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from causal_hcc._numeric import z_value
from causal_hcc.errors import ConvergenceWarning, NotEstimableError, SeparationWarning
from causal_hcc.survival.risk_sets import (LikelihoodTerms, RiskSets, group_codes, group_sum,
                                           likelihood_terms, risk_sets, score_residuals,
                                           time_order, timefix)

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
    _risk_sets: RiskSets | None = field(default=None, repr=False, compare=False)
    # The likelihood terms at ``coef`` (the last Newton step's) and the sorted score
    # residuals when the robust variance computed them: residuals reuse them (same values
    # as recomputing at ``coef``).
    _terms: LikelihoodTerms | None = field(default=None, repr=False, compare=False)
    _resid: np.ndarray | None = field(default=None, repr=False, compare=False)

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

    @property
    def risk_set_data(self) -> "RiskSets":
        """The sorted risk-set layout of the fit (for cox.zph and residuals)."""
        return self._risk_sets

    def score_residuals(self) -> np.ndarray:
        """Score residuals (n x p, original row order; R ``residuals(fit, "score")``)."""
        rs = self._risk_sets
        resid = self._resid
        if resid is None:
            tm = self._terms if self._terms is not None else likelihood_terms(self.coef, rs)
            resid = score_residuals(rs, tm)
        out = np.empty_like(rs.x)
        out[rs.order] = resid
        return out

    def dfbeta(self) -> np.ndarray:
        """Weighted dfbeta residuals (n x p; R ``residuals(fit, "dfbeta", weighted=TRUE)``)."""
        rs = self._risk_sets
        w = np.empty_like(rs.weight)
        w[rs.order] = rs.weight
        return (self.score_residuals() @ self.variance_model) * w[:, None]


# ----------------------------------------------------------------------------- fitting
def check_inputs(time, event, x, weights, names):
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


def _check_estimable(rs: RiskSets, names, info0) -> None:
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
    dead = event == 1
    n, n_dead = dead.size, np.count_nonzero(dead)
    for j, name in enumerate(names):
        # Exactly two distinct values (min and max), without sorting the column.
        col = x[:, j]
        lo, hi = col.min(), col.max()
        if lo == hi:
            continue
        at_hi = col == hi
        if not (at_hi | (col == lo)).all():
            continue
        # Patients and events at each level, counted (the low level's by difference).
        n_hi, dead_hi = np.count_nonzero(at_hi), np.count_nonzero(at_hi & dead)
        for level, count, events in ((lo, n - n_hi, n_dead - dead_hi), (hi, n_hi, dead_hi)):
            if events == 0:
                warnings.warn(f"Covariate '{name}': no events among the {count} "
                              f"patients with {name} = {level:g}; (quasi-)separation, its "
                              "hazard ratio tends to 0 or infinity and is not estimable. "
                              + SEPARATION_REMEDY,
                              SeparationWarning, stacklevel=4)


def newton(rs: RiskSets, tm: LikelihoodTerms, max_iter: int):
    """Newton-Raphson with step halving from beta = 0 (``tm``: the terms there)."""
    beta = np.zeros(rs.x.shape[1])
    loglik_null = tm.loglik
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        step = np.linalg.solve(tm.info, tm.score)
        new = beta + step
        new_tm = likelihood_terms(new, rs)
        halvings = 0
        while not (np.isfinite(new_tm.loglik) and new_tm.loglik >= tm.loglik - 1e-12
                   * abs(tm.loglik)) and halvings < 40:
            new = (beta + new) / 2          # step halving, as R's coxfit6
            new_tm = likelihood_terms(new, rs)
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
            conf_level: float = 0.95, max_iter: int = 50, time_sorted=None) -> CoxFit:
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
    time_sorted : array of int, optional
        The stable sort order of ``time`` (``np.argsort(time, kind="stable")``) when the
        caller knows it (several fits on subsets of one cohort:
        :func:`causal_hcc.survival.risk_sets.subset_order`); it saves the sort.

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
    time, event, x, w, names = check_inputs(time, event, covariates, weights, names)
    n, p = x.shape
    fixed, order = time_order(time, time_sorted)
    rs = risk_sets(fixed, event, x, w, group_codes(strata, n), ties, order)
    tm0 = likelihood_terms(np.zeros(p), rs)
    _check_estimable(rs, names, tm0.info)
    _warn_empty_levels(event, x, names)
    try:
        beta, tm, loglik_null, iterations, converged = newton(rs, tm0, max_iter)
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
    var, var_type, n_clusters, resid = _variance(rs, tm, var_model, beta, cluster, robust, n)
    return _result(beta, var, var_model, var_type, names, conf_level, tm.loglik,
                   loglik_null, rs, iterations, converged, infinite, n_clusters,
                   weights is not None, tm, resid)


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
    """(variance, its type, clusters, the sorted score residuals or None)."""
    if cluster is None and not robust:
        return var_model, "model", 0, None
    resid = score_residuals(rs, tm)
    dfb = (resid @ var_model) * rs.weight[:, None]
    if cluster is None:
        return dfb.T @ dfb, "robust", n, resid
    codes = group_codes(cluster, n)[rs.order]
    summed = group_sum(codes, dfb, codes.max() + 1)
    return summed.T @ summed, "cluster_robust", summed.shape[0], resid


def _result(beta, var, var_model, var_type, names, conf_level, loglik, loglik_null, rs,
            iterations, converged, infinite, n_clusters, weighted, terms=None,
            resid=None) -> CoxFit:
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
                  rs.ties, iterations, converged, infinite, rs, terms, resid)


def fit_cox_frame(frame: pd.DataFrame, covariates, *, time_col: str,
                  event_col: str, weights_col: str | None = None,
                  strata_col: str | None = None, cluster_col: str | None = None,
                  robust: bool = False, ties: str = "efron",
                  conf_level: float = 0.95) -> CoxFit:
    """:func:`fit_cox` on columns of a data frame (numeric covariates, no missing values).

    Example: ``fit_cox_frame(df, ["treated", "age"], time_col="time", event_col="status")``
    is ``coxph(Surv(time, status) ~ treated + age, ties = "efron")``.
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


def wald(coef, se, conf_level: float = 0.95) -> dict:
    """Hazard ratios, Wald CIs and P values of coefficients with their SEs: the
    arithmetic of :func:`fit_cox`'s result, for fits made elsewhere (e.g. the robust SEs
    of :func:`causal_hcc.survival.cox_many.fit_cox_many`)."""
    coef, se = np.asarray(coef, float), np.asarray(se, float)
    z = coef / se
    crit = z_value(conf_level)
    with np.errstate(over="ignore"):
        return {"hr": np.exp(coef), "ci_lower": np.exp(coef - crit * se),
                "ci_upper": np.exp(coef + crit * se), "p": 2 * special.ndtr(-np.abs(z))}
