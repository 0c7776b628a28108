"""Risk sets of the Cox partial likelihood, shared by the single and the batched fit.

After one sort by (stratum, time), every risk-set quantity is a reverse cumulative sum
over the sorted rows: :func:`risk_sets` builds the tie structure R's C code walks through
(blocks, event groups, Efron slots), :func:`likelihood_terms` the partial likelihood, its
score and information, and :func:`score_residuals` the per-row score residuals of the
robust variance (R's ``coxscore2``). :func:`timefix` merges times that differ only by
floating-point noise, as R's ``aeqSurv``. Used by :mod:`causal_hcc.survival.cox`,
:mod:`causal_hcc.survival.cox_many` and :mod:`causal_hcc.survival.zph`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def group_codes(values, n: int) -> np.ndarray:
    """Integer codes 0..k-1 of a grouping variable (strata or clusters); None -> zeros."""
    if values is None:
        return np.zeros(n, dtype=np.int64)
    values = np.asarray(values)
    if values.shape != (n,):
        raise ValueError(f"grouping variable has shape {values.shape}; expected ({n},)")
    return np.unique(values, return_inverse=True)[1].astype(np.int64).ravel()


@dataclass(frozen=True)
class RiskSets:
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
    weight_dead: np.ndarray    # weight of each event row (w[dead])
    dead_bin: np.ndarray       # per row: its group if an event row, else n_groups (a spare)
    group_deaths: np.ndarray   # events of each group (Efron slots per group)
    one_stratum: bool          # a single stratum: row_lo is 0, group_end is n everywhere


def time_order(time: np.ndarray, order: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(timefix(time), order)``: the fixed times and their stable sort order, with one
    sort (``timefix`` alone sorts the distinct times; here the same sort serves both).

    ``order``: the stable sort order of ``time`` when the caller knows it already
    (:func:`subset_order`: several fits on subsets of one cohort sort its times once).
    """
    time = np.asarray(time, dtype=float)
    if order is None:
        order = np.argsort(time, kind="stable")
    t = time[order]
    finite = t[np.isfinite(t)]
    uniq = finite[np.r_[True, finite[1:] != finite[:-1]]] if finite.size else finite
    if uniq.size < 2:
        return time, order
    gap = np.diff(uniq)
    tied = (gap <= TIMEFIX_TOL) | (gap / np.mean(np.abs(uniq)) <= TIMEFIX_TOL)
    if not tied.any():
        return time, order
    fixed = timefix(time)          # rare: times merged, so ties (and the order) change
    return fixed, np.argsort(fixed, kind="stable")


def subset_order(order: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The stable sort order of ``values[keep]`` from ``order``, the stable sort order of
    ``values`` (boolean ``keep``), in O(n) instead of a new sort: dropping rows keeps the
    others' (value, row) order, which is what a stable sort gives."""
    position = np.cumsum(keep) - 1              # row -> its index among the kept rows
    return position[order[keep[order]]]


def risk_sets(time, event, x, weight, stratum, ties, time_sorted=None) -> RiskSets:
    """Sort by (stratum, time), centre the covariates, and index blocks, groups and slots.

    ``time_sorted``: the stable sort order of ``time`` when already known
    (:func:`time_order`); with strata it is refined by a stable sort on the stratum, which
    gives the same order as sorting by (stratum, time) at once.
    """
    if time_sorted is None:
        order = np.lexsort((time, stratum))
    elif stratum.size and stratum.max() > 0:
        order = time_sorted[np.argsort(stratum[time_sorted], kind="stable")]
    else:
        order = time_sorted
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
    dead_group = row_group[block][dead]
    dead_bin = np.full(n, group_block.size)
    dead_bin[dead] = dead_group
    row_lo = np.searchsorted(group_block, block_stratum_start[block])
    return RiskSets(order, t, d, xs, means, w, s, block, block_first, stratum_end,
                     block_stratum_start, group_block, row_group[block], slot_group,
                     slot_frac, slot_mw, ties, dead, dead_group, group_first,
                     stratum_end[group_first],
                     np.searchsorted(group_block, block, side="right"), row_lo,
                     (w[dead, None] * xs[dead]).sum(axis=0), w[dead], dead_bin, dg,
                     not new_stratum[1:].any())


def risk_set_sums(values: np.ndarray, rs: RiskSets) -> np.ndarray:
    """Per event group: sum of ``values`` over its risk set (rows of its stratum from its
    time on), by one reverse cumulative sum over the sorted rows."""
    c = np.cumsum(values[::-1], axis=0)[::-1]
    c = np.concatenate([c, np.zeros((1,) + values.shape[1:])])
    return c[rs.group_first] - c[rs.group_end]


# ----------------------------------------------------------------------------- likelihood
@dataclass(frozen=True)
class LikelihoodTerms:
    """Partial likelihood and the per-slot pieces its derivatives and residuals need."""

    loglik: float
    score: np.ndarray
    info: np.ndarray
    risk: np.ndarray        # exp(eta), sorted rows (shifted: ratios are what matter)
    slot_den: np.ndarray
    slot_mean: np.ndarray
    slot_h: np.ndarray      # hazard increment mw / den of each slot


def likelihood_terms(beta: np.ndarray, rs: RiskSets) -> LikelihoodTerms:
    """Log partial likelihood, score and information at ``beta`` (Efron or Breslow)."""
    eta = rs.x @ beta
    # A common shift of eta cancels in every ratio and in the log-likelihood
    # (sum of slot weights = sum of event weights), and prevents overflow.
    shift = eta.max() if eta.size else 0.0
    risk = np.exp(eta - shift)
    wr = rs.weight * risk
    dead = rs.dead
    # w r and w r x, one contiguous column each (cumulative sums and bincounts run along
    # a column; the values and their order of summation are those of the (n, 1 + p) sums).
    wrx = np.empty((1 + rs.x.shape[1], wr.size))
    wrx[0] = wr
    for j in range(rs.x.shape[1]):
        np.multiply(wr, rs.x[:, j], out=wrx[1 + j])
    all_sums = _risk_set_sums_columns(wrx, rs)       # (groups, 1 + p): S and A
    n_groups = rs.group_first.size
    dead_sums = np.empty_like(all_sums)              # the same per group, event rows only
    for j, col in enumerate(wrx):
        dead_sums[:, j] = np.bincount(rs.dead_bin, weights=col,
                                      minlength=n_groups + 1)[:n_groups]
    frac = rs.slot_frac
    if rs.ties == "efron":                           # slots of a group are consecutive
        all_s, dead_s = (np.repeat(a, rs.group_deaths, axis=0) for a in (all_sums, dead_sums))
    else:                                            # one slot per group
        all_s, dead_s = all_sums, dead_sums
    den = all_s[:, 0] - frac * dead_s[:, 0]
    mean = (all_s[:, 1:] - frac[:, None] * dead_s[:, 1:]) / den[:, None]
    with np.errstate(divide="ignore"):
        loglik = float(np.sum(rs.weight_dead * (eta[dead] - shift))
                       - np.sum(rs.slot_mw * np.log(den)))
    score = rs.wx_dead - rs.slot_mw @ mean
    h = rs.slot_mw / den
    info = information(rs, wr, mean, h)
    return LikelihoodTerms(loglik, score, info, risk, den, mean, h)


def _risk_set_sums_columns(columns: np.ndarray, rs: RiskSets) -> np.ndarray:
    """:func:`risk_set_sums` of the columns of a (k, n) array, as a (groups, k) array:
    each reverse cumulative sum runs along a contiguous row into one buffer whose extra
    last entry is the 0 past the end (no reversed copies, no concatenation)."""
    k, n = columns.shape
    c = np.empty((k, n + 1))
    c[:, n] = 0.0
    for j in range(k):
        np.cumsum(columns[j, ::-1], out=c[j, n - 1::-1])
    if rs.one_stratum:       # every group's risk set runs to the end: c[n] = 0 exactly
        return c[:, rs.group_first].T
    return (c[:, rs.group_first] - c[:, rs.group_end]).T


def group_sum(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Sum rows of ``values`` (1-D or 2-D) by integer ``index`` (fast np.add.at)."""
    if values.ndim == 1:
        return np.bincount(index, weights=values, minlength=size)
    # One bincount over (group, column) cells; each cell adds its rows in row order.
    k = values.shape[1]
    cells = (index[:, None] * k + np.arange(k)).ravel()
    return np.bincount(cells, weights=values.ravel(), minlength=size * k).reshape(size, k)


def row_cumulative(rs: RiskSets, per_slot: np.ndarray) -> np.ndarray:
    """For each row: sum of ``per_slot`` over the slots whose risk set contains it.

    A row is in every slot of each earlier event group of its stratum; at its own event
    time a censored row is in every slot, an event row of slot k only with weight
    (1 - k/d) (Efron: the events are removed from the risk set a fraction at a time).
    """
    n_groups = rs.group_block.size
    extra = per_slot.shape[1:]
    full = group_sum(rs.slot_group, per_slot, n_groups)
    part = group_sum(rs.slot_group, rs.slot_frac.reshape((-1,) + (1,) * len(extra))
                      * per_slot, n_groups)
    cum = np.concatenate([np.zeros((1,) + extra), np.cumsum(full, axis=0)])
    # One stratum: row_lo is 0 and cum[0] = 0, so the subtraction would change nothing.
    out = cum[rs.row_hi] if rs.one_stratum else cum[rs.row_hi] - cum[rs.row_lo]
    out[rs.dead] -= part[rs.dead_group]
    return out


def information(rs, wr, mean, h, slot_coef=None) -> np.ndarray:
    """sum_s c_s mw_s [C_s / den_s - m_s m_s'] without forming per-slot p x p sums
    (c_s = 1 unless ``slot_coef`` is given)."""
    coef_h, coef_mw = (h, rs.slot_mw) if slot_coef is None else (slot_coef * h,
                                                                  slot_coef * rs.slot_mw)
    row_h = row_cumulative(rs, coef_h)
    first = (rs.x * (wr * row_h)[:, None]).T @ rs.x
    second = (mean * coef_mw[:, None]).T @ mean
    return first - second


def score_residuals(rs: RiskSets, tm: LikelihoodTerms) -> np.ndarray:
    """Score residuals in sorted order, as R's ``coxscore2`` (unweighted)."""
    row_h = row_cumulative(rs, tm.slot_h)
    row_hm = row_cumulative(rs, tm.slot_h[:, None] * tm.slot_mean)
    resid = -tm.risk[:, None] * (rs.x * row_h[:, None] - row_hm)
    dead = rs.dead
    n_groups = rs.group_block.size
    mbar = group_sum(rs.slot_group, tm.slot_mean, n_groups)
    mbar /= np.bincount(rs.slot_group, minlength=n_groups)[:, None]
    resid[dead] += rs.x[dead] - mbar[rs.row_group[dead]]
    return resid
