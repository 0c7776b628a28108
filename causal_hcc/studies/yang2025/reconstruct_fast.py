"""Small vectorised survival estimators used inside the reconstruction search.

Kaplan-Meier landmarks and medians (:func:`km_fast`), two-group log-rank tests
(:func:`logrank_fast`) and the Efron Cox fit (:func:`cox_efron_fast`) over one
:class:`TieBlocks` of a (time, event) configuration; they agree with lifelines to rtol 1e-6
(``tests/test_reconstruct.py``). They serve the generator of the reconstructed
pseudo-cohort (:mod:`causal_hcc.studies.yang2025.reconstruct`); analyses use
:mod:`causal_hcc.survival`.
"""

from __future__ import annotations

import math

import numpy as np


class TieBlocks:
    """Time order and tie blocks of one (time, event) configuration, reused across fits.

    Patients are sorted by time with deaths first among equal times, so that the deaths of
    a tie block are contiguous and one cumulative sum gives both risk-set sums and tied-death
    sums.
    """

    def __init__(self, time, event, order=None):
        time = np.asarray(time, dtype=float)
        event = np.asarray(event, dtype=float)
        self.order = np.lexsort((-event, time)) if order is None else order
        self.time = time[self.order]
        self.event = event[self.order]
        n = len(time)
        starts = np.ones(n, dtype=bool)
        starts[1:] = self.time[1:] != self.time[:-1]
        self.start = np.flatnonzero(starts)
        cum_ev = np.concatenate(([0], np.cumsum(self.event).astype(np.int64)))
        ends = np.append(self.start[1:], n)
        self.n_deaths_block = cum_ev[ends] - cum_ev[self.start]
        self.death_end = self.start + self.n_deaths_block    # end of the block's deaths
        self.block_time = self.time[self.start]
        block_id = np.cumsum(starts) - 1
        self.death_pos = np.flatnonzero(self.event > 0)
        k = block_id[self.death_pos]
        self.d_start, self.d_end = self.start[k], self.death_end[k]
        # Efron: the l-th of m tied deaths removes l/m of the tied risk (l = 0..m-1).
        self.efron_frac = (self.death_pos - self.d_start) / self.n_deaths_block[k]
        self.death_block = k

    @staticmethod
    def cumulative(values):
        """Cumulative sums along the sorted patients, with a leading row of zeros."""
        out = np.zeros((values.shape[0] + 1,) + values.shape[1:])
        np.cumsum(values, axis=0, out=out[1:])
        return out

    def block_sums(self, values):
        """Per tie block: (sum over the risk set t >= block time, sum over the block's deaths)."""
        csum = self.cumulative(values)
        return csum[-1] - csum[self.start], csum[self.death_end] - csum[self.start]


def km_fast(time, event, groups, landmarks=(12.0, 24.0, 36.0, 60.0), blocks=None):
    """Kaplan-Meier survival at landmarks and median survival, for several groups at once.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        Follow-up in months and 1 = death.
    groups : array-like of bool, shape (n, g)
        One column per group (a patient may be in several groups).
    landmarks : sequence of float
        Months at which S(t) is read (right-continuous: deaths at t count).

    Returns
    -------
    surv : ndarray, shape (g, len(landmarks))
    median : ndarray, shape (g,)
        First time with S(t) <= 0.5, ``inf`` when never reached (lifelines' convention).

    Notes
    -----
    Product-limit estimator over distinct times, computed as exp(cumsum(log(n - d) -
    log(n))) as lifelines does, so values agree with ``KaplanMeierFitter`` to rounding.
    Helper of the generator of the reconstructed pseudo-cohort; analyses use
    :mod:`causal_hcc.survival`.
    """
    b = blocks or TieBlocks(time, event)
    at_risk, deaths = b.block_sums(np.asarray(groups, dtype=float)[b.order])
    return km_from_counts(b, at_risk, deaths, landmarks)


def km_from_counts(b, at_risk, deaths, landmarks):
    """KM survival at ``landmarks`` and medians from per-block risk-set and death counts."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logf = np.where(deaths > 0, np.log(at_risk - deaths) - np.log(at_risk), 0.0)
    surv = np.exp(np.cumsum(logf, axis=0))
    idx = np.searchsorted(b.block_time, np.asarray(landmarks, dtype=float), side="right") - 1
    at = np.where(idx[None, :] >= 0, surv[np.maximum(idx, 0)].T, 1.0)
    below = surv <= 0.5
    median = np.where(below.any(axis=0), b.block_time[below.argmax(axis=0)], np.inf)
    return at, median


def logrank_fast(time, event, group, subset=None, blocks=None):
    """Two-group log-rank test(s) with the hypergeometric variance (ties as lifelines/R).

    Parameters
    ----------
    time, event : array-like, shape (n,)
    group : array-like of bool, shape (n,) or (n, c)
        Group 1 membership, one column per comparison.
    subset : array-like of bool, same shape as ``group``, optional
        Patients entering each comparison (default all).

    Returns
    -------
    chi2, p : ndarray, shape (c,)
        Chi-square statistic (1 df) and its P value.

    Notes
    -----
    Per distinct time, E = d n1 / n and V = d (n1/n)(1 - n1/n)(n - d)/(n - 1), as R's
    ``survdiff`` and lifelines' ``logrank_test``. Helper of the generator of the
    reconstructed pseudo-cohort.
    """
    b = blocks or TieBlocks(time, event)
    grp = np.asarray(group, dtype=float)
    if grp.ndim == 1:
        grp = grp[:, None]
    sub = (np.ones_like(grp) if subset is None
           else np.asarray(subset, dtype=float).reshape(grp.shape))
    at_risk, deaths = b.block_sums(np.hstack((sub, grp * sub))[b.order])
    return logrank_from_counts(at_risk, deaths, grp.shape[1])


def logrank_from_counts(at_risk, deaths, c):
    """Log-rank chi-square and P of ``c`` comparisons from per-block counts (all, then group 1)."""
    n_all, n_one, d_all, d_one = at_risk[:, :c], at_risk[:, c:], deaths[:, :c], deaths[:, c:]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(n_all > 0, n_one / n_all, 0.0)
        expected = (d_all * frac).sum(axis=0)
        var = np.where(n_all > 1, d_all * frac * (1 - frac) * (n_all - d_all) / (n_all - 1),
                       0.0).sum(axis=0)
        chi2 = (d_one.sum(axis=0) - expected) ** 2 / var
    p = np.array([math.erfc(math.sqrt(v / 2.0)) if np.isfinite(v) else np.nan for v in chi2])
    return chi2, p


def _efron_terms(b, x, beta):
    """Log-likelihood, gradient and Hessian of the Efron partial likelihood (p covariates)."""
    n, p = x.shape
    eta = x @ beta
    w = np.exp(eta)
    stacked = np.empty((n, 1 + p + p * p))
    stacked[:, 0] = w
    stacked[:, 1:1 + p] = w[:, None] * x
    stacked[:, 1 + p:] = (stacked[:, 1:1 + p, None] * x[:, None, :]).reshape(n, p * p)
    csum = b.cumulative(stacked)
    f = b.efron_frac[:, None]
    num = (csum[-1] - csum[b.d_start]) - f * (csum[b.d_end] - csum[b.d_start])
    den = num[:, 0]
    mean1 = num[:, 1:1 + p] / den[:, None]
    mean2 = num[:, 1 + p:].reshape(-1, p, p) / den[:, None, None]
    loglik = eta[b.death_pos].sum() - np.log(den).sum()
    grad = x[b.death_pos].sum(axis=0) - mean1.sum(axis=0)
    hess = -(mean2 - mean1[:, :, None] * mean1[:, None, :]).sum(axis=0)
    return loglik, grad, hess


def cox_efron_fast(time, event, covariates, beta0=None, max_iter=50, tol=1e-10, blocks=None):
    """Cox proportional-hazards fit by Newton-Raphson on the Efron partial likelihood.

    Parameters
    ----------
    time, event : array-like, shape (n,)
    covariates : array-like, shape (n, p)
    beta0 : array-like, shape (p,), optional
        Starting value (warm start inside the search); zeros by default.
    max_iter : int
        Newton iterations at most.
    tol : float
        Stop when the largest absolute Newton step is below this.

    Returns
    -------
    beta : ndarray, shape (p,)
        Log hazard ratios (as R ``coxph(ties = "efron")`` and lifelines ``CoxPHFitter``).
    se : ndarray, shape (p,)
        Model-based standard errors (inverse observed information).
    loglik : float
        Partial log-likelihood at ``beta``.

    Notes
    -----
    Efron (1977): the l-th of m deaths tied at a time sees the risk set less l/m of the tied
    deaths' weight. Helper of the generator of the reconstructed pseudo-cohort; analyses use
    :mod:`causal_hcc.survival`.
    """
    b = blocks or TieBlocks(time, event)
    x = np.asarray(covariates, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    x = x[b.order]
    beta = np.zeros(x.shape[1]) if beta0 is None else np.array(beta0, dtype=float)
    for _ in range(max_iter):
        _, grad, hess = _efron_terms(b, x, beta)
        step = np.linalg.solve(hess, grad)
        beta = np.clip(beta - step, -12.0, 12.0)
        if np.max(np.abs(step)) < tol:
            break
    loglik, _, hess = _efron_terms(b, x, beta)
    se = np.sqrt(np.diag(np.linalg.inv(-hess)))
    return beta, se, loglik


def _cox_univariable_batch(b, x_sorted, beta, n_iter):
    """Separate one-covariate Efron fits for every column of ``x_sorted`` (Newton, warm start)."""
    n, k = x_sorted.shape
    f = b.efron_frac[:, None]
    xd_sum = x_sorted[b.death_pos].sum(axis=0)
    stacked = np.empty((n, 3 * k))
    for _ in range(n_iter):
        w = np.exp(x_sorted * beta)
        stacked[:, :k] = w
        np.multiply(w, x_sorted, out=stacked[:, k:2 * k])
        np.multiply(stacked[:, k:2 * k], x_sorted, out=stacked[:, 2 * k:])
        csum = b.cumulative(stacked)
        num = (csum[-1] - csum[b.d_start]) - f * (csum[b.d_end] - csum[b.d_start])
        den = num[:, :k]
        m1 = num[:, k:2 * k] / den
        m2 = num[:, 2 * k:] / den
        grad = xd_sum - m1.sum(axis=0)
        info = (m2 - m1 * m1).sum(axis=0)
        beta = np.clip(beta + grad / np.maximum(info, 1e-12), -12.0, 12.0)
    return beta


def binary_cox_newton(at_risk_all, at_risk_one, x_deaths, beta, n_iter):
    """Newton steps of separate one-binary-covariate Efron fits from Efron-weighted counts.

    With x in {0, 1} the weighted risk set at each death is ``all + (exp(beta) - 1) * one``,
    where ``all`` and ``one`` are Efron-adjusted counts (shape (deaths, k)), so each step
    needs no pass over the patients.
    """
    for _ in range(n_iter):
        e = np.exp(beta)
        m1 = e * at_risk_one / (at_risk_all + (e - 1.0) * at_risk_one)
        info = (m1 * (1.0 - m1)).sum(axis=0)
        beta = np.clip(beta + (x_deaths - m1.sum(axis=0)) / np.maximum(info, 1e-12), -12.0, 12.0)
    return beta
