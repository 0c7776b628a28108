"""MatchIt's greedy 1:1 rule without replacement, a level of tied scores at a time.

:func:`causal_hcc.matching_algorithms.greedy_match` takes the focal patients one by one
(largest score first for the ATT, smallest first for the ATC; among equal scores, by row)
and gives each the nearest still-available partner on the score, a tie in distance going
to the lower score and, among partners with the focal patient's own score, the nearest in
row order. That is a Python loop over the focal patients. With a discrete score (a
registry's PS from a few categorical covariates and age in years: about 2,000 distinct
values for 10^6 patients) the same pairs follow from a loop over the distinct focal
scores ("levels") with numpy steps inside, because of two facts about that order:

* Largest first: when the focal patients of level s choose, the partners below s that are
  already taken are the ones just below s (a taken partner c below s was the nearest
  available one of a focal patient above s, so everything between c and s was taken
  then). The available partners below s are all positions <= ``top``. Partners above s
  are taken nearest first, so those still available form a stack whose end is the one
  nearest to s. Smallest first is the mirror image.
* Within a level, a partner at distance 0 on the left in row order (position) beats any
  other (0 <= d + tolerance); one at distance 0 on the right beats any partner at
  another level, provided distinct scores differ by more than the tie tolerance. The
  focal patients of a level, in row order, thus take partners of their own level as a
  bracket matching (the nearest free one below in row order, else the nearest free one
  above: a stack plus a queue), until those run out; the rest take, one by one, the
  nearer of the two nearest available partners of other levels, which is a merge of two
  sorted lists of distances with the same comparison as the loop (``dl <= dr + tie``).

:func:`sweep_match` returns None where the second fact does not hold (two distinct
scores within the tie tolerance); the caller then runs the loop. tests/test_matching_sweep.py
checks pair for pair against the loop on random cohorts with heavy ties.
"""

from __future__ import annotations

from collections import deque

import numpy as np

#: The level sweep pays a few numpy calls per distinct focal score; the loop a Python
#: step per focal patient. Sweep when the focal patients average this many per level.
MIN_FOCAL_PER_LEVEL = 4
#: Levels with at most this many rows are bracket-matched by a plain loop.
SMALL = 64


def sweep_match(score, is_focal, members, largest: bool, caliper, tie):
    """Pairs of greedy 1:1 matching without replacement within ``members`` (sorted rows).

    Same pairs as :func:`causal_hcc.matching_algorithms._greedy_stratum` with ``ratio=1``,
    ``replace=False`` and the focal patients in order "largest" (``largest=True``) or
    "smallest". Returns (focal rows, partner rows) as int64 arrays, or None when the sweep
    does not apply (distinct scores within ``tie`` of each other, or too few focal
    patients per distinct score for the sweep to pay).
    """
    merged = members[np.argsort(score[members], kind="stable")]  # by (score, row)
    ordered = score[merged]
    gaps = np.diff(ordered)
    if np.any((gaps > 0) & (gaps <= tie)):
        return None
    f_mask = is_focal[merged]
    focal = merged[f_mask]                    # by (score, row)
    partners = merged[~f_mask]
    pvals = ordered[~f_mask]
    fvals = ordered[f_mask]
    m = len(partners)
    if len(focal) == 0 or m == 0:
        return _empty()
    new = np.flatnonzero(np.r_[True, fvals[1:] != fvals[:-1]])
    if len(new) * MIN_FOCAL_PER_LEVEL > len(focal):
        return None
    ends = np.r_[new[1:], len(focal)].tolist()
    level = fvals[new].tolist()
    lo = np.searchsorted(pvals, fvals[new], side="left").tolist()  # a level's partners:
    hi = np.searchsorted(pvals, fvals[new], side="right").tolist()  # positions [lo, hi)
    new = new.tolist()
    cal = np.inf if caliper is None else caliper
    stack = np.empty(m, dtype=np.int64)           # stack[:depth]; the end is nearest
    out_f, out_p = [], []
    n_levels = len(level)
    steps = range(n_levels - 1, -1, -1) if largest else range(n_levels)
    if largest:
        # Positions < hi of the level in hand: available up to `free` (taken above it).
        free = hi[-1] - 1
        depth = m - hi[-1]
        stack[:depth] = np.arange(m - 1, hi[-1] - 1, -1)
    else:
        # Positions >= lo of the level in hand: available from `free` (taken below it).
        free = depth = lo[0]
        stack[:depth] = np.arange(lo[0])
    for step, lv in enumerate(steps):
        first, n_f = new[lv], ends[lv] - new[lv]
        s0, s1 = (lo[lv], free + 1) if largest else (free, hi[lv])   # own level, free
        n_same = max(s1 - s0, 0)
        k = min(n_f, n_same)
        left_over = np.arange(s0, s0 + n_same)
        if k:
            f_k, p_same = focal[first:first + k], partners[s0:s1]
            fi, pi = (_bracket_small(f_k.tolist(), p_same.tolist()) if n_same + k <= SMALL
                      else _bracket_pairs(f_k, p_same))
            out_f.append(f_k[fi])
            out_p.append(p_same[pi])
            if k < n_same:
                keep = np.ones(n_same, dtype=bool)
                keep[pi] = False
                left_over = left_over[keep]
            else:
                left_over = left_over[:0]
        r = n_f - k
        if largest:
            near = min(free, lo[lv] - 1)        # nearest available position below
        else:
            near = max(free, hi[lv])            # nearest available position above
        if r:
            from_stack = stack[max(depth - r, 0):depth][::-1]
            if largest:
                below, above = np.arange(near, max(near - r, -1), -1), from_stack
            else:
                below, above = from_stack, np.arange(near, min(near + r, m))
            n_below, n_above = _merge(focal[first + k:first + n_f], below, above, pvals,
                                      level[lv], cal, tie, partners, out_f, out_p)
            near += -n_below if largest else n_above
            depth -= n_above if largest else n_below
        if step + 1 == n_levels:
            break
        nxt = steps[step + 1]
        # The level's unused partners and the partners between it and the next level go
        # to the stack, the nearest to the next level last.
        if largest:
            between = np.arange(near, hi[nxt] - 1, -1)
            free = min(near, hi[nxt] - 1)
            left_over = left_over[::-1]
        else:
            between = np.arange(near, lo[nxt])
            free = max(near, lo[nxt])
        for block in (left_over, between):
            stack[depth:depth + len(block)] = block
            depth += len(block)
    if not out_f:
        return _empty()
    return np.concatenate(out_f), np.concatenate(out_p)


def _empty():
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)


def _merge(rest, below, above, pvals, s, cal, tie, partners, out_f, out_p):
    """The focal patients ``rest`` (row order) of level ``s``, its own partners used up,
    each take the nearer of the nearest available partner below and above (``below``,
    ``above``: positions, nearest first), below on ``dl <= dr + tie``: the loop's
    comparisons on the same floats. Appends the pairs; returns how many were taken below
    and above."""
    dl = np.abs(pvals[below] - s)
    dr = np.abs(pvals[above] - s)
    if len(rest) > SMALL:
        return _merge_sorted(rest, below, above, dl, dr, cal, tie, partners, out_f, out_p)
    dl, dr = dl.tolist(), dr.tolist()
    inf = float("inf")
    i = j = 0
    side = []
    for _ in range(len(rest)):
        d_left = dl[i] if i < len(dl) and dl[i] <= cal else inf
        d_right = dr[j] if j < len(dr) and dr[j] <= cal else inf
        if d_left == inf and d_right == inf:
            break
        take_left = d_left <= d_right + tie
        side.append(take_left)
        i += take_left
        j += not take_left
    side = np.array(side, dtype=bool)
    out_f.append(rest[:len(side)][side])
    out_p.append(partners[below[:i]])
    out_f.append(rest[:len(side)][~side])
    out_p.append(partners[above[:j]])
    return i, j


def _merge_sorted(rest, below, above, dl, dr, cal, tie, partners, out_f, out_p):
    """:func:`_merge` by sorting: both distance lists ascend, so below item i precedes
    the above items with dr + tie < dl_i, and above item j the below items with
    dl <= dr_j + tie (the same floats and comparisons as the loop)."""
    dl = dl[:np.searchsorted(dl, cal, side="right")]      # outside the caliper: none
    dr = dr[:np.searchsorted(dr, cal, side="right")]
    dr_tie = dr + tie
    at_below = np.arange(len(dl)) + np.searchsorted(dr_tie, dl, side="left")
    at_above = np.arange(len(dr)) + np.searchsorted(dl, dr_tie, side="right")
    i = int(np.sum(at_below < len(rest)))
    j = int(np.sum(at_above < len(rest)))
    out_f += [rest[at_below[:i]], rest[at_above[:j]]]
    out_p += [partners[below[:i]], partners[above[:j]]]
    return i, j


def _bracket_small(f_rows, p_rows):
    """:func:`_bracket_pairs` as the plain loop (lists; faster for a few rows)."""
    events = sorted([(row, 1, i) for i, row in enumerate(p_rows)]
                    + [(row, 0, i) for i, row in enumerate(f_rows)])
    free, borrowers = [], deque()
    f_idx, p_idx = [], []
    for _, is_partner, i in events:
        if is_partner:
            if borrowers:                 # repays the earliest borrower
                f_idx.append(borrowers.popleft())
                p_idx.append(i)
            else:
                free.append(i)
        elif free:                        # the last free partner passed
            f_idx.append(i)
            p_idx.append(free.pop())
        else:                             # borrows the next free partner ahead
            borrowers.append(i)
    return f_idx, p_idx


def _bracket_pairs(f_rows, p_rows):
    """Focal patients ``f_rows`` (ascending rows, at most len(p_rows)) in row order each
    take the nearest free partner of ``p_rows`` (same score) with a lower row, else the
    nearest free one with a higher row. Returns (index into f_rows, index into p_rows).

    With +1 per partner and -1 per focal patient in row order, the running sum D is the
    number of free partners passed minus the number of partners borrowed ahead. A focal
    patient with D > 0 before it takes the last free partner passed: brackets, paired per
    level of D. With D <= 0 it borrows the next free partner ahead; borrowed partners are
    always the first ones ahead, so borrowers and the partners that repay them pair in
    order of appearance.
    """
    n_p = len(p_rows)
    rows = np.concatenate([p_rows, f_rows])
    seq = np.argsort(rows, kind="stable")
    is_p = seq < n_p
    step = np.where(is_p, 1, -1)
    after = np.cumsum(step)
    before = after - step
    push = is_p & (before >= 0)
    pop = ~is_p & (before > 0)
    events = np.flatnonzero(push | pop)
    lvl = np.where(is_p[events], after[events], before[events])
    by_level = events[np.lexsort((events, lvl))]         # push, pop, push, ... per level
    pops = np.flatnonzero(~is_p[by_level])
    f_idx = [seq[by_level[pops]] - n_p]
    p_idx = [seq[by_level[pops - 1]]]
    borrow = np.flatnonzero(~is_p & (before <= 0))
    repay = np.flatnonzero(is_p & (before < 0))
    f_idx.append(seq[borrow] - n_p)
    p_idx.append(seq[repay])
    return np.concatenate(f_idx), np.concatenate(p_idx)
