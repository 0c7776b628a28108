"""Logistic regression on an array design: R glm's IRLS, Firth's penalised likelihood,
(quasi-)complete separation, and many bootstrap replicates at once.

These are the fitting engines behind :mod:`causal_hcc.propensity`; they know nothing of
cohorts or covariate names beyond the term labels used in error messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize
from scipy.special import expit, xlogy

from causal_hcc._numeric import row_sum
from causal_hcc.errors import NotEstimableError

_LP_TOL = 1e-7
_ETA_MAX = -np.log(np.finfo(float).eps)


@dataclass(frozen=True)
class LogisticFit:
    """Array-level result of :func:`fit_logistic`."""

    coef: np.ndarray
    covariance: np.ndarray
    linear_predictor: np.ndarray
    converged: bool
    iterations: int
    deviance: float
    method: str


# ---------------------------------------------------------------- one fit
def _deviance(y, mu) -> float:
    return float(-2 * np.sum(xlogy(y, mu) + xlogy(1 - y, 1 - mu)))


def distinct_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, counts): the index of the first row of each distinct row of ``matrix`` (in
    order of appearance) and how many rows equal it.

    Rows are told apart by their values (-0.0 equals 0.0, NaN equals NaN): each column is
    factorised by hashing and the codes are combined into one key per row, so a
    million-row design costs a few hash passes, not a sort of its rows.
    """
    import pandas as pd
    n = matrix.shape[0]
    key = np.zeros(n, dtype=np.int64)
    size = 1                               # the number of values key can take
    for j in range(matrix.shape[1]):
        codes, uniques = pd.factorize(matrix[:, j], use_na_sentinel=False)
        if size * len(uniques) >= 2 ** 62:     # renumber before the key could overflow
            key, seen = pd.factorize(key)
            size = len(seen)
        key = key * len(uniques) + codes
        size *= len(uniques)
    key, seen = pd.factorize(key)
    # codes number the keys in order of appearance: a key's first row is where the running
    # maximum of the codes goes up
    first = np.flatnonzero(np.diff(np.maximum.accumulate(key), prepend=-1) > 0)
    return first, np.bincount(key, minlength=len(seen))


def check_rank(X: np.ndarray, terms) -> None:
    """Raise NotEstimableError naming the terms of ``X`` that are linear combinations of the
    columns before them (or the surplus terms when ``X`` has fewer rows than columns)."""
    # Unpivoted QR of the column-scaled design: a tiny |r_jj| means column j is a linear
    # combination of the columns before it, the one R's glm would report as NA.
    first, counts = distinct_rows(X)
    if len(first) >= X.shape[1]:
        # R depends on X only through X'X = sum over distinct rows of count * x x': the QR
        # of the distinct rows, each scaled by sqrt(count), has the same R (up to signs and
        # rounding), so the same |r_jj| against 1e-7 at a fraction of the cost. (The
        # column norms are X'X's diagonal.)
        rows = X[first] * np.sqrt(counts)[:, None]
        scale = np.linalg.norm(rows, axis=0)
        scale[scale == 0] = 1.0
        r = linalg.qr(rows / scale, mode="r")[0]
    else:
        scale = np.linalg.norm(X, axis=0)
        scale[scale == 0] = 1.0
        r = linalg.qr(X / scale, mode="r")[0]
    dependent = np.abs(np.diag(r)[:X.shape[1]]) < 1e-7
    if dependent.any() or X.shape[0] < X.shape[1]:
        dropped = [terms[i] for i in np.flatnonzero(dependent)] or list(terms[X.shape[0]:])
        raise NotEstimableError(
            f"The propensity model is not estimable: term(s) {dropped} are linear "
            "combinations of the others (a constant covariate, an empty level, or collinear "
            "covariates). Drop or recode them.")


def fit_logistic(X, y, *, method: str = "glm", tol: float = 1e-10,
                 max_iter: int = 50, covariance: bool = True) -> LogisticFit:
    """Logistic regression of binary ``y`` on design ``X`` (intercept column included).

    Parameters
    ----------
    X : array (n, p)
    y : array (n,) of 0/1
    method : {"glm", "firth"}
        ``glm``: maximum likelihood by IRLS from R's starting values (mu = (y + 1/2)/2),
        stopping when |dev - dev_old| / (|dev| + 0.1) < ``tol`` (R glm uses 1e-8; ours is
        tighter). ``firth``: Newton iterations on Firth's modified score
        X'(y - p + h(1/2 - p)) with step-halving on the penalised log-likelihood.
    covariance : bool
        Compute the covariance (glm only); bootstrap loops that need only the fitted
        values skip it (the covariance is then NaN).

    Returns
    -------
    LogisticFit
        Covariance = inverse Fisher information at the estimate.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if method == "glm":
        return _fit_irls(X, y, tol, max_iter, covariance)
    if method == "firth":
        return _fit_firth(X, y, tol, max(max_iter, 100))
    raise ValueError(f"method must be 'glm' or 'firth', not {method!r}")


def _fit_irls(X, y, tol, max_iter, covariance: bool = True) -> LogisticFit:
    mu = (y + 0.5) / 2
    eta = np.log(mu / (1 - mu))
    dev_old = _deviance(y, mu)
    converged = False
    beta = np.zeros(X.shape[1])
    it = 0
    for it in range(1, max_iter + 1):
        # As R's binomial()$mu.eta and linkinv: weights >= machine eps, |eta| <= -log(eps),
        # so separated data give huge finite coefficients rather than NaN.
        w = np.maximum(mu * (1 - mu), np.finfo(float).eps)
        z = eta + (y - mu) / w
        sw = np.sqrt(w)
        beta = linalg.lstsq(X * sw[:, None], z * sw, lapack_driver="gelsy",
                            check_finite=False)[0]
        eta = X @ beta
        mu = expit(np.clip(eta, -_ETA_MAX, _ETA_MAX))
        dev = _deviance(y, mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < tol:
            converged = True
            break
        dev_old = dev
    cov = _inverse_information(X, mu) if covariance else np.full((X.shape[1],) * 2, np.nan)
    return LogisticFit(beta, cov, eta, converged, it, _deviance(y, mu), "glm")


def _inverse_information(X, mu) -> np.ndarray:
    """(X'WX)^-1 from the QR of W^1/2 X, as R's summary.glm (chol2inv of R): forming X'WX
    first would square the condition number (lalonde's earnings columns: ~1e-6 error)."""
    w = np.maximum(mu * (1 - mu), np.finfo(float).eps)
    r = linalg.qr(X * np.sqrt(w)[:, None], mode="r")[0][:X.shape[1]]
    r_inv = linalg.solve_triangular(r, np.eye(X.shape[1]))
    return r_inv @ r_inv.T


def _firth_objective(X, y, beta):
    eta = X @ beta
    mu = expit(eta)
    info = (X * (mu * (1 - mu))[:, None]).T @ X
    sign, logdet = np.linalg.slogdet(info)
    loglik = np.sum(y * eta - np.logaddexp(0, eta))
    return loglik + 0.5 * logdet if sign > 0 else -np.inf


def _fit_firth(X, y, tol, max_iter) -> LogisticFit:
    beta = np.zeros(X.shape[1])
    penalised = _firth_objective(X, y, beta)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        mu = expit(X @ beta)
        w = mu * (1 - mu)
        info_inv = linalg.pinvh((X * w[:, None]).T @ X)
        xw = X * np.sqrt(w)[:, None]
        hat = np.einsum("ij,jk,ik->i", xw, info_inv, xw)
        step = info_inv @ (X.T @ (y - mu + hat * (0.5 - mu)))
        step *= min(1.0, 5.0 / max(np.max(np.abs(step)), 1e-300))  # logistf maxstep = 5
        for _ in range(30):
            candidate = _firth_objective(X, y, beta + step)
            if candidate >= penalised - 1e-12:
                break
            step /= 2
        beta = beta + step
        penalised = candidate
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    eta = X @ beta
    mu = expit(eta)
    return LogisticFit(beta, _inverse_information(X, mu), eta, converged, it,
                       _deviance(y, mu), "firth")


# ---------------------------------------------------------------- separation
def detect_separation(X, y) -> tuple[str, np.ndarray]:
    """Complete / quasi-complete separation by linear programming (Konis 2007).

    Separation exists iff some beta != 0 has (2y - 1) * X beta >= 0 for every row; it is
    complete iff the inequality can be strict for all rows. A coefficient's maximum
    likelihood estimate is infinite iff some such beta has a non-zero component there.

    Returns
    -------
    kind : {"none", "quasi-complete", "complete"}
    infinite : bool array (p,)
    """
    X = np.asarray(X, dtype=float)
    scale = np.max(np.abs(X), axis=0)
    scale[scale == 0] = 1.0
    signed = X / scale * (2 * np.asarray(y, dtype=float) - 1)[:, None]
    n, p = signed.shape
    objective = -signed.sum(axis=0)
    # The linear programs below see the data only through one inequality per row,
    # (2y - 1) x'beta >= 0 (or >= t), and rows with the same covariate pattern and
    # treatment give the same inequality: keeping one of each leaves every feasible set
    # as it was. The first objective is still the sum over all n rows and the tolerance
    # still scales with n, so each program, and the verdict, is the one on the full
    # design; a registry has a few thousand distinct rows, not a million.
    signed = signed[distinct_rows(signed)[0]]
    m = len(signed)
    bounds = [(-1.0, 1.0)] * p
    first = optimize.linprog(objective, A_ub=-signed, b_ub=np.zeros(m),
                             bounds=bounds, method="highs")
    infinite = np.zeros(p, dtype=bool)
    if first.status != 0 or -first.fun <= _LP_TOL * n:
        return "none", infinite
    for j in range(p):
        for sign in (1.0, -1.0):
            c = np.zeros(p)
            c[j] = -sign
            res = optimize.linprog(c, A_ub=-signed, b_ub=np.zeros(m), bounds=bounds,
                                   method="highs")
            if res.status == 0 and -res.fun > _LP_TOL:
                infinite[j] = True
    strict = optimize.linprog(np.r_[np.zeros(p), -1.0],
                              A_ub=np.c_[-signed, np.ones(m)], b_ub=np.zeros(m),
                              bounds=bounds + [(0.0, 1.0)], method="highs")
    complete = strict.status == 0 and -strict.fun > _LP_TOL
    return ("complete" if complete else "quasi-complete"), infinite


# ---------------------------------------------------------------- many fits at once
def fit_logistic_many(matrix, treated, mult, tol: float = 1e-10, max_iter: int = 50):
    """Unpenalised logistic fits of many replicates at once (bootstrap frequency weights).

    ``matrix`` (n, q) is the design with intercept, ``treated`` (n,) the 0/1 outcome and
    ``mult`` (B, n) each replicate's multiplicity of each row.

    The iterations are fit_logistic's (R glm's IRLS: same start, same deviance rule),
    with a replicate's multiplicities as frequency weights on the original rows: the
    same likelihood, and the same weighted least-squares step, as on its repeated rows
    (a row drawn m times is one row scaled by sqrt(m)). Each step is solved by QR, as
    fit_logistic's lstsq, on standardised columns (fitted values do not depend on the
    column scaling). Returns the linear predictor (B, n) and a mask of replicates to
    refit one by one with fit_logistic: a rank-deficient design (a covariate constant in
    the replicate), no convergence, or a non-finite step.
    """
    x = np.array(matrix, dtype=float)
    sd = x.std(axis=0)
    varying = sd > 0
    if (~varying).any():          # an intercept: centre the other columns too
        x[:, varying] -= x[:, varying].mean(axis=0)
    x[:, varying] /= sd[varying]
    q = x.shape[1]
    lp = np.full(mult.shape, np.nan)
    gram = np.empty((mult.shape[0], q, q))
    for j in range(q):
        for k in range(j, q):
            gram[:, j, k] = gram[:, k, j] = row_sum(mult * (x[:, j] * x[:, k]))
    eig = np.linalg.eigvalsh(gram)
    refit = eig[:, 0] <= 1e-10 * eig[:, -1]
    active = np.flatnonzero(~refit)
    y = np.asarray(treated, dtype=float)
    mu = np.broadcast_to((y + 0.5) / 2, (active.size, y.size)).copy()
    eta = np.log(mu / (1 - mu))
    dev_old = _deviance_many(y, mu, mult[active])
    eps = np.finfo(float).eps
    for _ in range(max_iter):
        if active.size == 0:
            break
        m = mult[active]
        w = np.maximum(mu * (1 - mu), eps)
        root = np.sqrt(m * w)
        beta = _least_squares(x[None, :, :] * root[:, :, None], root * (eta + (y - mu) / w))
        eta = beta[:, :1] * x[:, 0]
        for j in range(1, q):
            eta += beta[:, j:j + 1] * x[:, j]
        mu = 1 / (1 + np.exp(-np.clip(eta, np.log(eps), -np.log(eps))))
        dev = _deviance_many(y, mu, m)
        bad = ~np.isfinite(dev)
        done = bad | (np.abs(dev - dev_old) / (np.abs(dev) + 0.1) < tol)
        lp[active[done & ~bad]] = eta[done & ~bad]
        refit[active[bad]] = True
        keep = ~done
        active, mu, eta, dev_old = active[keep], mu[keep], eta[keep], dev[keep]
    refit[active] = True
    return lp, refit


def _least_squares(design: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of each replicate (B, n, q) by QR; NaN when singular."""
    qmat, rmat = np.linalg.qr(design)
    qt = np.ascontiguousarray(qmat.transpose(0, 2, 1))
    rhs = (qt * response[:, None, :]).sum(axis=2)
    return _solve(rmat, rhs)


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched solve; NaN rows where a matrix is singular."""
    try:
        return np.linalg.solve(a, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.full_like(b, np.nan)
        for i in range(len(b)):
            try:
                out[i] = np.linalg.solve(a[i], b[i])
            except np.linalg.LinAlgError:
                pass
        return out


def _deviance_many(y, mu, mult) -> np.ndarray:
    return -2 * row_sum(mult * (xlogy(y, mu) + xlogy(1 - y, 1 - mu)))
