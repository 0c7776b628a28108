"""Matching algorithms on a one-dimensional score (the logit of the PS): greedy nearest
neighbour, as MatchIt's ``method = "nearest"``, and optimal matching by
:func:`scipy.optimize.linear_sum_assignment`.

Both return ``{treated row: [control rows]}``; :func:`causal_hcc.matching.match_on_logit`
checks the options, turns the result into a match matrix, weights and subclasses, and
returns a :class:`~causal_hcc.matching.MatchedSample`.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

MAX_OPTIMAL_CELLS = 50_000_000   # treated x ratio x control cost-matrix entries
# Distances equal in exact arithmetic (e.g. controls one year older and one year younger
# than the treated patient) differ by a few ulps in floating point; within this relative
# tolerance they are ties and go to the lower score, as in MatchIt (whose 4.5.1 integer
# truncation of distance * 2^26 makes them ties too).
TIE_TOLERANCE = 1e-10


# ---------------------------------------------------------------- greedy
def greedy_match(score, is_treated, strata, ratio, caliper, replace, order, seed):
    """Greedy nearest-neighbour matching, treated taken in ``order``, within each stratum.

    ``score`` and ``is_treated`` are per row; ``strata`` integer codes or None; ``caliper``
    in score units or None. Returns ``{treated row: [control rows]}`` (MatchIt's pairs).
    """
    t_rows = np.flatnonzero(is_treated)
    if order == "largest":
        t_order = t_rows[np.argsort(-score[t_rows], kind="stable")]
    elif order == "smallest":
        t_order = t_rows[np.argsort(score[t_rows], kind="stable")]
    elif order == "random":
        t_order = t_rows[np.random.default_rng(seed).permutation(len(t_rows))]
    else:
        t_order = t_rows
    if strata is None:
        return _greedy_stratum(score, is_treated, np.arange(len(score)), t_order, ratio,
                               caliper, replace)
    found = {}
    for code in np.unique(strata):
        members = np.flatnonzero(strata == code)
        found.update(_greedy_stratum(score, is_treated, members,
                                     t_order[strata[t_order] == code], ratio, caliper,
                                     replace))
    return found


class _Available:
    """Controls still available, by sorted position: nearest left/right in ~O(1)."""

    def __init__(self, m: int):
        self.left = list(range(m + 1))    # left[j + 1] == j + 1 <=> position j available
        self.right = list(range(m + 1))   # right[m] is the sentinel "none to the right"
        self.count = m

    def find_left(self, j: int) -> int:
        """Largest available position <= j, or -1."""
        parent, k = self.left, j + 1
        root = k
        while parent[root] != root:
            root = parent[root]
        while parent[k] != root:
            parent[k], k = root, parent[k]
        return root - 1

    def find_right(self, j: int) -> int:
        """Smallest available position >= j, or m."""
        parent, k = self.right, j
        root = k
        while parent[root] != root:
            root = parent[root]
        while parent[k] != root:
            parent[k], k = root, parent[k]
        return root

    def remove(self, j: int) -> None:
        self.left[j + 1] = j
        self.right[j] = j + 1
        self.count -= 1


def _greedy_stratum(score, is_treated, members, treated_order, ratio, caliper, replace):
    """Match the treated of one stratum; returns {treated row: [control rows]}."""
    merged = members[np.argsort(score[members], kind="stable")]  # ties: lower row first
    rank = np.empty(len(score), dtype=np.int64)
    rank[merged] = np.arange(len(merged))
    controls = merged[~is_treated[merged]]
    cvals = score[controls]
    m = len(controls)
    found: dict[int, list[int]] = {int(t): [] for t in treated_order}
    if m == 0 or len(treated_order) == 0:
        return found
    cal = np.inf if caliper is None else caliper
    tie = TIE_TOLERANCE * max(1.0, float(np.max(np.abs(score[members]))))
    ins = np.searchsorted(rank[controls], rank[treated_order])
    if replace:
        s = score[treated_order]
        lp, rp = ins - 1, ins.copy()
        for _ in range(ratio):
            dl = np.where(lp >= 0, np.abs(cvals[np.maximum(lp, 0)] - s), np.inf)
            dr = np.where(rp < m, np.abs(cvals[np.minimum(rp, m - 1)] - s), np.inf)
            dl[dl > cal] = np.inf
            dr[dr > cal] = np.inf
            take_left = np.isfinite(dl) & (dl <= dr + tie)
            take_right = ~take_left & np.isfinite(dr)
            chosen = np.where(take_left, lp, np.where(take_right, rp, -1))
            for t, c in zip(treated_order, chosen):
                if c >= 0:
                    found[int(t)].append(int(controls[c]))
            lp = lp - take_left
            rp = rp + take_right
        return found
    avail = _Available(m)
    ins = ins.tolist()
    svals = score[treated_order].tolist()
    cv = cvals.tolist()
    for _ in range(ratio):
        for t, j, s in zip(treated_order.tolist(), ins, svals):
            left = avail.find_left(j - 1)
            right = avail.find_right(j)
            dl = abs(cv[left] - s) if left >= 0 else np.inf
            dr = abs(cv[right] - s) if right < m else np.inf
            dl = dl if dl <= cal else np.inf
            dr = dr if dr <= cal else np.inf
            if dl == np.inf and dr == np.inf:
                continue
            pick = left if dl <= dr + tie else right   # ties go left (lower score)
            found[t].append(int(controls[pick]))
            avail.remove(pick)
            if avail.count == 0:
                return found
    return found


# ---------------------------------------------------------------- optimal
def optimal_match(score, is_treated, strata, ratio, caliper):
    """Optimal 1:k matching: most pairs within caliper/strata, then least total distance.

    Returns ``{treated row: [control rows]}``; ValueError when the cost matrix would exceed
    ``MAX_OPTIMAL_CELLS`` entries.
    """
    t_rows = np.flatnonzero(is_treated)
    c_rows = np.flatnonzero(~is_treated)
    if len(t_rows) * ratio * len(c_rows) > MAX_OPTIMAL_CELLS:
        raise ValueError(f"Optimal matching of {len(t_rows)} x {ratio} treated to "
                         f"{len(c_rows)} controls needs a cost matrix too large for memory "
                         "(and O(n^3) time); use method='nearest'.")
    rows = np.repeat(t_rows, ratio)
    cost = np.abs(score[rows][:, None] - score[c_rows][None, :])
    allowed = np.ones_like(cost, dtype=bool)
    if caliper is not None:
        allowed &= cost <= caliper
    if strata is not None:
        allowed &= strata[rows][:, None] == strata[c_rows][None, :]
    big = (np.ptp(score) + 1.0) * (len(rows) + 1)   # one forbidden pair > all allowed ones
    r_idx, c_idx = linear_sum_assignment(np.where(allowed, cost, big))
    found: dict[int, list[int]] = {int(t): [] for t in t_rows}
    ok = allowed[r_idx, c_idx]
    for r, c in sorted(zip(r_idx[ok], c_idx[ok]), key=lambda rc: (rows[rc[0]], cost[rc])):
        found[int(rows[r])].append(int(c_rows[c]))
    return found


# ---------------------------------------------------------------- order-free (ties = "all")
def score_levels(values, tol: float):
    """Group scores into levels: sorted values closer than ``tol`` to their neighbour are
    one level (single linkage). Returns (level value per input = the level's smallest
    score, level index per input). Depends on the multiset of values only, never on order.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return np.empty(0), np.empty(0, dtype=np.int64)
    srt = np.sort(values)
    starts = np.concatenate([[True], np.diff(srt) > tol])
    level_of_sorted = np.cumsum(starts) - 1
    level_values = srt[starts]
    idx = np.searchsorted(srt, values, side="left")
    return level_values, level_of_sorted[idx]


def tied_match(score, is_focal, strata, ratio, caliper, replace, order, seed):
    """Order-free greedy matching: focal units with equal scores move as one block and
    take ALL available non-focal units at the nearest distance (ties = "all").

    Returns a list of matched sets ``(focal rows, non-focal rows)``, each sorted by row,
    ordered by (stratum code, score level). Row order of the input changes only the row
    numbers inside the sets, never their membership (see
    :func:`causal_hcc.matching.match_on_logit`, Notes).
    """
    if strata is None:
        strata = np.zeros(len(score), dtype=np.int64)
    rng = np.random.default_rng(seed) if order == "random" else None
    out = []
    for code in np.unique(strata):
        members = np.flatnonzero(strata == code)
        out.extend(_tied_stratum(score, is_focal, members, ratio, caliper, replace, order,
                                 rng))
    return out


def _tied_stratum(score, is_focal, members, ratio, caliper, replace, order, rng):
    tol = TIE_TOLERANCE * max(1.0, float(np.max(np.abs(score[members]))))
    level_values, level = score_levels(score[members], tol)
    n_levels = len(level_values)
    focal_m = is_focal[members]
    by_level_f = [[] for _ in range(n_levels)]
    by_level_n = [[] for _ in range(n_levels)]
    for row, lv, f in zip(members.tolist(), level.tolist(), focal_m.tolist()):
        (by_level_f if f else by_level_n)[lv].append(row)
    f_levels = [lv for lv in range(n_levels) if by_level_f[lv]]
    n_levels_idx = np.array([lv for lv in range(n_levels) if by_level_n[lv]], dtype=np.int64)
    if order == "largest":
        f_levels = f_levels[::-1]
    elif order == "random":
        f_levels = [f_levels[i] for i in rng.permutation(len(f_levels))]
    if len(f_levels) == 0 or len(n_levels_idx) == 0:
        return []
    nvals = level_values[n_levels_idx]
    m = len(nvals)
    cal = np.inf if caliper is None else caliper
    taken = {lv: [] for lv in f_levels}
    count = dict.fromkeys(f_levels, 0)
    avail = None if replace else _Available(m)
    pointers = {}
    for r in range(1, ratio + 1):
        for lv in f_levels:
            size = len(by_level_f[lv])
            if count[lv] >= r * size:
                continue
            v = level_values[lv]
            j = int(np.searchsorted(nvals, v, side="left"))
            if replace:
                left, right = pointers.get(lv, (j - 1, j))
            else:
                left, right = avail.find_left(j - 1), avail.find_right(j)
            dl = v - nvals[left] if left >= 0 else np.inf
            dr = nvals[right] - v if right < m else np.inf
            dl = dl if dl <= cal else np.inf
            dr = dr if dr <= cal else np.inf
            if dl == np.inf and dr == np.inf:
                continue
            picks = []
            if dl <= dr + tol:
                picks.append(left)
            if dr <= dl + tol:
                picks.append(right)
            for p in picks:
                rows = by_level_n[n_levels_idx[p]]
                taken[lv].extend(rows)
                count[lv] += len(rows)
                if not replace:
                    avail.remove(p)
            if replace:
                pointers[lv] = (left - (left in picks), right + (right in picks))
            elif avail.count == 0:
                break
    return [(np.array(sorted(by_level_f[lv]), dtype=np.int64),
             np.array(sorted(taken[lv]), dtype=np.int64))
            for lv in sorted(f_levels) if taken[lv]]
