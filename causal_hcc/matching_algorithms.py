"""Matching algorithms on a one-dimensional score (the logit of the PS): greedy nearest
neighbour, as MatchIt's ``method = "nearest"``, and optimal matching by
:func:`scipy.optimize.linear_sum_assignment`.

Both return ``{treated row: [control rows]}``; :func:`causal_hcc.matching.match_on_logit`
checks the options, turns the result into a match matrix, weights and subclasses, and
returns a :class:`~causal_hcc.matching.MatchedSample`.
"""

from __future__ import annotations

import math

import numpy as np

from causal_hcc.matching_sweep import sweep_match

MAX_OPTIMAL_CELLS = 50_000_000   # treated x ratio x control cost-matrix entries
# Distances equal in exact arithmetic (e.g. controls one year older and one year younger
# than the treated patient) differ by a few ulps in floating point; within this relative
# tolerance they are ties and go to the lower score, as in MatchIt (whose 4.5.1 integer
# truncation of distance * 2^26 makes them ties too).
TIE_TOLERANCE = 1e-10
#: MatchIt 4.5.1's default m.order for a numeric distance, per estimand.
MATCHIT_ORDER = {"ATT": "largest", "ATC": "smallest"}


# ---------------------------------------------------------------- greedy
def greedy_match(score, is_treated, strata, ratio, caliper, replace, order, seed):
    """Greedy nearest-neighbour matching, treated taken in ``order``, within each stratum.

    ``score`` and ``is_treated`` are per row; ``strata`` integer codes or None; ``caliper``
    in score units or None. Returns ``{treated row: [control rows]}`` (MatchIt's pairs),
    stratum by stratum, in the order they chose; :func:`greedy_matrix` gives the same as
    arrays.
    """
    mm = greedy_matrix(score, is_treated, strata, ratio, caliper, replace, order, seed)
    t_rows = np.flatnonzero(is_treated)
    index = np.empty(len(score), dtype=np.int64)
    index[t_rows] = np.arange(len(t_rows))
    t_order = _focal_order(score, is_treated, order, seed)
    return {t: [c for c in mm[index[t]].tolist() if c >= 0]
            for _, t_sub in _strata_groups(strata, len(score), t_order)
            for t in t_sub.tolist()}


def greedy_matrix(score, is_treated, strata, ratio, caliper, replace, order, seed):
    """:func:`greedy_match` as a match matrix: row i holds the partners (rows, in the order
    chosen) of the i-th treated row in row order, -1 = none; shape (n treated, ratio).

    1:1 without replacement in order "largest" or "smallest" (the defaults) goes through
    :func:`causal_hcc.matching_sweep.sweep_match` where it applies and the stratum has at
    least :data:`LEVELS_LOOP_MAX` members: the same pairs by a loop over the distinct
    scores instead of the patients.
    """
    t_rows = np.flatnonzero(is_treated)
    mm = np.full((len(t_rows), ratio), -1, dtype=np.int64)
    index = np.empty(len(score), dtype=np.int64)
    index[t_rows] = np.arange(len(t_rows))
    t_order = _focal_order(score, is_treated, order, seed)
    for members, t_sub in _strata_groups(strata, len(score), t_order):
        pairs = None
        if (ratio == 1 and not replace and order in ("largest", "smallest")
                and members.size >= LEVELS_LOOP_MAX):   # small strata: the loop is faster
            pairs = sweep_match(score, is_treated, members, order == "largest", caliper,
                                _tie(score, members))
        if pairs is None:
            pairs = _greedy_stratum(score, is_treated, members, t_sub, ratio, caliper,
                                    replace)
        f, slot, p = pairs if len(pairs) == 3 else (pairs[0], 0, pairs[1])
        mm[index[f], slot] = p
    return mm


def _focal_order(score, is_treated, order, seed):
    """The treated rows in the order they choose."""
    t_rows = np.flatnonzero(is_treated)
    if order == "largest":
        return t_rows[np.argsort(-score[t_rows], kind="stable")]
    if order == "smallest":
        return t_rows[np.argsort(score[t_rows], kind="stable")]
    if order == "random":
        return t_rows[np.random.default_rng(seed).permutation(len(t_rows))]
    return t_rows


def _strata_groups(strata, n, t_order):
    """(member rows ascending, treated rows of ``t_order`` in that order) per stratum, by
    ascending stratum code; one group of everyone when ``strata`` is None."""
    if strata is None:
        yield np.arange(n), t_order
        return
    strata = np.asarray(strata)
    by_code = np.argsort(strata, kind="stable")            # rows ascending within a code
    codes = strata[by_code]
    cuts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    t_by_code = t_order[np.argsort(strata[t_order], kind="stable")]  # keeps t_order
    t_codes = strata[t_by_code]
    for members in np.split(by_code, cuts):
        code = strata[members[0]]
        yield members, t_by_code[np.searchsorted(t_codes, code, side="left"):
                                 np.searchsorted(t_codes, code, side="right")]


def _tie(score, members) -> float:
    """The tie tolerance of a stratum: TIE_TOLERANCE relative to its largest |score|."""
    return TIE_TOLERANCE * max(1.0, float(np.max(np.abs(score[members]))))


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
    """Match the treated of one stratum, one at a time in ``treated_order``; returns
    (treated rows, slots, control rows) of the pairs. A treated patient without a partner
    in round r gets none later (partners only move away), so a pair of round r is in
    slot r."""
    merged = members[np.argsort(score[members], kind="stable")]  # ties: lower row first
    rank = np.empty(len(score), dtype=np.int64)
    rank[merged] = np.arange(len(merged))
    controls = merged[~is_treated[merged]]
    cvals = score[controls]
    m = len(controls)
    out_f, out_s, out_p = [], [], []
    if m == 0 or len(treated_order) == 0:
        return (np.array(out_f, dtype=np.int64),) * 3
    cal = np.inf if caliper is None else caliper
    tie = _tie(score, members)
    ins = np.searchsorted(rank[controls], rank[treated_order])
    if replace:
        s = score[treated_order]
        lp, rp = ins - 1, ins.copy()
        for r in range(ratio):
            dl = np.where(lp >= 0, np.abs(cvals[np.maximum(lp, 0)] - s), np.inf)
            dr = np.where(rp < m, np.abs(cvals[np.minimum(rp, m - 1)] - s), np.inf)
            dl[dl > cal] = np.inf
            dr[dr > cal] = np.inf
            take_left = np.isfinite(dl) & (dl <= dr + tie)
            take_right = ~take_left & np.isfinite(dr)
            chosen = np.where(take_left, lp, np.where(take_right, rp, -1))
            got = chosen >= 0
            out_f.append(treated_order[got])
            out_s.append(np.full(int(got.sum()), r, dtype=np.int64))
            out_p.append(controls[chosen[got]])
            lp = lp - take_left
            rp = rp + take_right
        return tuple(np.concatenate(c) for c in (out_f, out_s, out_p))
    avail = _Available(m)
    ins = ins.tolist()
    svals = score[treated_order].tolist()
    cv = cvals.tolist()
    t_list = treated_order.tolist()
    for r in range(ratio):
        for t, j, s in zip(t_list, ins, svals):
            left = avail.find_left(j - 1)
            right = avail.find_right(j)
            dl = abs(cv[left] - s) if left >= 0 else np.inf
            dr = abs(cv[right] - s) if right < m else np.inf
            dl = dl if dl <= cal else np.inf
            dr = dr if dr <= cal else np.inf
            if dl == np.inf and dr == np.inf:
                continue
            pick = left if dl <= dr + tie else right   # ties go left (lower score)
            out_f.append(t)
            out_s.append(r)
            out_p.append(pick)
            avail.remove(pick)
            if avail.count == 0:
                break
        if avail.count == 0:
            break
    return (np.array(out_f, dtype=np.int64), np.array(out_s, dtype=np.int64),
            controls[np.array(out_p, dtype=np.int64)])


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
    from scipy.optimize import linear_sum_assignment   # only here: keeps imports light
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
def tied_match(score, is_focal, strata, ratio, caliper, replace, order, seed):
    """Order-free greedy matching: focal units with equal scores move as one block and
    take ALL available non-focal units at the nearest distance (ties = "all").

    Returns a list of matched sets ``(focal rows, non-focal rows)``, each sorted by row,
    ordered by (stratum code, score level). Row order of the input changes only the row
    numbers inside the sets, never their membership (see
    :func:`causal_hcc.matching.match_on_logit`, Notes).
    """
    return [(np.array(f, dtype=np.int64), np.array(p, dtype=np.int64))
            for f, p in _tied_lists(score, is_focal, strata, ratio, caliper, replace, order,
                                    seed)]


def _tied_lists(score, is_focal, strata, ratio, caliper, replace, order, seed):
    """tied_match's sets as pairs of sorted lists of rows (no arrays per set)."""
    rng = np.random.default_rng(seed) if order == "random" else None
    if strata is None:
        return _tied_stratum(score, is_focal, np.arange(len(score)), ratio, caliper, replace,
                             order, rng)
    out = []
    for members, _ in _strata_groups(strata, len(score), np.empty(0, dtype=np.int64)):
        out.extend(_tied_stratum(score, is_focal, members, ratio, caliper, replace, order,
                                 rng))
    return out


#: Below this many members a stratum's levels are built by :func:`_levels_loop` (0.44 vs
#: 0.69 ms per 76-patient matching: the bootstrap and the grid match thousands of times).
LEVELS_LOOP_MAX = 2000


def _sorted_level_starts(score, members):
    """(sort order of the members' scores, the sorted scores, the tie tolerance, whether
    each sorted score starts a new level: it is more than ``tol`` above the previous)."""
    values = score[members]
    srt = np.argsort(values, kind="stable")
    ordered = values[srt]
    tol = TIE_TOLERANCE * max(1.0, float(max(abs(ordered[0]), abs(ordered[-1]))))
    starts = np.empty(ordered.size, dtype=bool)
    starts[0] = True
    np.greater(np.diff(ordered), tol, out=starts[1:])
    return srt, ordered, tol, starts


def _levels_loop(score, is_focal, members):
    """:func:`_levels_of_stratum` as one Python pass over the sorted scores: the same
    levels (tests/test_matching_sweep.py), faster below :data:`LEVELS_LOOP_MAX` members,
    where numpy's per-call overhead outweighs the loop. Sorted scores closer
    than ``tol`` to their neighbour are one level (single linkage), whose value is its
    smallest score; so the levels depend on the multiset of scores, never on row order.

    Returns (tol, focal level values, focal rows per level, partner level values, partner
    rows per level, for each focal level the number of partner levels below it), levels
    ascending, rows ascending within a level.
    """
    srt, ordered, tol, starts = _sorted_level_starts(score, members)
    f_vals, f_rows, n_vals, n_rows, below = [], [], [], [], []
    level_value = cur_f = cur_n = None
    for row, focal, start, value in zip(members[srt].tolist(), is_focal[members][srt].tolist(),
                                        starts.tolist(), ordered.tolist()):
        if start:       # a level's value is its smallest score, as score_levels
            level_value, cur_f, cur_n, n_before = value, None, None, len(n_vals)
        if focal:
            if cur_f is None:
                cur_f = []
                f_vals.append(level_value)
                f_rows.append(cur_f)
                below.append(n_before)
            cur_f.append(row)
        else:
            if cur_n is None:
                cur_n = []
                n_vals.append(level_value)
                n_rows.append(cur_n)
            cur_n.append(row)
    for group in (*f_rows, *n_rows):
        if len(group) > 1:
            group.sort()
    return tol, f_vals, f_rows, n_vals, n_rows, below


def _levels_of_stratum(score, is_focal, members):
    """The levels of one stratum from its sorted scores (numpy, no loop): sorted scores closer
    than ``tol`` to their neighbour are one level (single linkage), whose value is its
    smallest score; so the levels depend on the multiset of scores, never on row order.

    Returns (tol, focal level values, focal rows per level, partner level values, partner
    rows per level, for each focal level the number of partner levels below it), levels
    ascending, rows ascending within a level.
    """
    if members.size < LEVELS_LOOP_MAX:
        return _levels_loop(score, is_focal, members)
    srt, ordered, tol, starts = _sorted_level_starts(score, members)
    level = np.cumsum(starts) - 1                    # level number per sorted score
    level_value = ordered[starts]                    # a level's value: its smallest score
    rows = members[srt]
    focal = is_focal[members][srt]
    f_level, f_vals, f_rows = _rows_by_level(level[focal], rows[focal], level_value)
    n_level, n_vals, n_rows = _rows_by_level(level[~focal], rows[~focal], level_value)
    below = np.searchsorted(n_level, f_level).tolist()
    return tol, f_vals, f_rows, n_vals, n_rows, below


def _rows_by_level(level, rows, level_value):
    """(levels present, their values, their rows ascending) as lists, levels ascending."""
    # ``level`` ascends already; rows ascend within a level unless it holds several
    # distinct scores (then a stable sort by row within level is needed).
    step = np.diff(rows)
    if np.any((step < 0) & (np.diff(level) == 0)):
        by = np.lexsort((rows, level))
        level, rows = level[by], rows[by]
    cut = np.flatnonzero(level[1:] != level[:-1]) + 1
    present = level[np.r_[0, cut]] if level.size else level
    return (present, level_value[present].tolist(),
            [part.tolist() for part in np.split(rows, cut)] if rows.size else [])


def _tied_stratum(score, is_focal, members, ratio, caliper, replace, order, rng):
    """The sets of one stratum as (sorted focal rows, sorted partner rows) lists.

    Plain Python floats and lists inside the loop (the greedy choice is sequential): the
    same comparisons as on numpy scalars, at a fraction of the cost per level.
    """
    tol, fvals, f_rows, nvals, n_rows, starts = _levels_of_stratum(score, is_focal, members)
    n_f = len(f_rows)
    seq = list(range(n_f))
    if order == "largest":
        seq = seq[::-1]
    elif order == "random":
        seq = [seq[i] for i in rng.permutation(n_f)]
    if n_f == 0 or len(n_rows) == 0:
        return []
    sizes = [len(f) for f in f_rows]
    m = len(nvals)
    inf = float("inf")
    cal = inf if caliper is None else caliper
    taken = [[] for _ in range(n_f)]
    count = [0] * n_f
    avail = None if replace else _Available(m)
    pointers = {}
    for r in range(1, ratio + 1):
        for i in seq:
            if count[i] >= r * sizes[i]:
                continue
            v, j = fvals[i], starts[i]
            if replace:
                left, right = pointers.get(i, (j - 1, j))
            else:
                left, right = avail.find_left(j - 1), avail.find_right(j)
            dl = v - nvals[left] if left >= 0 else inf
            dr = nvals[right] - v if right < m else inf
            dl = dl if dl <= cal else inf
            dr = dr if dr <= cal else inf
            if dl == inf and dr == inf:
                continue
            picks = []
            if dl <= dr + tol:
                picks.append(left)
            if dr <= dl + tol:
                picks.append(right)
            for p in picks:
                rows = n_rows[p]
                taken[i].extend(rows)
                count[i] += len(rows)
                if not replace:
                    avail.remove(p)
            if replace:
                pointers[i] = (left - (left in picks), right + (right in picks))
            elif avail.count == 0:
                break
    return [(f_rows[i], sorted(taken[i])) for i in range(n_f) if taken[i]]


def match_weights(logit_ps, treated, *, caliper_sd=0.2, ratio: int = 1, replace=False,
                  order: str | None = None, seed=None, ties: str = "matchit",
                  estimand: str = "ATT", sd_denominator: str = "all"):
    """The weights of :func:`causal_hcc.matching.match_on_logit` (no exact strata), alone.

    Same options and the same numbers, bit for bit, as ``match_on_logit(...).weights``,
    without building the :class:`~causal_hcc.matching.MatchedSample` (ids, match matrix,
    subclasses, notes): for loops that need only the weights, such as the bootstrap's
    re-matching and :func:`causal_hcc.effects.matched.order_spread`. Options are not
    checked here (the caller has passed them through ``match_on_logit`` once).

    Returns
    -------
    numpy.ndarray (n,) or None
        MatchIt's matching weights; None where ``match_on_logit`` raises
        NotEstimableError (a non-finite score, or no focal patient with a partner within
        the caliper).
    """
    order = MATCHIT_ORDER.get(estimand, "largest") if order is None else order
    score = np.asarray(logit_ps, dtype=float)
    is_treated = np.asarray(treated).astype(int) == 1
    is_focal = is_treated if estimand == "ATT" else ~is_treated
    if not np.all(np.isfinite(score)):
        return None
    sd_value = logit_sd(score, is_treated, sd_denominator)
    caliper = None if caliper_sd is None else caliper_sd * sd_value
    if ties == "all":
        sets = _tied_lists(score, is_focal, None, ratio, caliper, replace, order, seed)
        return _set_weights_flat(sets, is_focal) if sets else None
    mm = greedy_matrix(score, is_focal, None, ratio, caliper, replace, order, seed)
    if not np.any(mm >= 0):
        return None
    if ratio == 1 and not replace:
        # 1:1 without replacement: matching_weights gives every matched patient 1.0 (the
        # partners' scale factor is m / m = 1.0 exactly): set them directly.
        got = mm[:, 0] >= 0
        weights = np.zeros(len(score))
        weights[np.flatnonzero(is_focal)[got]] = 1.0
        weights[mm[got, 0]] = 1.0
        return weights
    return matching_weights(mm, is_focal.astype(int))


# ---------------------------------------------------------------- weights and subclass
def matching_weights(match_matrix: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """MatchIt's weights from a match matrix (rows: treated patients in row order).

    Notes
    -----
    As MatchIt's ``weights.matrix``: each matched treated patient 1; each control receives
    1/k from every treated patient it is matched to (k = that patient's number of
    controls); control weights are then scaled to sum to the number of distinct matched
    controls. 1:1 without replacement gives weights 1 and 0.
    """
    treated = np.asarray(treated)
    weights = np.zeros(len(treated))
    t_rows = np.flatnonzero(treated == 1)
    match_matrix = np.asarray(match_matrix, dtype=np.int64).reshape(len(t_rows), -1)
    valid = match_matrix >= 0
    counts = valid.sum(axis=1)
    weights[t_rows[counts > 0]] = 1.0
    # Row-major order of (treated, slot): the additions happen in the same order as a
    # loop over treated patients, so the weights are the same to the last bit.
    rows, slots = np.nonzero(valid)
    np.add.at(weights, match_matrix[rows, slots], 1.0 / counts[rows])
    control = treated == 0
    total = weights[control].sum()
    if total > 0:
        weights[control] *= np.sum(weights[control] > 0) / total
    return weights


def _subclass(match_matrix, treated, replace) -> np.ndarray:
    """Matched-set number per patient (1, 2, ... by treated row order); -1 if unmatched."""
    sub = np.full(len(treated), -1, dtype=np.int64)
    if replace:
        return sub
    t_rows = np.flatnonzero(np.asarray(treated) == 1)
    match_matrix = np.asarray(match_matrix, dtype=np.int64).reshape(len(t_rows), -1)
    valid = match_matrix >= 0
    has = valid.any(axis=1)
    set_id = np.cumsum(has)
    sub[t_rows[has]] = set_id[has]
    rows, slots = np.nonzero(valid)
    sub[match_matrix[rows, slots]] = set_id[rows]
    return sub


def set_weights(sets, is_focal: np.ndarray) -> np.ndarray:
    """MatchIt-style weights of matched sets (``ties="all"``).

    Each focal patient of a set with k partners gives 1/k to each partner (so a partner of a
    set with f focal patients and k partners gets f/k), focal patients get 1, partner
    weights are scaled to sum to the number of distinct matched partners: the same rule as
    :func:`matching_weights`, for sets of any shape.
    """
    return _set_weights_flat(sets, is_focal)


def _set_weights_flat(sets, is_focal) -> np.ndarray:
    """set_weights on sets given as arrays or lists of rows, in one pass."""
    weights = np.zeros(len(is_focal))
    focal, partners, values = [], [], []
    total = 0
    for f, p in sets:
        focal.extend(f)
        partners.extend(p)
        values.extend([len(f) / len(p)] * len(p))
        total += len(f)
    weights[np.array(focal, dtype=np.int64)] = 1.0
    # add.at adds in set order, as one np.add.at per set did: the same sums (with
    # replacement a partner of several sets) to the last bit.
    np.add.at(weights, np.array(partners, dtype=np.int64), np.array(values))
    partner = ~np.asarray(is_focal, dtype=bool)
    # The partner weights sum to the number of focal patients matched (each set gives
    # f x 1/k x k = f). Using that integer, rather than a float sum over the rows, keeps
    # the weights independent of the row order to the last bit.
    if total > 0:
        weights[partner] *= np.sum(weights[partner] > 0) / total
    return weights


def logit_sd(logit_ps, treated, sd_denominator: str = "all") -> float:
    """SD of the logit PS that scales the caliper ("all": MatchIt; "pooled": Austin)."""
    logit_ps = np.asarray(logit_ps, dtype=float)
    if sd_denominator == "all":
        return _sd(logit_ps)
    treated = np.asarray(treated) == 1
    return float(np.sqrt((np.var(logit_ps[treated], ddof=1)
                          + np.var(logit_ps[~treated], ddof=1)) / 2))


def _sd(x: np.ndarray) -> float:
    """``float(np.std(x, ddof=1))`` by numpy's own steps (sum / n, deviations, squares,
    sum / (n - 1), sqrt), bit for bit, without its dispatch overhead (called once per
    bootstrap replicate)."""
    n = x.size
    if n < 2:
        return float(np.std(x, ddof=1))
    deviation = x - np.add.reduce(x) / n
    return math.sqrt(np.add.reduce(deviation * deviation) / (n - 1))
