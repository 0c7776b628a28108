"""Cox model on counting-process (start, stop] rows: Efron ties, Newton-Raphson, numpy.

R's ``coxph(Surv(start, stop, event) ~ x, ties = "efron")`` (survival's ``agreg.fit``),
unweighted and unstratified, for the time-varying treatment of
:mod:`causal_hcc.sensitivity.time_varying`. :mod:`causal_hcc.survival.cox` (the package's
one Cox for one row per patient) has no delayed-entry input; this is the (start, stop]
likelihood on its own, small and vectorised (it replaced lifelines'
``CoxTimeVaryingFitter``, whose import alone took about a second).

A row is at risk at an event time t when ``start < t <= stop``. After one sort of the
rows by stop and one by start, every risk-set sum at the event times is a reverse
cumulative sum over the rows with ``stop >= t`` minus one over the rows with
``start >= t`` (the second is empty when every row starts at 0, so right-censored data
need no subtraction); the second-derivative sums are gathered per row (each row's
weight summed over the event times at which it is at risk), so nothing is n x n or
n x p x p. Times are first merged as R's ``aeqSurv`` does (start and stop together).

Newton-Raphson from beta = 0 with step halving when the log-likelihood falls, as R's
``coxph``; it stops after a full step smaller than 1e-10 (relative to 1 + |beta|), which
(Newton's convergence being quadratic) leaves the maximum to machine precision, where R
stops on the relative change of the log-likelihood (``eps = 1e-9``). Checked against R run with ``eps = 1e-14``
(tests/reference/counting_process.R; tests/test_sensitivity_counting_process.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_hcc.survival.risk_sets import timefix

MAX_ITER = 50           # Newton steps (R: iter.max = 20 at eps 1e-9; we go to the end)
STEP_TOL = 1e-10        # a step this small (relative to 1 + |beta|) is the last one
MAX_HALVING = 30


class CoxFitError(ValueError):
    """The (start, stop] Cox fit failed: singular information, no convergence.

    ``beta``: the coefficients reached (None when the first step failed).
    """

    def __init__(self, message: str, beta: np.ndarray | None = None):
        super().__init__(message)
        self.beta = beta


@dataclass(frozen=True)
class _RiskSets:
    """Everything about the rows that does not depend on beta."""

    x: np.ndarray            # n x p, centred on the column means (as R)
    by_stop: np.ndarray      # rows sorted by stop
    by_start: np.ndarray     # rows sorted by start
    at_stop: np.ndarray      # per event time: first stop-sorted row with stop >= t
    at_start: np.ndarray     # per event time: first start-sorted row with start >= t
    dead: np.ndarray         # rows with an event
    dead_time: np.ndarray    # event-time index of each of them
    slot_time: np.ndarray    # event-time index of each Efron slot (one per death)
    slot_frac: np.ndarray    # k / d of the slot (k = 0..d-1 at a time with d deaths)
    risk_lo: np.ndarray      # per row: first event time at which it is at risk
    risk_hi: np.ndarray      # per row: one past the last
    n_times: int


def _risk_sets(start, stop, event, x) -> _RiskSets:
    n = len(stop)
    both = timefix(np.concatenate([start, stop]))
    start, stop = both[:n], both[n:]
    dead = np.flatnonzero(event)
    times = np.unique(stop[dead])
    by_stop = np.argsort(stop, kind="stable")
    by_start = np.argsort(start, kind="stable")
    dead_time = np.searchsorted(times, stop[dead])
    d = np.bincount(dead_time, minlength=len(times))
    slot_time = np.repeat(np.arange(len(times)), d)
    first = np.cumsum(d) - d
    slot_frac = (np.arange(len(dead)) - first[slot_time]) / d[slot_time]
    return _RiskSets(
        x=x - x.mean(axis=0), by_stop=by_stop, by_start=by_start,
        at_stop=np.searchsorted(stop[by_stop], times, side="left"),
        at_start=np.searchsorted(start[by_start], times, side="left"),
        dead=dead, dead_time=dead_time, slot_time=slot_time, slot_frac=slot_frac,
        risk_lo=np.searchsorted(times, start, side="right"),
        risk_hi=np.searchsorted(times, stop, side="right"), n_times=len(times))


def _at_times(rs: _RiskSets, values: np.ndarray) -> np.ndarray:
    """Sum of ``values`` (per row, 1-D or n x p) over each event time's risk set."""
    def tail(order, at):
        v = values[order]
        cum = np.concatenate([np.cumsum(v[::-1], axis=0)[::-1],
                              np.zeros((1,) + v.shape[1:])])
        return cum[at]
    return tail(rs.by_stop, rs.at_stop) - tail(rs.by_start, rs.at_start)


def _terms(rs: _RiskSets, beta: np.ndarray):
    """Log partial likelihood, score and information at ``beta`` (Efron)."""
    x = rs.x
    eta = x @ beta
    r = np.exp(eta)
    rx = r[:, None] * x
    s0 = _at_times(rs, r)
    s1 = _at_times(rs, rx)
    rd = r[rs.dead]
    d0 = np.bincount(rs.dead_time, rd, minlength=rs.n_times)
    d1 = np.column_stack([np.bincount(rs.dead_time, rx[rs.dead, k], minlength=rs.n_times)
                          for k in range(x.shape[1])])
    t, f = rs.slot_time, rs.slot_frac
    den = s0[t] - f * d0[t]
    mean = (s1[t] - f[:, None] * d1[t]) / den[:, None]
    loglik = eta[rs.dead].sum() - np.log(den).sum()
    score = x[rs.dead].sum(axis=0) - mean.sum(axis=0)
    # sum over slots of (S2 - f D2) / den, gathered per row: each row's r x x' times the
    # sum of 1/den over the slots of the event times at which it is at risk, minus (for
    # a death) f/den over the slots of its own time.
    c = np.bincount(t, 1.0 / den, minlength=rs.n_times)
    e = np.bincount(t, f / den, minlength=rs.n_times)
    ccum = np.concatenate([[0.0], np.cumsum(c)])
    w = r * (ccum[rs.risk_hi] - ccum[rs.risk_lo])
    w[rs.dead] -= rd * e[rs.dead_time]
    info = (x * w[:, None]).T @ x - mean.T @ mean
    return loglik, score, info


def fit_cp_cox(start, stop, event, x) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Efron Cox fit on (start, stop] rows: (coef, inverse information, loglik, iterations).

    Raises
    ------
    CoxFitError
        A singular information matrix or no convergence in :data:`MAX_ITER` steps.
    """
    start = np.asarray(start, float)
    stop = np.asarray(stop, float)
    x = np.asarray(x, float).reshape(len(stop), -1)
    rs = _risk_sets(start, stop, np.asarray(event) == 1, x)
    # Overflow on the way to a diverging (infinite) coefficient is handled, not warned.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _newton(rs, np.zeros(x.shape[1]))


def _newton(rs: _RiskSets, beta: np.ndarray):
    loglik, score, info = _terms(rs, beta)
    for iteration in range(1, MAX_ITER + 1):
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            raise CoxFitError("singular information matrix", beta) from None
        new = beta + step
        new_terms = _terms(rs, new)
        halving = 0
        while not np.isfinite(new_terms[0]) or new_terms[0] < loglik - 1e-12 * abs(loglik):
            if halving == MAX_HALVING:
                raise CoxFitError("the log-likelihood does not increase along the Newton "
                                  "step", beta)
            new = (beta + new) / 2
            new_terms = _terms(rs, new)
            halving += 1
        beta, (loglik, score, info) = new, new_terms
        if halving == 0 and np.max(np.abs(step)) <= STEP_TOL * (1 + np.max(np.abs(beta))):
            break
    else:
        raise CoxFitError(f"no convergence in {MAX_ITER} Newton-Raphson steps", beta)
    try:
        var = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        raise CoxFitError("singular information matrix", beta) from None
    return beta, var, float(loglik), iteration
